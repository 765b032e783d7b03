// Real-host equipment for the data-path tests: a Target is a host with a Docker engine that runs
// the bundled host tool exactly as a deploy would (bash, arguments, stdin). Two kinds:
// - rig hosts (tests/rig: network-namespace hosts with their own sshd and engine), when
//   .rig/rig.json exists and RAILHEAD_DATA_TARGET is not "local";
// - this machine's own Docker engine ("local"), which is what the `local` stack uses.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, writeFileSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bundleHostTool } from "../../components/host-tool/bundle";
import { loadRig, rigHost, rigImage, RIG_JSON, sshRun, type Rig } from "../rig/rig";

export const REPO = join(__dirname, "..", "..");

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface Target {
  readonly name: string;
  /** Address tests reach published ports on (loopback for local, the host's public IP on the rig). */
  readonly publicIp: string;
  /** The host's private-network address (rig), undefined for local. */
  readonly privateIp?: string;
  /** Where a replica store on this machine is reachable from the host's containers (--network host). */
  readonly s3Host: string;
  sh(cmd: string, opts?: { stdin?: string; timeoutMs?: number }): Promise<RunResult>;
  tool(args: string[], opts?: { stdin?: string; timeoutMs?: number }): Promise<RunResult>;
  image(name: "postgres" | "redis" | "litestream" | "app", tag?: string): string;
}

export function q(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'"'"'`)}'`;
}

export function run(argv: string[], opts: { stdin?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(argv[0], argv.slice(1), { env: opts.env ?? process.env, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    const timer = setTimeout(() => p.kill("SIGKILL"), opts.timeoutMs ?? 180_000);
    p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    p.on("error", reject);
    p.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
    // A command that exits without reading its stdin closes the pipe: that is not an error here.
    p.stdin.on("error", () => undefined);
    p.stdin.end(opts.stdin ?? "");
  });
}

/** The tool a host receives (the bundle); tests never run the sources directly. */
export function toolText(): string {
  return bundleHostTool().text;
}

/** The rig's description, unless the run is forced onto this machine's engine. */
export function rigJson(): Rig | undefined {
  if (process.env.RAILHEAD_DATA_TARGET === "local" || !existsSync(RIG_JSON)) return undefined;
  return loadRig();
}

/** The rig's images as built on this machine's engine (tests/rig/rig.sh images); RAILHEAD_DATA_IMAGES overrides the namespace. */
function localImageNs(): string {
  if (process.env.RAILHEAD_DATA_IMAGES) return process.env.RAILHEAD_DATA_IMAGES;
  return spawnSync("docker", ["image", "inspect", "railhead-test/postgres:15"], { stdio: "ignore" }).status === 0 ? "railhead-test" : "rh-data";
}
const DEFAULT_TAGS: Record<string, string> = { postgres: "15", redis: "7", litestream: "0.3.13", app: "v1" };

/** This machine's engine, with a private state dir for the tool. */
export function localTarget(): Target {
  const dir = mkdtempSync(join(tmpdir(), "rh-data-"));
  const toolPath = join(dir, "railhead-host");
  writeFileSync(toolPath, toolText());
  chmodSync(toolPath, 0o755);
  const env = { ...process.env, RAILHEAD_STATE_DIR: join(dir, "state") };
  const ns = localImageNs();
  return {
    name: "local",
    publicIp: "127.0.0.1",
    s3Host: "127.0.0.1",
    sh: (cmd, opts) => run(["bash", "-c", cmd], { ...opts, env }),
    tool: (args, opts) => run(["bash", toolPath, "--host-label", "local", ...args], { ...opts, env }),
    image: (name, tag) => `${ns}/${name}:${tag ?? DEFAULT_TAGS[name]}`,
  };
}

/** A rig host, reached over its own sshd (tests/rig/rig.ts); its engine and state dir are its own. */
export async function rigTarget(name: string): Promise<Target> {
  const rig = loadRig();
  const h = rigHost(name, rig);
  const ssh = (cmd: string, opts?: { stdin?: string; timeoutMs?: number }) => sshRun(h, cmd, { stdin: opts?.stdin ?? "", timeoutMs: opts?.timeoutMs ?? 180_000 });
  const text = toolText();
  const upload = async () => {
    const up = await ssh("mkdir -p .railhead/bin && cat > .railhead/bin/railhead-host-data && chmod 755 .railhead/bin/railhead-host-data", { stdin: text });
    if (up.code !== 0) throw new Error(`upload tool to ${name}: ${up.stderr}`);
  };
  await upload();
  // Other suites may reset a rig host (the e2e harness wipes $HOME): upload again when it is gone.
  const tool = async (args: string[], opts?: { stdin?: string; timeoutMs?: number }): Promise<RunResult> => {
    const cmd = ["test -x .railhead/bin/railhead-host-data || exit 97;", "bash", '"$HOME/.railhead/bin/railhead-host-data"', "--host-label", name, ...args.map(q)].join(" ");
    const r = await ssh(cmd, opts);
    if (r.code !== 97) return r;
    await upload();
    return ssh(cmd, opts);
  };
  return {
    name,
    publicIp: h.publicIp,
    privateIp: h.privateIp,
    s3Host: rig.gateway,
    sh: ssh,
    tool,
    image: (n, tag) => rigImage(`${n}:${tag ?? DEFAULT_TAGS[n]}`, rig),
  };
}

export async function targets(): Promise<Target[]> {
  const rig = rigJson();
  if (!rig) return [localTarget()];
  // The e2e suite boots (and wipes) mostly h1 and h2: by default the data tests take the last two
  // hosts, h3 first. Still, the two suites must not run at the same time (a wipe removes volumes).
  const names = process.env.RAILHEAD_DATA_HOSTS?.split(",") ?? rig.hosts.map((h) => h.name).reverse().slice(0, 2);
  return Promise.all(names.map((n) => rigTarget(n)));
}

export async function must(p: Promise<RunResult>, what: string): Promise<RunResult> {
  const r = await p;
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  return r;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until GET url answers 2xx (e.g. the app's /up). */
export async function waitHttpOk(url: string): Promise<void> {
  await httpRequest(url, "GET", async (res) => {
    await res.text();
    return {};
  });
}

export async function httpJson(url: string, method = "GET"): Promise<Record<string, unknown>> {
  return httpRequest(url, method, async (res) => (await res.json()) as Record<string, unknown>);
}

async function httpRequest(url: string, method: string, read: (res: Response) => Promise<Record<string, unknown>>): Promise<Record<string, unknown>> {
  for (let i = 0; ; i++) {
    // A ref'd timer: undici's sockets and AbortSignal.timeout do not keep the event loop alive, so a
    // request to a port that accepts and then stalls would otherwise end the test process.
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), 10_000);
    try {
      const res = await fetch(url, { method, signal: ac.signal });
      const body = await read(res);
      if (!res.ok) throw new Error(`${method} ${url}: HTTP ${res.status} ${JSON.stringify(body)}`);
      return body;
    } catch (e) {
      if (i >= 40) throw e;
      await sleep(250);
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * An HTTP request to a port published on the host's loopback, made on the host itself (curl over
 * the same channel as the tool): rig hosts may carry a Hetzner-like firewall on their public side.
 */
export async function hostHttp(t: Target, port: string, method: string, path: string): Promise<Record<string, unknown>> {
  let last = "";
  for (let i = 0; i < 60; i++) {
    const r = await t.sh(`curl -sS -f -m 10 -X ${method} ${q(`http://127.0.0.1:${port}${path}`)}`);
    if (r.code === 0) {
      try {
        return JSON.parse(r.stdout) as Record<string, unknown>;
      } catch {
        return { text: r.stdout };
      }
    }
    last = `${r.stdout}${r.stderr}`;
    await sleep(250);
  }
  throw new Error(`${method} ${path} on ${t.name}:${port} failed: ${last}`);
}

/** Publishes CONTAINER_PORT of a running container on the host's loopback; returns the host port. */
export async function publishedPort(t: Target, container: string, containerPort = 3000): Promise<string> {
  const r = await must(t.sh(`docker port ${container} ${containerPort}/tcp | head -n1`), "docker port");
  return r.stdout.trim().split(":").pop() ?? "";
}

/** Unique names per run so reruns and parallel files never collide. */
export function uniq(prefix: string): string {
  return `${prefix}${process.pid.toString(36)}${Date.now().toString(36).slice(-4)}`;
}
