// TEST EQUIPMENT (e2e apply harness): SSH and SFTP with the system OpenSSH client, honouring a
// pulumi-command `connection` (host, port, user, privateKey, hostKey, dialErrorLimit, perDialTimeout).
// The command string goes to sshd as an exec request, exactly like Go's `session.Run(cmd)` in
// pulumi-command (sshd runs it with the user's shell `-c`).
//
// Host keys, as pulumi/pulumi-command provider/pkg/provider/remote/connection.go SSHConfig() and
// Dial() do it (the `hostKey` input, pulumi-command #794):
// - `hostKey` set: parsed with ssh.ParseAuthorizedKey (`<type> <base64> [comment]`); a value that
//   does not parse fails the step before any dial ("failed to parse host key"). The client then
//   accepts only that key (ssh.FixedHostKey) and offers only its type (HostKeyAlgorithms =
//   [publicKey.Type()]). Here: a known_hosts file holding only that key, StrictHostKeyChecking=yes,
//   HostKeyAlgorithms=<type>. A server presenting another key fails the SSH handshake, before user
//   authentication, so no session is opened and no command or stdin is ever sent.
// - A handshake failure is a dial error like a refused connection: dialWithRetry retries it up to
//   dialErrorLimit (then "after N failed attempts: ..."), so a pinned server that is still booting
//   with another key is waited for, as the provider does.
// - `hostKey` unset: ssh.InsecureIgnoreHostKey(), any key is accepted (StrictHostKeyChecking=no).
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface Connection {
  host: string;
  port?: number;
  user?: string;
  privateKey?: string;
  password?: string;
  hostKey?: string;
  dialErrorLimit?: number;
  perDialTimeout?: number;
  proxy?: unknown;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout and stderr interleaved in arrival order (what the provider's error shows). */
  combined: string;
}

/** The longest the harness keeps dialing with dialErrorLimit -1 (the provider would try forever). */
const UNLIMITED_DIAL_CAP_MS = 180_000;

/** Key types whose OpenSSH host key algorithm is the type name itself (ssh-rsa is not: rsa-sha2-*). */
const HOST_KEY_TYPES = ["ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521"];

/**
 * `hostKey` as ssh.ParseAuthorizedKey reads it: `<type> <base64 blob> [comment]`, the blob starting
 * with the same type name. Returns the type and the canonical `<type> <base64>`; throws the
 * provider's "failed to parse host key" otherwise. Authorized-keys options before the type (which
 * ParseAuthorizedKey skips) and RSA keys are refused as not modelled.
 */
export function parseHostKey(hostKey: string): { type: string; line: string } {
  const fail = (why: string) => new Error(`failed to parse host key: ${why} (expected "ssh-ed25519 AAAA...", e.g. from ssh-keyscan -t ed25519 HOST)`);
  const words = hostKey.trim().split(/\s+/);
  if (words.length < 2) throw fail("no key data");
  const [type, b64] = words;
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) throw fail("key data is not base64");
  const blob = Buffer.from(b64, "base64");
  const len = blob.length >= 4 ? blob.readUInt32BE(0) : -1;
  if (len < 0 || 4 + len > blob.length || blob.subarray(4, 4 + len).toString() !== type) throw fail(`key data is not a ${type} key`);
  if (!HOST_KEY_TYPES.includes(type)) throw new Error(`harness: host key type ${type} is not modelled (${HOST_KEY_TYPES.join(", ")})`);
  return { type, line: `${type} ${b64}` };
}

export class SshClient {
  private readonly dir: string;
  private readonly keyFile: string;
  private readonly knownHosts: string;
  private readonly hostKeyType?: string;

  constructor(private readonly conn: Connection) {
    if (conn.proxy) throw new Error("harness: connection.proxy (bastion) is not supported");
    if (conn.password && !conn.privateKey) throw new Error("harness: password authentication is not supported; use privateKey");
    if (!conn.privateKey) throw new Error(`harness: connection to ${conn.host} has no privateKey (the harness has no agent)`);
    // SSHConfig() parses hostKey before Dial: a bad value fails without touching the network.
    const pinned = conn.hostKey !== undefined ? parseHostKey(conn.hostKey) : undefined;
    this.dir = mkdtempSync(join(tmpdir(), "railhead-e2e-ssh-"));
    this.keyFile = join(this.dir, "key");
    writeFileSync(this.keyFile, conn.privateKey.endsWith("\n") ? conn.privateKey : `${conn.privateKey}\n`, { mode: 0o600 });
    this.knownHosts = join(this.dir, "known_hosts");
    if (pinned) {
      this.hostKeyType = pinned.type;
      writeFileSync(this.knownHosts, `[${conn.host}]:${conn.port ?? 22} ${pinned.line}\n${conn.host} ${pinned.line}\n`);
    }
  }

  close(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  private baseArgs(): string[] {
    const c = this.conn;
    const timeout = c.perDialTimeout ?? 15;
    return [
      "-i", this.keyFile,
      "-p", String(c.port ?? 22),
      "-o", "BatchMode=yes",
      "-o", "IdentitiesOnly=yes",
      "-o", "LogLevel=ERROR",
      // Without hostKey the provider uses ssh.InsecureIgnoreHostKey (#794); with it, ssh.FixedHostKey
      // and HostKeyAlgorithms [type] (see the header). Only this known_hosts file counts.
      "-o", this.hostKeyType ? "StrictHostKeyChecking=yes" : "StrictHostKeyChecking=no",
      "-o", `UserKnownHostsFile=${this.hostKeyType ? this.knownHosts : "/dev/null"}`,
      "-o", "GlobalKnownHostsFile=/dev/null",
      "-o", "CheckHostIP=no",
      "-o", "UpdateHostKeys=no",
      ...(this.hostKeyType ? ["-o", `HostKeyAlgorithms=${this.hostKeyType}`] : []),
      ...(timeout > 0 ? ["-o", `ConnectTimeout=${timeout}`] : []),
      "-o", "ServerAliveInterval=10",
    ];
  }

  /** Runs a command; retries the dial as pulumi-command's dialWithRetry does (100 ms, x1.5, max 5 s). */
  async run(command: string, stdin?: string, onData?: (chunk: string, stream: "stdout" | "stderr") => void): Promise<ExecResult> {
    const limit = this.conn.dialErrorLimit ?? 10;
    const started = Date.now();
    let delay = 100;
    for (let attempt = 1; ; attempt++) {
      const r = await spawnCollect("ssh", [...this.baseArgs(), `${this.conn.user ?? "root"}@${this.conn.host}`, "--", command], stdin, onData);
      if (!(r.code === 255 && isDialError(r.stderr))) return r;
      const exhausted = limit >= 0 ? attempt >= limit : Date.now() - started > UNLIMITED_DIAL_CAP_MS;
      if (exhausted) return { ...r, stderr: `${r.stderr}\n[harness] gave up dialing ${this.conn.host} after ${attempt} attempts (dialErrorLimit ${limit})` };
      await sleep(delay);
      delay = Math.min(delay * 1.5, 5000);
    }
  }

  /** Uploads a local file with sftp, creating remotePath's parents first (pulumi-command #1161). */
  async upload(localPath: string, remotePath: string, recursive = false): Promise<ExecResult> {
    const parts = remotePath.split("/").slice(0, -1);
    const mkdirs: string[] = [];
    for (let i = 1; i <= parts.length; i++) {
      const p = parts.slice(0, i).join("/");
      if (p !== "" && p !== ".") mkdirs.push(`-mkdir ${sftpQuote(p)}`);
    }
    const batch = [...mkdirs, `put ${recursive ? "-r " : ""}${sftpQuote(localPath)} ${sftpQuote(remotePath)}`].join("\n");
    const batchFile = join(this.dir, "batch");
    writeFileSync(batchFile, `${batch}\n`);
    const args = [...this.baseArgs().map((a) => (a === "-p" ? "-P" : a)), "-b", batchFile, `${this.conn.user ?? "root"}@${this.conn.host}`];
    return spawnCollect("sftp", args);
  }
}

function sftpQuote(p: string): string {
  return `"${p.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

/** A failed dial or SSH handshake (a host key mismatch included: ssh.Dial fails, dialWithRetry retries). */
export function isDialError(stderr: string): boolean {
  return /Host key verification failed|no matching host key type|Connection refused|Connection timed out|No route to host|Network is unreachable|Connection closed by|Connection reset|kex_exchange_identification|Could not resolve|Operation timed out/i.test(stderr);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function spawnCollect(
  cmd: string,
  args: string[],
  stdin?: string,
  onData?: (chunk: string, stream: "stdout" | "stderr") => void,
  opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<ExecResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"], cwd: opts.cwd, env: opts.env ?? process.env });
    let stdout = "";
    let stderr = "";
    let combined = "";
    child.stdout.on("data", (b: Buffer) => {
      const s = b.toString();
      stdout += s;
      combined += s;
      onData?.(s, "stdout");
    });
    child.stderr.on("data", (b: Buffer) => {
      const s = b.toString();
      stderr += s;
      combined += s;
      onData?.(s, "stderr");
    });
    child.on("error", (e) => resolve({ code: 127, stdout, stderr: `${stderr}${String(e)}`, combined: `${combined}${String(e)}` }));
    child.on("close", (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr, combined }));
    child.stdin.on("error", () => undefined); // the command may not read its stdin
    if (stdin !== undefined) child.stdin.end(stdin);
    else child.stdin.end();
  });
}
