// TEST EQUIPMENT (e2e): what scenarios share: the rig, e2e stack specs with the rig's key, HTTP
// against rig hosts, the host tool's audit log, container listings and a load generator.
import http from "node:http";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Harness, type StackSpec, type UpResult } from "./harness";
import { adminRun, currentHostKey, loadRigInfo, rigHost, type RigInfo } from "./engine/rig";
import { SshClient, type ExecResult } from "./engine/ssh";

export const harness = new Harness();

let rigCache: RigInfo | undefined;
export function rig(): RigInfo {
  rigCache ??= loadRigInfo();
  return rigCache;
}

/**
 * The rig hosts e2e scenarios use, in order: $E2E_RIG_HOSTS (e.g. "h4,h5,h6"), else the rig's last
 * three hosts. Other suites use h1..h3 while developing; a rig of 6 keeps e2e off their hosts.
 */
export function slot(i: number): string {
  const names = process.env.E2E_RIG_HOSTS ? process.env.E2E_RIG_HOSTS.split(",") : rig().hosts.slice(-3).map((h) => h.name);
  if (!names[i]) throw new Error(`e2e needs rig host #${i + 1}; have ${names.join(", ")}`);
  return names[i];
}

/** An hcloud host entry whose private IP is the rig host's (ServerNetwork is checked against it). */
export function hcloudHost(rigName: string, location = "fsn1", image = "ubuntu-24.04"): Record<string, unknown> {
  return { hcloud: { serverType: "cx23", location, image }, privateIp: privateIp(rigName) };
}

export const IMAGE = (tag: string) => `${rig().registry.pull}/railhead-test/app:${tag}`;

/** The rig's address of a rig host (h1 -> 10.77.0.11). */
export const ip = (rigName: string) => rigHost(rig(), rigName).publicIp;
export const privateIp = (rigName: string) => rigHost(rig(), rigName).privateIp;

/** The user every e2e stack logs in as, as on a host Railhead's cloud-init set up (never root). */
export function deployUser(): string {
  const user = rig().deployUser;
  if (!user) throw new Error("the rig has no deploy user (rig.json deployUser): bring it up again with tests/rig/rig.sh up --fresh");
  return user;
}

/** The host key a rig host presents now: what `ssh-keyscan -t ed25519` would print, for an `ssh` host's hostKey. */
export function hostKey(rigName: string): string {
  const key = currentHostKey(rigHost(rig(), rigName));
  if (!key) throw new Error(`rig host ${rigName} has no host key in rig.json`);
  return key;
}

/**
 * An e2e stack: the stack file under tests/e2e/stacks plus what only the running rig knows (its SSH
 * key pair, deploy user, registry address and private IPs), and the config-host -> rig-host map.
 */
export function e2eStack(stack: string, hostMap: Record<string, string>, config: Record<string, unknown> = {}, file?: string): StackSpec {
  const r = rig();
  return {
    stack,
    file: file ? join(__dirname, "stacks", file) : undefined,
    hostMap,
    secrets: { SSH_PRIVATE_KEY: readFileSync(r.sshKey, "utf8").trim() },
    config: {
      ssh: { user: deployUser(), privateKey: ["SSH_PRIVATE_KEY"], publicKey: readFileSync(`${r.sshKey}.pub`, "utf8").trim() },
      ...config,
    },
  };
}

export async function up(spec: StackSpec): Promise<UpResult> {
  const r = await harness.up(spec);
  process.stdout.write(`# up ${spec.stack}: ${r.ok ? "ok" : "FAILED"} in ${r.seconds.toFixed(1)} s, ${r.executed} actions\n`);
  // Every e2e stack logs in as the deploy user, as on a host Railhead's cloud-init set up.
  const asRoot = r.actions.filter((a) => a.kind === "command" && a.target?.startsWith("root@"));
  if (asRoot.length > 0) throw new Error(`${spec.stack}: ${asRoot.length} command(s) logged in as root (${asRoot[0].name}); e2e stacks must use ssh.user ${deployUser()}`);
  return r;
}

/** Asserts an up succeeded, with its log in the message when it did not. */
export function mustSucceed(r: UpResult): void {
  if (!r.ok) throw new Error(`up failed: ${r.error}\n--- log (tail) ---\n${r.log.split("\n").slice(-60).join("\n")}`);
}

export interface HttpResponse {
  status: number;
  body: string;
}

export function httpGet(host: string, path: string, opts: { port?: number; hostHeader?: string; timeoutMs?: number; agent?: http.Agent } = {}): Promise<HttpResponse> {
  return httpRequest("GET", host, path, opts);
}

export function httpRequest(method: string, host: string, path: string, opts: { port?: number; hostHeader?: string; timeoutMs?: number; agent?: http.Agent } = {}): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host, port: opts.port ?? 80, path, method, headers: opts.hostHeader ? { Host: opts.hostHeader } : {}, agent: opts.agent, timeout: opts.timeoutMs ?? 5000 },
      (res) => {
        let body = "";
        res.on("data", (b: Buffer) => (body += b.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("timeout", () => req.destroy(new Error(`timeout GET http://${host}${path}`)));
    req.on("error", reject);
    req.end();
  });
}

/** The version the app at host serves on `/version` (through the proxy). */
export async function served(host: string, hostHeader?: string): Promise<string> {
  const r = await httpGet(host, "/version", { hostHeader });
  if (r.status !== 200) throw new Error(`GET http://${host}/version${hostHeader ? ` (Host: ${hostHeader})` : ""} -> ${r.status} ${r.body.slice(0, 200)}`);
  return r.body.trim();
}

/** Runs a script on a rig host as root (the harness's own access). */
export async function onHost(rigName: string, script: string): Promise<string> {
  const r = await adminRun(rig(), rigHost(rig(), rigName), script);
  if (r.code !== 0) throw new Error(`on ${rigName}: ${script} -> exit ${r.code}\n${r.combined}`);
  return r.stdout;
}

/** `docker ps` names (running only unless all). */
export async function containers(rigName: string, all = false): Promise<string[]> {
  return (await onHost(rigName, `docker ps ${all ? "-a " : ""}--format '{{.Names}}'`)).split("\n").filter(Boolean).sort();
}

/**
 * Ids of running containers of one service plus the host's proxy (names `<service>-*`,
 * `railhead-*`), so other suites' containers on a shared rig do not count.
 */
export async function containerIds(rigName: string, service: string): Promise<string[]> {
  const out = await onHost(rigName, "docker ps --no-trunc --format '{{.ID}} {{.Names}}'");
  return out
    .split("\n")
    .filter(Boolean)
    .map((l) => l.split(" "))
    .filter(([, name]) => name.startsWith(`${service}-`) || name.startsWith("railhead-"))
    .map(([id, name]) => `${name} ${id}`)
    .sort();
}

/** Runs a script on a rig host as the deploy user (where the stacks put the tool and its state), host key pinned. */
export async function asDeploy(rigName: string, script: string, stdin?: string): Promise<ExecResult> {
  const r = rig();
  const host = rigHost(r, rigName);
  const ssh = new SshClient({ host: host.publicIp, port: host.sshPort, user: deployUser(), privateKey: readFileSync(r.sshKey, "utf8"), hostKey: hostKey(rigName), dialErrorLimit: 5 });
  try {
    return await ssh.run(script, stdin);
  } finally {
    ssh.close();
  }
}

/** The host tool's audit log for a service (newest tool on the host). */
export async function audit(rigName: string, service: string): Promise<string[]> {
  const r = await asDeploy(rigName, `tool=$(ls -t "$HOME"/.railhead/bin/railhead-host-* | head -n1); bash "$tool" audit --service ${service}`);
  if (r.code !== 0) throw new Error(`audit on ${rigName} -> exit ${r.code}\n${r.combined}`);
  return r.stdout.split("\n").filter(Boolean);
}

export async function tool(rigName: string, args: string, stdin?: string): Promise<string> {
  const r = await asDeploy(rigName, `tool=$(ls -t "$HOME"/.railhead/bin/railhead-host-* | head -n1); bash "$tool" --host-label ${rigName} ${args}`, stdin);
  if (r.code !== 0) throw new Error(`tool ${args} on ${rigName} -> exit ${r.code}\n${r.combined}`);
  return r.stdout;
}

/** Keep-alive GET load against a host; counts non-2xx answers and errors. */
export class Load {
  ok = 0;
  failed = 0;
  readonly failures: string[] = [];
  readonly versions = new Map<string, number>();
  private running = true;
  private readonly loops: Promise<void>[] = [];

  constructor(host: string, concurrency = 4, hostHeader?: string) {
    const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
    for (let i = 0; i < concurrency; i++) {
      this.loops.push(
        (async () => {
          while (this.running) {
            try {
              const r = await httpGet(host, "/version", { agent, hostHeader, timeoutMs: 10_000 });
              if (r.status >= 200 && r.status < 300) {
                this.ok++;
                const v = r.body.trim();
                this.versions.set(v, (this.versions.get(v) ?? 0) + 1);
              } else {
                this.failed++;
                if (this.failures.length < 20) this.failures.push(`${r.status} ${r.body.slice(0, 80)}`);
              }
            } catch (e) {
              this.failed++;
              if (this.failures.length < 20) this.failures.push(String(e));
            }
          }
        })(),
      );
    }
  }

  async stop(): Promise<this> {
    this.running = false;
    await Promise.all(this.loops);
    return this;
  }
}
