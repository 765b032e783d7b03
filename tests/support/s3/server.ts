// A local S3 endpoint for tests and benchmarks: fauxqs 1.9.2 (the only fauxqs on this registry
// that runs on Node 20) behind a wrapper that (1) binds one given address, never 0.0.0.0 (its CLI
// binds every interface), and (2) fixes its CompleteMultipartUpload parsing, which otherwise
// rejects aws-sdk-go v1's `&#34;`-escaped ETags (InvalidPart) or silently assembles an object from a
// subset of the parts when the Go client emits <ETag> before <PartNumber>
// (research/litestream.md B1). Test equipment, not a product feature.
//
//   node --import tsx tests/support/s3/server.ts --host 127.0.0.1 --port 9000 --bucket litestream
// prints `listening http://127.0.0.1:9000` and runs until SIGTERM.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const REPO = join(__dirname, "..", "..", "..");
/** Where fauxqs is installed: the project's node_modules, else tests/data/run.sh's tmp/data-deps. */
export function fauxqsEntry(): string {
  for (const base of [join(REPO, "node_modules"), join(REPO, "tmp", "data-deps", "node_modules")]) {
    const p = join(base, "fauxqs", "dist", "app.js");
    if (existsSync(p)) return p;
  }
  throw new Error("fauxqs@1.9.2 is not installed: run tests/data/run.sh (it installs the test-only packages) or npm i -D fauxqs@1.9.2");
}

/** The only addresses the fake may listen on: loopback, or the rig's gateway on its public net. */
/** Loopback, or the rig's gateway (tests/rig/rig.sh: RH_RIG_PUBLIC .1, default 10.77.0.1). */
const RIG_GATEWAY = `${process.env.RH_RIG_PUBLIC ?? "10.77.0"}.1`;
const ALLOWED_HOSTS = new RegExp(`^(127\\.\\d+\\.\\d+\\.\\d+|${RIG_GATEWAY.replace(/\./g, "\\.")})$`);

/** Rewrites a CompleteMultipartUpload body into the one shape fauxqs 1.9.2 parses. */
export function normalizeCompleteMultipart(body: string): string {
  const parts: string[] = [];
  const re = /<Part>([\s\S]*?)<\/Part>/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(body)) !== null) {
    const inner = m[1];
    const num = /<PartNumber>\s*(\d+)\s*<\/PartNumber>/.exec(inner)?.[1];
    const etag = /<ETag>([\s\S]*?)<\/ETag>/.exec(inner)?.[1];
    if (num === undefined || etag === undefined) continue;
    parts.push(`<Part><PartNumber>${num}</PartNumber><ETag>${etag.replace(/&#34;/g, "&quot;").replace(/&#x22;/gi, "&quot;")}</ETag></Part>`);
  }
  if (parts.length === 0) return body;
  return `<?xml version="1.0" encoding="UTF-8"?><CompleteMultipartUpload>${parts.join("")}</CompleteMultipartUpload>`;
}

export interface S3Server {
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

interface FastifyLike {
  addHook(name: "preHandler", fn: (req: { method: string; query: unknown; body: unknown }, reply: unknown, done: () => void) => void): void;
  listen(o: { host: string; port: number }): Promise<string>;
  close(): Promise<void>;
  server: { address(): { port: number } | string | null };
}

export async function startS3(opts: { host?: string; port?: number; buckets?: string[] } = {}): Promise<S3Server> {
  const host = opts.host ?? "127.0.0.1";
  if (!ALLOWED_HOSTS.test(host)) throw new Error(`refusing to bind ${host}: loopback or the rig gateway ${RIG_GATEWAY} only`);
  const mod = (await import(pathToFileURL(fauxqsEntry()).href)) as { buildApp(o: { logger: boolean }): FastifyLike };
  const app = mod.buildApp({ logger: false });
  app.addHook("preHandler", (req, _reply, done) => {
    const q = (req.query ?? {}) as Record<string, unknown>;
    if (req.method === "POST" && q.uploadId && Buffer.isBuffer(req.body)) {
      req.body = Buffer.from(normalizeCompleteMultipart(req.body.toString("utf8")), "utf8");
    }
    done();
  });
  await app.listen({ host, port: opts.port ?? 0 });
  const addr = app.server.address();
  const port = typeof addr === "object" && addr ? addr.port : (opts.port ?? 0);
  const url = `http://${host}:${port}`;
  for (const b of opts.buckets ?? []) {
    const res = await fetch(`${url}/${b}`, { method: "PUT" });
    if (!res.ok && res.status !== 409) throw new Error(`create bucket ${b}: HTTP ${res.status}`);
  }
  return { url, port, stop: () => app.close() };
}

if (require.main === module) {
  const arg = (name: string): string | undefined => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const buckets = process.argv.flatMap((a, i) => (a === "--bucket" ? [process.argv[i + 1]] : []));
  startS3({ host: arg("host"), port: Number(arg("port") ?? 0), buckets }).then(
    (s) => {
      process.stdout.write(`listening ${s.url}\n`);
      const stop = () => void s.stop().then(() => process.exit(0));
      process.on("SIGTERM", stop);
      process.on("SIGINT", stop);
    },
    (e: Error) => {
      process.stderr.write(`${e.message}\n`);
      process.exit(1);
    },
  );
}
