// `npm run railhead -- <command>`: day-2 work on a deployed stack, Kamal's `kamal app ...` for
// Railhead. Hosts come from the stack's outputs (`pulumi stack output --json`, or --outputs FILE),
// roles, users and ports from the stack file; every command runs the host tool that `pulumi up`
// uploaded, over SSH (or on this machine for the local stack). Changes of what runs (rollback) go
// through the stack config and `pulumi up`, so Pulumi's state and the hosts always agree.
import { spawn, spawnSync, type StdioOptions } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parse } from "yaml";
import { shellQuote } from "../components/host-command";

const REPO = resolve(__dirname, "..");

// ---------------------------------------------------------------------------------------------
// Logging: one line per step with host, step and seconds; errors name what to try next.

const started = Date.now();
const secs = () => ((Date.now() - started) / 1000).toFixed(1);
export function note(host: string, step: string, message: string): void {
  process.stderr.write(`[railhead] ${host} ${step}: ${message} (${secs()}s)\n`);
}

export class DayTwoError extends Error {
  constructor(
    readonly host: string,
    readonly step: string,
    what: string,
    readonly next: string,
    readonly code = 1,
  ) {
    super(`[railhead] ${host} ERROR ${step}: ${what}. Next: ${next}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Arguments

export interface Options {
  command: string;
  args: string[];
  /** Words after `--` (exec's command). */
  rest: string[];
  stack?: string;
  outputs?: string;
  config?: string;
  identity?: string;
  host?: string;
  dryRun: boolean;
  flags: Map<string, string | true>;
}

const VALUE_FLAGS = new Set(["--stack", "--outputs", "--config", "--identity", "--host", "--since", "--lines", "--grep", "--version", "--message", "--env", "--id"]);
const BOOL_FLAGS = new Set(["--follow", "-f", "--reuse", "--interactive", "-i", "--dry-run", "--yes", "--no-up", "--timestamps", "--help", "-h"]);
const ALIASES: Record<string, string> = { "-f": "--follow", "-i": "--interactive", "-h": "--help" };

export function parseArgs(argv: string[]): Options {
  const flags = new Map<string, string | true>();
  const args: string[] = [];
  let rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--") {
      rest = argv.slice(i + 1);
      break;
    }
    const eq = a.startsWith("--") ? a.indexOf("=") : -1;
    const name = eq > 0 ? a.slice(0, eq) : a;
    if (VALUE_FLAGS.has(name)) {
      const value = eq > 0 ? a.slice(eq + 1) : argv[++i];
      if (value === undefined) throw new DayTwoError("-", "usage", `${name} needs a value`, "npm run railhead -- --help", 2);
      flags.set(name, value);
    } else if (BOOL_FLAGS.has(name)) {
      flags.set(ALIASES[name] ?? name, true);
    } else if (a.startsWith("-")) {
      throw new DayTwoError("-", "usage", `unknown option ${a}`, "npm run railhead -- --help", 2);
    } else {
      args.push(a);
    }
  }
  const str = (k: string): string | undefined => {
    const v = flags.get(k);
    return typeof v === "string" ? v : undefined;
  };
  return {
    command: flags.has("--help") && args.length === 0 ? "help" : (args.shift() ?? "help"),
    args,
    rest,
    stack: str("--stack"),
    outputs: str("--outputs"),
    config: str("--config"),
    identity: str("--identity") ?? process.env.RAILHEAD_SSH_KEY,
    host: str("--host"),
    dryRun: flags.has("--dry-run"),
    flags,
  };
}

export const HELP = `Usage: npm run railhead -- <command> [options]

Day-2 commands on a deployed stack (hosts from the stack's outputs, roles from Pulumi.<stack>.yaml).

Commands:
  details                              what runs where: releases per role, health, proxy slot, accessories
  logs <role|accessory|proxy|litestream> [--follow] [--since 10m] [--lines N] [--grep RE] [--version V]
  exec <role> [--reuse] [--interactive] [--version V] [--env K=V] -- <cmd...>
                                       a one-off container with the release's image and env
                                       (--reuse: inside the running container)
  console [role]                       bin/rails console in the running container (exec --reuse -it)
  maintenance on|off [--message TEXT]  the proxy answers 503 with a page / serves again
  rollback [version] [--yes] [--no-up] without a version: the retained versions per host; with one:
                                       pulumi config set railhead:version/image + pulumi up
  drill [--id ID]                      run the scheduled backup drills now and report

Options:
  --stack NAME        stack (default: the selected one; the local stack uses ./.pulumi)
  --outputs FILE      stack outputs as JSON (default: pulumi stack output --json)
  --config FILE       stack file (default: Pulumi.<stack>.yaml)
  --identity FILE     SSH private key (default: your ssh agent and ~/.ssh/config; env RAILHEAD_SSH_KEY)
  --host NAME         only this host
  --dry-run           print what would run instead of running it
`;

// ---------------------------------------------------------------------------------------------
// The stack: outputs + stack file

export interface HostTarget {
  readonly name: string;
  readonly kind: string;
  readonly address: string;
  readonly user: string;
  readonly port: number;
  readonly hostKey?: string;
}

export interface StackView {
  readonly stack: string;
  readonly service: string;
  readonly hosts: Record<string, HostTarget>;
  /** role -> host names. */
  readonly roles: Record<string, string[]>;
  readonly primaryRole: string;
  /** accessory -> host name. */
  readonly accessories: Record<string, string>;
  readonly image: string;
  readonly version: string;
}

type Json = Record<string, unknown>;

function pulumiCommand(): string[] {
  return (process.env.PULUMI ?? "npx --no-install pulumi").split(/\s+/).filter(Boolean);
}

/** Environment for the Pulumi CLI: the local stack keeps its state in ./.pulumi (as up:local does). */
export function pulumiEnv(stack: string | undefined): NodeJS.ProcessEnv {
  const env = { ...process.env };
  if (stack === "local") {
    env.PULUMI_BACKEND_URL ??= `file://${REPO}/.pulumi`;
    if (!env.PULUMI_CONFIG_PASSPHRASE && !env.PULUMI_CONFIG_PASSPHRASE_FILE) env.PULUMI_CONFIG_PASSPHRASE = "railhead-local";
  }
  return env;
}

function runPulumi(args: string[], stack: string | undefined): { code: number; stdout: string; stderr: string } {
  const [cmd, ...pre] = pulumiCommand();
  const r = spawnSync(cmd, [...pre, ...args], { cwd: REPO, encoding: "utf8", env: pulumiEnv(stack) });
  if (r.error) throw new DayTwoError("-", "pulumi", `could not run ${cmd}: ${r.error.message}`, "install the Pulumi CLI (npm ci installs it), or pass --outputs FILE");
  return { code: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
}

function selectedStack(): string {
  const r = runPulumi(["stack", "--show-name"], undefined);
  const name = r.stdout.trim();
  if (r.code !== 0 || !name) throw new DayTwoError("-", "stack", "no stack is selected", "pass --stack staging (or run pulumi stack select staging)");
  return name;
}

export function readOutputs(opts: Pick<Options, "outputs">, stack: string): Json {
  let text: string;
  if (opts.outputs) {
    if (!existsSync(opts.outputs)) throw new DayTwoError("-", "outputs", `${opts.outputs} does not exist`, "pass the file written by: pulumi stack output --json > outputs.json");
    text = readFileSync(opts.outputs, "utf8");
  } else {
    const r = runPulumi(["stack", "output", "--json", "--stack", stack], stack);
    if (r.code !== 0)
      throw new DayTwoError("-", "outputs", `pulumi stack output failed for stack ${stack}: ${r.stderr.trim().split("\n").pop() ?? ""}`, "check the stack name (pulumi stack ls) and your backend login");
    text = r.stdout;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text.trim() || "{}");
  } catch {
    throw new DayTwoError("-", "outputs", "the stack outputs are not JSON", "pass the output of: pulumi stack output --json");
  }
  const outputs = (parsed ?? {}) as Json;
  if (!outputs.hosts || Object.keys(outputs.hosts as Json).length === 0)
    throw new DayTwoError("-", "outputs", `stack ${stack} has no outputs yet (nothing deployed, or the last pulumi up stopped before the end)`, `run pulumi up --stack ${stack} first`);
  return outputs;
}

/** Joins the outputs (addresses) with the stack file (roles, users, ports, host keys). */
export function stackView(outputs: Json, stackFile: Json, stack: string): StackView {
  const cfg = (stackFile.config ?? {}) as Json;
  const get = <T>(k: string): T | undefined => cfg[`railhead:${k}`] as T | undefined;
  const ssh = get<{ user?: string; port?: number }>("ssh") ?? {};
  const hostCfg = get<Record<string, { ssh?: { address?: string; user?: string; port?: number; hostKey?: string }; local?: Json }>>("hosts") ?? {};
  const outHosts = (outputs.hosts ?? {}) as Record<string, { kind?: string; address?: string; hostKey?: string }>;
  const hosts: Record<string, HostTarget> = {};
  for (const [name, h] of Object.entries(outHosts)) {
    const c = hostCfg[name] ?? {};
    const kind = h.kind ?? (c.local ? "local" : c.ssh ? "ssh" : "hcloud");
    const address = h.address ?? c.ssh?.address;
    if (!address && kind !== "local") throw new DayTwoError(name, "outputs", "the stack outputs have no address for this host", "run pulumi up so the outputs are current");
    hosts[name] = { name, kind, address: address ?? "127.0.0.1", user: c.ssh?.user ?? ssh.user ?? "deploy", port: c.ssh?.port ?? ssh.port ?? 22, hostKey: h.hostKey ?? c.ssh?.hostKey };
  }
  const servers = get<Record<string, string[] | { hosts: string[] }>>("servers") ?? {};
  const roles: Record<string, string[]> = {};
  for (const [role, r] of Object.entries(servers)) roles[role] = Array.isArray(r) ? r : r.hosts;
  const primaryRole = "web" in roles ? "web" : (Object.keys(roles)[0] ?? "web");
  const accessories: Record<string, string> = {};
  for (const [name, a] of Object.entries(get<Record<string, { host?: string }>>("accessories") ?? {})) if (a.host) accessories[name] = a.host;
  const service = String(outputs.service ?? get<string>("service") ?? "");
  if (!service) throw new DayTwoError("-", "config", "no service name in the outputs or the stack file", "set railhead:service in the stack file");
  return {
    stack,
    service,
    hosts,
    roles,
    primaryRole,
    accessories,
    image: String(outputs.image ?? get<string>("image") ?? ""),
    version: String(outputs.version ?? get<string>("version") ?? ""),
  };
}

export function loadStack(opts: Options): StackView {
  const stack = opts.stack ?? (opts.config ? "unknown" : selectedStack());
  const file = opts.config ?? join(REPO, `Pulumi.${stack}.yaml`);
  if (!existsSync(file)) throw new DayTwoError("-", "config", `no stack file ${file}`, "pass --stack NAME or --config FILE");
  const stackFile = (parse(readFileSync(file, "utf8")) ?? {}) as Json;
  return stackView(readOutputs(opts, stack), stackFile, stack);
}

// ---------------------------------------------------------------------------------------------
// Running the host tool

/** The shell line run on a host: the newest uploaded tool, with the host label and argv. */
export function toolLine(host: string, argv: string[]): string {
  const words = ["--host-label", host, ...argv].map(shellQuote).join(" ");
  return (
    `t=$(ls -t "$HOME"/.railhead/bin/railhead-host-* 2>/dev/null | head -n 1); ` +
    `if [ -z "$t" ]; then echo "[railhead] ${host} ERROR tool: the host tool is not on this host. Next: run pulumi up (it uploads the tool)" >&2; exit 3; fi; ` +
    `exec bash "$t" ${words}`
  );
}

let knownHostsDir: string | undefined;

/**
 * argv for ssh to a host (no remote command). The host key is pinned, never learned: a known_hosts
 * file written from the stack (the outputs' hostKey: generated for hcloud servers, configured for
 * ssh hosts) is the only one ssh reads, with StrictHostKeyChecking=yes and only that key's type
 * offered. A host without a key in the stack is refused before ssh runs.
 */
export function sshArgv(h: HostTarget, opts: Pick<Options, "identity">, tty: boolean): string[] {
  const a = ["-p", String(h.port), "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR"];
  if (tty) a.unshift("-t");
  if (opts.identity) a.push("-i", opts.identity, "-o", "IdentitiesOnly=yes");
  const key = /^(ssh-ed25519|ecdsa-sha2-nistp\d+|ssh-rsa) [A-Za-z0-9+/]+={0,2}(\s|$)/.exec(h.hostKey?.trim() ?? "");
  if (!key)
    throw new DayTwoError(
      h.name,
      "host key",
      h.hostKey ? `the stack's host key for ${h.address} is not a public key line` : `the stack has no host key for ${h.address}, so its identity cannot be checked`,
      h.kind === "hcloud" ? "run pulumi up (the outputs carry each server's generated hostKey), then pass --outputs again" : `set hostKey on the host: ssh-keyscan -t ed25519 ${h.address}`,
    );
  knownHostsDir ??= mkdtempSync(join(tmpdir(), "railhead-kh-"));
  const file = join(knownHostsDir, `${h.name}.known_hosts`);
  writeFileSync(file, `${h.port === 22 ? h.address : `[${h.address}]:${h.port}`} ${h.hostKey?.trim()}\n`);
  const algorithms = key[1] === "ssh-rsa" ? "rsa-sha2-512,rsa-sha2-256" : key[1];
  a.push(
    "-o", `UserKnownHostsFile=${file}`,
    "-o", "GlobalKnownHostsFile=/dev/null",
    "-o", "StrictHostKeyChecking=yes",
    "-o", `HostKeyAlgorithms=${algorithms}`,
    "-o", "CheckHostIP=no",
    "-o", "UpdateHostKeys=no",
  );
  a.push(`${h.user}@${h.address}`);
  return a;
}

export interface RunSpec {
  readonly host: HostTarget;
  readonly argv: string[];
  /** Interactive: one host, the terminal passed through. */
  readonly interactive?: boolean;
  /** Text for the tool's stdin (e.g. a maintenance message). */
  readonly stdin?: string;
  /** Prefix every output line with the host name (several hosts at once). */
  readonly prefix?: boolean;
  /** Collect stdout instead of printing it. */
  readonly capture?: boolean;
}

export interface RunResult {
  readonly host: string;
  readonly code: number;
  readonly stdout: string;
}

export function hostProcess(spec: RunSpec, opts: Pick<Options, "identity">): { cmd: string; args: string[] } {
  const line = toolLine(spec.host.name, spec.argv);
  if (spec.host.kind === "local") return { cmd: "bash", args: ["-c", line] };
  return { cmd: "ssh", args: [...sshArgv(spec.host, opts, Boolean(spec.interactive)), line] };
}

function forwardLines(stream: NodeJS.ReadableStream | null, sink: NodeJS.WriteStream, prefix: string | undefined, keep?: (d: string) => void): void {
  if (!stream) return;
  let buf = "";
  stream.setEncoding("utf8");
  stream.on("data", (d: string) => {
    if (keep) return keep(d);
    if (!prefix) return void sink.write(d);
    buf += d;
    const lines = buf.split("\n");
    buf = lines.pop() ?? "";
    for (const l of lines) sink.write(`${prefix} | ${l}\n`);
  });
  stream.on("end", () => {
    if (buf) sink.write(`${prefix} | ${buf}\n`);
  });
}

export function runOnHost(spec: RunSpec, opts: Pick<Options, "identity" | "dryRun">): Promise<RunResult> {
  const { cmd, args } = hostProcess(spec, opts);
  if (opts.dryRun) {
    process.stdout.write(`+ ${[cmd, ...args].map(shellQuote).join(" ")}\n`);
    return Promise.resolve({ host: spec.host.name, code: 0, stdout: "" });
  }
  return new Promise((done) => {
    const stdio: StdioOptions = spec.interactive ? "inherit" : ["pipe", "pipe", "pipe"];
    const child = spawn(cmd, args, { stdio });
    let out = "";
    if (!spec.interactive) {
      const prefix = spec.prefix ? spec.host.name : undefined;
      forwardLines(child.stdout, process.stdout, prefix, spec.capture ? (d) => void (out += d) : undefined);
      forwardLines(child.stderr, process.stderr, prefix);
      child.stdin?.end(spec.stdin ?? "");
    }
    child.on("error", (e) => {
      process.stderr.write(`[railhead] ${spec.host.name} ERROR ${cmd}: ${e.message}. Next: install OpenSSH's client\n`);
      done({ host: spec.host.name, code: 255, stdout: out });
    });
    child.on("close", (code) => {
      const c = code ?? 1;
      if (c === 255 && spec.host.kind !== "local")
        process.stderr.write(
          `[railhead] ${spec.host.name} ERROR ssh: could not reach ${spec.host.user}@${spec.host.address}:${spec.host.port}. Next: check the address (pulumi stack output hosts), your key (--identity or ssh-agent) and that railhead:ssh.allowFrom lets you in\n`,
        );
      done({ host: spec.host.name, code: c, stdout: out });
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Commands

function pick(view: StackView, names: string[], opts: Options, what: string): HostTarget[] {
  const hosts = names
    .filter((n) => !opts.host || n === opts.host)
    .map((n) => view.hosts[n])
    .filter((h): h is HostTarget => Boolean(h));
  if (hosts.length === 0)
    throw new DayTwoError(opts.host ?? "-", "hosts", `no host runs ${what}${opts.host ? ` named ${opts.host}` : ""}`, `hosts of ${what}: ${names.join(", ") || "none"}; check --host and the stack file`);
  return hosts;
}

function roleHosts(view: StackView, role: string, opts: Options): HostTarget[] {
  if (!view.roles[role]) throw new DayTwoError("-", "role", `no role "${role}" in stack ${view.stack}`, `roles: ${Object.keys(view.roles).join(", ")}`);
  return pick(view, view.roles[role], opts, `role ${role}`);
}

async function onHosts(hosts: HostTarget[], argv: string[], opts: Options, step: string, extra: Partial<RunSpec> = {}): Promise<RunResult[]> {
  return Promise.all(
    hosts.map(async (host) => {
      const t0 = Date.now();
      if (!opts.dryRun) note(host.name, step, `${argv[0]} on ${host.kind === "local" ? "this machine" : `${host.user}@${host.address}`}`);
      const r = await runOnHost({ host, argv, prefix: hosts.length > 1, ...extra }, opts);
      if (!opts.dryRun && r.code !== 0 && r.code !== 255) note(host.name, step, `exited ${r.code} after ${((Date.now() - t0) / 1000).toFixed(1)}s`);
      return r;
    }),
  );
}

const worst = (rs: RunResult[]) => rs.reduce((c, r) => (r.code !== 0 ? r.code : c), 0);

function flag(opts: Options, name: string): string | undefined {
  const v = opts.flags.get(name);
  return typeof v === "string" ? v : undefined;
}

export async function details(view: StackView, opts: Options): Promise<number> {
  const hosts = pick(view, Object.keys(view.hosts), opts, "this stack");
  process.stdout.write(`stack ${view.stack}: service ${view.service}, image ${view.image}, version ${view.version}\n`);
  const rolesOf = (h: string) => Object.entries(view.roles).filter(([, hs]) => hs.includes(h)).map(([r]) => r);
  let code = 0;
  // One host after the other, so each host's block stays together.
  for (const h of hosts) {
    process.stdout.write(`\n== ${h.name} (${h.kind}, ${h.address}) roles: ${rolesOf(h.name).join(", ") || "-"} ==\n`);
    const r = await runOnHost({ host: h, argv: ["details", "--service", view.service] }, opts);
    if (r.code !== 0) code = r.code;
  }
  return code;
}

export async function logs(view: StackView, opts: Options): Promise<number> {
  const target = opts.args[0];
  if (!target) throw new DayTwoError("-", "usage", "logs needs a role, an accessory, proxy or litestream", "npm run railhead -- logs web --since 10m", 2);
  const argv = ["logs", "--service", view.service];
  let hosts: HostTarget[];
  if (view.roles[target]) {
    argv.push("--role", target);
    hosts = roleHosts(view, target, opts);
  } else if (view.accessories[target]) {
    argv.push("--accessory", target);
    hosts = pick(view, [view.accessories[target]], opts, `accessory ${target}`);
  } else if (target === "proxy") {
    argv.push("--proxy");
    hosts = pick(view, view.roles[view.primaryRole] ?? [], opts, "the proxy");
  } else if (target === "litestream") {
    argv.push("--litestream");
    hosts = pick(view, Object.keys(view.hosts), opts, "litestream");
  } else {
    throw new DayTwoError(
      "-",
      "logs",
      `"${target}" is neither a role nor an accessory of stack ${view.stack}`,
      `roles: ${Object.keys(view.roles).join(", ")}; accessories: ${Object.keys(view.accessories).join(", ") || "none"}; or proxy, litestream`,
    );
  }
  if (opts.flags.has("--follow")) argv.push("--follow");
  if (opts.flags.has("--timestamps")) argv.push("--timestamps");
  for (const k of ["--since", "--lines", "--grep", "--version"]) {
    const v = flag(opts, k);
    if (v !== undefined) argv.push(k, v);
  }
  return worst(await onHosts(hosts, argv, opts, "logs"));
}

export async function exec(view: StackView, opts: Options, forceInteractive = false): Promise<number> {
  const role = opts.args[0] ?? view.primaryRole;
  if (opts.rest.length === 0) throw new DayTwoError("-", "usage", "exec needs a command after --", "npm run railhead -- exec web -- bin/rails runner 'puts User.count'", 2);
  const interactive = forceInteractive || opts.flags.has("--interactive");
  let hosts = roleHosts(view, role, opts);
  if (interactive) hosts = hosts.slice(0, 1);
  const argv = ["exec", "--service", view.service, "--role", role];
  if (opts.flags.has("--reuse")) argv.push("--reuse");
  if (interactive) argv.push("--interactive", ...(process.stdin.isTTY ? ["--tty"] : []));
  const v = flag(opts, "--version");
  if (v) argv.push("--version", v);
  const e = flag(opts, "--env");
  if (e) argv.push("--env", e);
  argv.push("--", ...opts.rest);
  return worst(await onHosts(hosts, argv, opts, "exec", { interactive: interactive && Boolean(process.stdin.isTTY) }));
}

export async function consoleCmd(view: StackView, opts: Options): Promise<number> {
  const role = opts.args[0] ?? view.primaryRole;
  opts.flags.set("--reuse", true);
  return exec(view, { ...opts, args: [role], rest: ["bin/rails", "console"] }, true);
}

export async function maintenance(view: StackView, opts: Options): Promise<number> {
  const mode = opts.args[0];
  if (mode !== "on" && mode !== "off") throw new DayTwoError("-", "usage", "maintenance takes on or off", 'npm run railhead -- maintenance on --message "Back at 10:00"', 2);
  const hosts = pick(view, view.roles[view.primaryRole] ?? [], opts, `role ${view.primaryRole}`);
  const argv = ["proxy", "maintenance", view.service, mode];
  const code = worst(await onHosts(hosts, argv, opts, "maintenance", { stdin: mode === "on" ? (flag(opts, "--message") ?? "") : "" }));
  if (!opts.dryRun && code === 0) note("-", "maintenance", `${mode} on ${hosts.map((h) => h.name).join(", ")}`);
  return code;
}

export interface Retained {
  readonly host: string;
  readonly role: string;
  readonly version: string;
  readonly state: string;
  readonly image: string;
}

/** Parses `containers --service S` (NAME ROLE VERSION STATE IMAGE, tab-separated); skips `-replaced-` copies. */
export function parseContainers(host: string, service: string, text: string): Retained[] {
  return text
    .split("\n")
    .slice(1)
    .map((l) => l.split("\t"))
    .filter((f) => f.length >= 5 && f[1] && f[2] && f[0] === `${service}-${f[1]}-${f[2]}`)
    .map(([, role, version, state, image]) => ({ host, role, version, state, image }));
}

export interface Candidate {
  readonly version: string;
  readonly image: string;
  readonly running: boolean;
  /** A container of this version exists for every role on every host of that role. */
  readonly complete: boolean;
  readonly missing: string[];
}

/** What rollback can use (Kamal's rule: the version must exist as a container everywhere). */
export function rollbackCandidates(view: StackView, retained: Retained[]): Candidate[] {
  const versions = [...new Set(retained.map((r) => r.version))];
  return versions.map((version) => {
    const missing: string[] = [];
    for (const [role, hosts] of Object.entries(view.roles))
      for (const h of hosts) if (!retained.some((r) => r.version === version && r.role === role && r.host === h)) missing.push(`${role}@${h}`);
    const mine = retained.filter((r) => r.version === version);
    const image = mine.find((r) => r.role === view.primaryRole)?.image ?? mine[0]?.image ?? "";
    return { version, image, running: mine.some((r) => r.state === "running"), complete: missing.length === 0, missing };
  });
}

export async function rollback(view: StackView, opts: Options): Promise<number> {
  const hosts = pick(view, [...new Set(Object.values(view.roles).flat())], opts, "a role");
  const retained: Retained[] = [];
  for (const h of hosts) {
    const r = await runOnHost({ host: h, argv: ["containers", "--service", view.service], capture: true }, { ...opts, dryRun: false });
    if (r.code !== 0) throw new DayTwoError(h.name, "rollback", "could not list the retained releases", "check the host is reachable: npm run railhead -- details");
    retained.push(...parseContainers(h.name, view.service, r.stdout));
  }
  const candidates = rollbackCandidates(view, retained);
  const wanted = opts.args[0];
  if (!wanted) {
    process.stdout.write(`Retained releases of ${view.service} (stack ${view.stack}):\n`);
    for (const c of candidates)
      process.stdout.write(`  ${c.version.padEnd(16)} ${c.running ? "running" : "stopped"}  ${c.complete ? "on every host" : `missing ${c.missing.join(", ")}`}  ${c.image}\n`);
    process.stdout.write(`Roll back with: npm run railhead -- rollback <version> --stack ${view.stack}\n`);
    return 0;
  }
  const c = candidates.find((x) => x.version === wanted);
  if (!c) throw new DayTwoError("-", "rollback", `version ${wanted} is not retained on any host`, `pick one of: ${candidates.map((x) => x.version).join(", ") || "none"} (railhead:retain keeps more)`);
  if (!c.complete)
    throw new DayTwoError("-", "rollback", `version ${wanted} is not retained everywhere (missing ${c.missing.join(", ")})`, "roll back to a version retained on every host, or deploy it again through railhead:image");
  // State and hosts agree: the version and its exact image go into the stack config, then pulumi up
  // runs the releases (which restart the retained containers, without a pull).
  const steps: string[][] = [
    ["config", "set", "railhead:version", wanted, "--stack", view.stack],
    ["config", "set", "railhead:image", c.image, "--stack", view.stack],
    ...(opts.flags.has("--no-up") ? [] : [["up", ...(opts.flags.has("--yes") ? ["--yes"] : []), "--stack", view.stack]]),
  ];
  note("-", "rollback", `to ${wanted} (${c.image}); railhead:image was ${view.image || "unset"}: set it back (or to a new tag) for the next deploy`);
  for (const s of steps) {
    if (opts.dryRun) {
      process.stdout.write(`+ pulumi ${s.map(shellQuote).join(" ")}\n`);
      continue;
    }
    const t0 = Date.now();
    const [cmd, ...pre] = pulumiCommand();
    const r = spawnSync(cmd, [...pre, ...s], { cwd: REPO, stdio: "inherit", env: pulumiEnv(view.stack) });
    if (r.status !== 0)
      throw new DayTwoError("-", `rollback (pulumi ${s[0]})`, `failed after ${((Date.now() - t0) / 1000).toFixed(1)}s`, "read Pulumi's error above; the hosts keep running what they ran");
    note("-", "rollback", `pulumi ${s.slice(0, 3).join(" ")} done in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
  }
  return 0;
}

export async function drill(view: StackView, opts: Options): Promise<number> {
  const hosts = pick(view, Object.keys(view.hosts), opts, "this stack");
  const id = flag(opts, "--id");
  const rs = await onHosts(hosts, ["drill-now", "--service", view.service, ...(id ? ["--id", id] : [])], opts, "drill");
  if (opts.dryRun) return 0;
  // Exit 4: nothing scheduled on that host (a host without databases), not a failure.
  if (rs.every((r) => r.code === 4))
    throw new DayTwoError("-", "drill", "no backup drill is scheduled on any host", "enable railhead:litestream.drill or an accessory's backup in the stack file and run pulumi up");
  return rs.some((r) => r.code !== 0 && r.code !== 4) ? 1 : 0;
}

export const COMMANDS: Record<string, (v: StackView, o: Options) => Promise<number>> = {
  details,
  logs,
  exec: (v, o) => exec(v, o),
  console: consoleCmd,
  maintenance,
  rollback,
  drill,
};

export async function main(argv: string[]): Promise<number> {
  const opts = parseArgs(argv);
  if (opts.command === "help") {
    process.stdout.write(HELP);
    return 0;
  }
  const run = COMMANDS[opts.command];
  if (!run) throw new DayTwoError("-", "usage", `unknown command "${opts.command}"`, `one of: ${Object.keys(COMMANDS).join(", ")} (npm run railhead -- --help)`, 2);
  return run(loadStack(opts), opts);
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`${e instanceof DayTwoError ? e.message : e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(e instanceof DayTwoError ? e.code : 1);
    },
  );
}
