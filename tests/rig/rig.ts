// Helpers for tests that use the rig (tests/rig/rig.sh): read .rig/rig.json, run commands on rig
// hosts over SSH, make HTTP requests and generate load. Test equipment, not a product feature.
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as net from "node:net";
import * as path from "node:path";
import { z } from "zod";

export const REPO_ROOT = path.resolve(__dirname, "..", "..");
/** .rig/rig.json, or RH_RIG_JSON (a second rig made with RH_RIG_STATE_DIR, see rig.sh --help). */
export const RIG_JSON = process.env.RH_RIG_JSON ?? path.join(REPO_ROOT, ".rig", "rig.json");

const HostSchema = z.object({
  name: z.string(),
  publicIp: z.string(),
  privateIp: z.string(),
  sshPort: z.number().int(),
  hostKey: z.string(),
  dockerHost: z.string(),
  home: z.string(),
});

const RigSchema = z.object({
  sshKey: z.string(),
  sshUser: z.string(),
  gateway: z.string(),
  publicCidr: z.string(),
  privateCidr: z.string(),
  registry: z.object({ push: z.string(), pull: z.string() }),
  hosts: z.array(HostSchema).min(1),
  images: z.record(z.string(), z.string()),
});

export type RigHost = z.infer<typeof HostSchema>;
export type Rig = z.infer<typeof RigSchema>;

let cachedRig: Rig | undefined;

/** Reads and validates .rig/rig.json (written by `tests/rig/rig.sh up`). */
export function loadRig(file: string = RIG_JSON): Rig {
  if (file === RIG_JSON && cachedRig) return cachedRig;
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch {
    throw new Error(`rig: ${file} not found. Bring the rig up first: sudo bash tests/rig/rig.sh up`);
  }
  const parsed = RigSchema.safeParse(JSON.parse(text));
  if (!parsed.success) {
    throw new Error(`rig: ${file} is not a rig description: ${parsed.error.message}`);
  }
  if (file === RIG_JSON) cachedRig = parsed.data;
  return parsed.data;
}

/** The host named `name` (h1, h2, ...). */
export function rigHost(name: string, rig: Rig = loadRig()): RigHost {
  const host = rig.hosts.find((h) => h.name === name);
  if (!host) throw new Error(`rig: no host ${name} (hosts: ${rig.hosts.map((h) => h.name).join(", ")})`);
  return host;
}

/** The pull reference of a test image by logical name, e.g. "app:v1" -> 10.77.0.1:5000/railhead-test/app:v1. */
export function rigImage(name: string, rig: Rig = loadRig()): string {
  const ref = rig.images[name];
  if (!ref) throw new Error(`rig: no image ${name} (images: ${Object.keys(rig.images).join(", ")})`);
  return ref;
}

export interface RunResult {
  /** Exit code; 124 when the command was stopped by timeoutMs, 255 when ssh itself failed. */
  code: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export interface SshOptions {
  stdin?: string | Buffer;
  timeoutMs?: number;
}

/** The ssh argument list for a rig host (without the remote command). */
export function sshArgs(host: RigHost, rig: Rig = loadRig()): string[] {
  return [
    "-i", rig.sshKey,
    "-p", String(host.sshPort),
    "-o", "StrictHostKeyChecking=no",
    "-o", "UserKnownHostsFile=/dev/null",
    "-o", "LogLevel=ERROR",
    "-o", "BatchMode=yes",
    "-o", "IdentitiesOnly=yes",
    "-o", "ConnectTimeout=10",
    `${rig.sshUser}@${host.publicIp}`,
  ];
}

/** Runs `command` (a shell command line) on a rig host over SSH. Never rejects for a non-zero exit. */
export function sshRun(host: RigHost | string, command: string, opts: SshOptions = {}): Promise<RunResult> {
  const rig = loadRig();
  const h = typeof host === "string" ? rigHost(host, rig) : host;
  return runProcess("ssh", [...sshArgs(h, rig), command], opts);
}

/** Runs a local program; resolves with its exit code and output. */
export function runProcess(program: string, args: string[], opts: SshOptions = {}): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? 120_000;
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.stdout.on("data", (d: Buffer) => out.push(d));
    child.stderr.on("data", (d: Buffer) => err.push(d));
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      let stderr = Buffer.concat(err).toString("utf8");
      if (timedOut) stderr += `\n[rig] ${program} stopped after ${timeoutMs} ms`;
      resolve({
        code: timedOut ? 124 : (code ?? (signal ? 128 : 1)),
        stdout: Buffer.concat(out).toString("utf8"),
        stderr,
        timedOut,
      });
    });
    child.stdin.on("error", () => undefined); // the remote side may not read stdin
    child.stdin.end(opts.stdin ?? "");
  });
}

// --- HTTP --------------------------------------------------------------------------------------

function ipv4ToInt(ip: string): number {
  return ip.split(".").reduce((acc, part) => (acc << 8) + Number(part), 0) >>> 0;
}

function inCidr(ip: string, cidr: string): boolean {
  const [base, bitsText] = cidr.split("/");
  const bits = Number(bitsText);
  const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
  return ((ipv4ToInt(ip) & mask) >>> 0) === ((ipv4ToInt(base) & mask) >>> 0);
}

function rigCidrs(): string[] {
  try {
    const rig = loadRig();
    return [rig.publicCidr, rig.privateCidr];
  } catch {
    return ["10.77.0.0/24", "10.78.0.0/24"]; // the default rig's networks
  }
}

/** Traffic from tests goes only to loopback and the rig's own networks. */
export function assertRigTarget(url: string): URL {
  const u = new URL(url);
  if (u.protocol !== "http:") throw new Error(`rig: only http:// targets are supported, got ${url}`);
  const hostname = u.hostname.replace(/^\[|\]$/g, "");
  if (hostname === "localhost" || hostname === "::1") return u;
  const cidrs = rigCidrs();
  if (net.isIPv4(hostname) && ["127.0.0.0/8", ...cidrs].some((c) => inCidr(hostname, c))) return u;
  throw new Error(`rig: refusing to send traffic to ${hostname}: only loopback and rig addresses (${cidrs.join(", ")})`);
}

export interface HttpResult {
  status: number;
  body: string;
  headers: http.IncomingHttpHeaders;
}

export interface HttpOptions {
  /** Host header (e.g. a proxied domain), default the URL's host. */
  host?: string;
  timeoutMs?: number;
  method?: string;
  body?: string;
}

/** One HTTP request on a fresh connection. Rejects on connection errors and timeouts. */
export function httpGet(url: string, opts: HttpOptions = {}): Promise<HttpResult> {
  const u = assertRigTarget(url);
  const timeoutMs = opts.timeoutMs ?? 10_000;
  return new Promise((resolve, reject) => {
    const headers: http.OutgoingHttpHeaders = {};
    if (opts.host) headers.host = opts.host;
    if (opts.body !== undefined) headers["content-length"] = Buffer.byteLength(opts.body);
    const req = http.request(
      u,
      { method: opts.method ?? "GET", headers, agent: false, timeout: timeoutMs },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (d: Buffer) => chunks.push(d));
        res.on("end", () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8"), headers: res.headers });
        });
        res.on("error", (e) => {
          clearTimeout(timer);
          reject(e);
        });
      },
    );
    const timer = setTimeout(() => req.destroy(new Error(`timeout after ${timeoutMs} ms: ${url}`)), timeoutMs);
    req.on("timeout", () => req.destroy(new Error(`idle timeout after ${timeoutMs} ms: ${url}`)));
    req.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    req.end(opts.body);
  });
}

/** Polls `fn` until it returns a truthy value or `timeoutMs` passes; returns the value. */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs = 30_000, intervalMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await fn();
      if (value) return value;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() > deadline) {
      const reason = lastError instanceof Error ? `: ${lastError.message}` : "";
      throw new Error(`rig: timed out after ${timeoutMs} ms waiting for ${what}${reason}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

// --- load generator --------------------------------------------------------------------------

export interface LoadOptions {
  url: string;
  /** Host header, e.g. the proxied domain. */
  host?: string;
  keepAlive: boolean;
  connections: number;
  durationMs: number;
  /** Per-request limit; a slower answer counts as failed. Default 5000. */
  requestTimeoutMs?: number;
}

export interface LoadResult {
  total: number;
  failed: number;
  /** Answers per app version (X-App-Version header, else the short body). */
  versions: Record<string, number>;
  /** When each failure happened, in ms since the load started. */
  failTimes: number[];
  /** Failures by kind: "status 502", "ECONNRESET", "timeout", ... */
  errors: Record<string, number>;
  durationMs: number;
}

export interface Load {
  /** Stops sending, waits for requests in flight (each bounded by requestTimeoutMs), returns counts. */
  stop(): Promise<LoadResult>;
  /** Resolves when durationMs has passed and every connection loop ended. */
  done: Promise<LoadResult>;
}

/**
 * Starts `connections` concurrent request loops against `url` for at most `durationMs`.
 * A failure is a non-2xx answer, a connection error or reset, or a timeout.
 */
export function startLoad(opts: LoadOptions): Load {
  const u = assertRigTarget(opts.url);
  const requestTimeoutMs = opts.requestTimeoutMs ?? 5_000;
  const agent = new http.Agent({ keepAlive: opts.keepAlive, maxSockets: opts.connections, maxFreeSockets: opts.connections });
  const started = Date.now();
  const deadline = started + opts.durationMs;
  let stopped = false;
  const result: LoadResult = { total: 0, failed: 0, versions: {}, failTimes: [], errors: {}, durationMs: 0 };

  const fail = (kind: string) => {
    result.failed++;
    result.failTimes.push(Date.now() - started);
    result.errors[kind] = (result.errors[kind] ?? 0) + 1;
  };

  const once = () =>
    new Promise<void>((resolve) => {
      let settled = false;
      const finish = (kind?: string, version?: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        result.total++;
        if (kind) fail(kind);
        else if (version !== undefined) result.versions[version] = (result.versions[version] ?? 0) + 1;
        resolve();
      };
      const headers: http.OutgoingHttpHeaders = {};
      if (opts.host) headers.host = opts.host;
      const req = http.request(u, { method: "GET", headers, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (d: Buffer) => chunks.push(d));
        res.on("end", () => {
          const status = res.statusCode ?? 0;
          if (status < 200 || status > 299) return finish(`status ${status}`);
          const header = res.headers["x-app-version"];
          const body = Buffer.concat(chunks).toString("utf8").trim();
          const version = typeof header === "string" ? header : body.length <= 64 ? body : "(other)";
          finish(undefined, version);
        });
        res.on("error", (e: NodeJS.ErrnoException) => finish(e.code ?? e.message));
      });
      const timer = setTimeout(() => {
        finish("timeout");
        req.destroy();
      }, requestTimeoutMs);
      req.on("error", (e: NodeJS.ErrnoException) => finish(e.code ?? e.message));
      req.end();
    });

  const loop = async () => {
    while (!stopped && Date.now() < deadline) await once();
  };

  const loops = Array.from({ length: opts.connections }, () => loop());
  const done = Promise.all(loops).then(() => {
    agent.destroy();
    result.durationMs = Date.now() - started;
    return result;
  });
  return {
    done,
    stop: () => {
      stopped = true;
      return done;
    },
  };
}
