// TEST EQUIPMENT (e2e apply harness): SSH and SFTP with the system OpenSSH client, honouring a
// pulumi-command `connection` (host, port, user, privateKey, hostKey, dialErrorLimit, perDialTimeout).
// The command string goes to sshd as an exec request, exactly like Go's `session.Run(cmd)` in
// pulumi-command (sshd runs it with the user's shell `-c`).
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

/**
 * The longest the harness keeps dialing with dialErrorLimit -1 and no custom timeout (the provider
 * would try until the engine's context ends).
 */
const UNLIMITED_DIAL_CAP_MS = 180_000;

export class SshClient {
  private readonly dir: string;
  private readonly keyFile: string;
  private readonly knownHosts: string;

  /**
   * `deadlineMs`: when the step's time is up (the resource's customTimeouts for this operation,
   * which the engine turns into the provider call's context deadline: retry.Until in
   * dialWithRetry stops with the context).
   */
  constructor(
    private readonly conn: Connection,
    private readonly deadlineMs?: number,
  ) {
    if (conn.proxy) throw new Error("harness: connection.proxy (bastion) is not supported");
    if (conn.password && !conn.privateKey) throw new Error("harness: password authentication is not supported; use privateKey");
    if (!conn.privateKey) throw new Error(`harness: connection to ${conn.host} has no privateKey (the harness has no agent)`);
    this.dir = mkdtempSync(join(tmpdir(), "railhead-e2e-ssh-"));
    this.keyFile = join(this.dir, "key");
    writeFileSync(this.keyFile, conn.privateKey.endsWith("\n") ? conn.privateKey : `${conn.privateKey}\n`, { mode: 0o600 });
    this.knownHosts = join(this.dir, "known_hosts");
    if (conn.hostKey) writeFileSync(this.knownHosts, `[${conn.host}]:${conn.port ?? 22} ${conn.hostKey.trim()}\n${conn.host} ${conn.hostKey.trim()}\n`);
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
      // Without hostKey the provider uses ssh.InsecureIgnoreHostKey (#794); with it, it pins.
      "-o", c.hostKey ? "StrictHostKeyChecking=yes" : "StrictHostKeyChecking=no",
      "-o", `UserKnownHostsFile=${c.hostKey ? this.knownHosts : "/dev/null"}`,
      ...(timeout > 0 ? ["-o", `ConnectTimeout=${timeout}`] : []),
      "-o", "ServerAliveInterval=10",
    ];
  }

  /**
   * Runs a command, dialing as pulumi-command does (pulumi/pulumi-command
   * provider/pkg/provider/remote/connection.go dialWithRetry + reachedDialingErrorLimit): EVERY
   * dial error is retried (ssh.Dial is TCP connect + handshake + authentication, so a refused key
   * or a host key mismatch is retried too), up to dialErrorLimit + 1 attempts (it gives up when
   * `dials > limit`; -1 unlimited), 100 ms backoff x1.5 up to 5 s, and never past the deadline.
   */
  async run(command: string, stdin?: string, onData?: (chunk: string, stream: "stdout" | "stderr") => void): Promise<ExecResult> {
    const limit = this.conn.dialErrorLimit ?? 10;
    const started = Date.now();
    const deadline = this.deadlineMs ?? (limit >= 0 ? Number.POSITIVE_INFINITY : started + UNLIMITED_DIAL_CAP_MS);
    let delay = 100;
    for (let attempt = 1; ; attempt++) {
      const r = await spawnCollect("ssh", [...this.baseArgs(), `${this.conn.user ?? "root"}@${this.conn.host}`, "--", command], stdin, onData);
      if (!(r.code === 255 && isDialError(r.stderr))) return r;
      const exhausted = (limit >= 0 && attempt > limit) || Date.now() + delay > deadline;
      if (exhausted) return { ...r, stderr: `${r.stderr}\n[harness] gave up dialing ${this.conn.host} after ${attempt} attempts (dialErrorLimit ${limit})`, combined: `${r.combined}\n[harness] gave up dialing ${this.conn.host} after ${attempt} attempts (dialErrorLimit ${limit})` };
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

function isDialError(stderr: string): boolean {
  // OpenSSH's own failures before the session: connect, handshake, host key, authentication.
  return /Connection refused|Connection timed out|No route to host|Network is unreachable|Connection closed by|Connection reset|kex_exchange_identification|banner exchange|Could not resolve|Operation timed out|Permission denied \(|Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|Too many authentication failures/i.test(stderr);
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
