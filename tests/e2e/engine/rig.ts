// TEST EQUIPMENT (e2e apply harness): the rig as the harness's "cloud". It reads .rig/rig.json
// (written by tests/rig/rig.sh up) and does, over SSH as root with the rig's key, what a cloud
// API would do to a machine: wipe it (a new or rebuilt server), boot it (cloud-init), filter its
// public interface (a firewall). Program commands never use this path; they use their own
// `connection` input (as the `deploy` user, pinning the host key the program generated).
//
// Host keys: a booted server presents the key its user-data's `ssh_keys` carries. The harness
// writes it into the rig host's sshd HostKey file (rig.json hosts[].hostKeyFile; the rig's own key
// is kept beside it as `.rig`) and sends sshd SIGHUP (it re-executes and loads the key; open
// sessions stay). A wiped machine gets the rig's own key back. The harness's own root connections
// pin whatever key it installed last (read from the key file on this machine).
import { copyFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { SshClient, spawnCollect, type ExecResult } from "./ssh";

export interface RigHost {
  name: string;
  publicIp: string;
  privateIp: string;
  sshPort: number;
  hostKey?: string;
  dockerHost?: string;
  home?: string;
  /** The deploy user's home from the root namespace (`/home/deploy` inside the host). */
  deployHome?: string;
  /** The sshd HostKey file (private; `.pub` beside it) and sshd's pid file, from the root namespace. */
  hostKeyFile?: string;
  sshdPidFile?: string;
}

export interface RigInfo {
  sshKey: string;
  sshUser: string;
  /** The login e2e stacks use (in the docker group on every host; rig.sh creates it). */
  deployUser?: string;
  gateway: string;
  publicCidr: string;
  privateCidr: string;
  registry: { push: string; pull: string };
  hosts: RigHost[];
  images: Record<string, string>;
}

export const REPO = join(__dirname, "..", "..", "..");
export const RIG_JSON = join(REPO, ".rig", "rig.json");

export function loadRigInfo(file = process.env.E2E_RIG_JSON ?? RIG_JSON): RigInfo {
  if (!existsSync(file)) throw new Error(`harness: ${file} is missing; bring the rig up first (bash tests/rig/rig.sh up)`);
  return JSON.parse(readFileSync(file, "utf8")) as RigInfo;
}

export function rigHost(rig: RigInfo, name: string): RigHost {
  const h = rig.hosts.find((x) => x.name === name);
  if (!h) throw new Error(`harness: rig host ${name} does not exist (rig has ${rig.hosts.map((x) => x.name).join(", ")})`);
  return h;
}

/** The key a rig host's sshd presents now (`<type> <base64>`): the rig's, or one a boot installed. */
export function currentHostKey(host: RigHost): string | undefined {
  if (host.hostKeyFile && existsSync(`${host.hostKeyFile}.pub`)) return readFileSync(`${host.hostKeyFile}.pub`, "utf8").trim().split(/\s+/).slice(0, 2).join(" ");
  return host.hostKey;
}

function requireKeyFiles(host: RigHost): { keyFile: string; pidFile: string } {
  if (!host.hostKeyFile || !host.sshdPidFile) throw new Error(`harness: rig.json has no hostKeyFile/sshdPidFile for ${host.name} (a rig from before host-key pinning): run tests/rig/rig.sh up --fresh`);
  return { keyFile: host.hostKeyFile, pidFile: host.sshdPidFile };
}

/** Makes the host's sshd present this key pair (the rig's own is kept as `<keyFile>.rig` first). */
function installHostKey(host: RigHost, privateKey: string, publicKey: string): void {
  const { keyFile, pidFile } = requireKeyFiles(host);
  if (!existsSync(`${keyFile}.rig`)) {
    copyFileSync(keyFile, `${keyFile}.rig`);
    copyFileSync(`${keyFile}.pub`, `${keyFile}.rig.pub`);
  }
  writeFileSync(keyFile, privateKey.endsWith("\n") ? privateKey : `${privateKey}\n`, { mode: 0o600 });
  writeFileSync(`${keyFile}.pub`, `${publicKey.trim()}\n`, { mode: 0o644 });
  process.kill(Number(readFileSync(pidFile, "utf8").trim()), "SIGHUP");
}

/** Gives a host the rig's own key back (a new machine does not carry a booted server's key). */
function restoreRigHostKey(host: RigHost): void {
  const { keyFile, pidFile } = requireKeyFiles(host);
  if (!existsSync(`${keyFile}.rig`)) return;
  if (readFileSync(keyFile, "utf8") === readFileSync(`${keyFile}.rig`, "utf8")) return;
  copyFileSync(`${keyFile}.rig`, keyFile);
  copyFileSync(`${keyFile}.rig.pub`, `${keyFile}.pub`);
  process.kill(Number(readFileSync(pidFile, "utf8").trim()), "SIGHUP");
}

/** Runs a shell script as root on a rig host (the harness's own access, not the program's). */
export async function adminRun(rig: RigInfo, host: RigHost, script: string, stdin?: string): Promise<ExecResult> {
  const ssh = new SshClient({
    host: host.publicIp,
    port: host.sshPort,
    user: rig.sshUser,
    privateKey: readFileSync(rig.sshKey, "utf8"),
    hostKey: currentHostKey(host),
    dialErrorLimit: 5,
  });
  try {
    return await ssh.run(script, stdin);
  } finally {
    ssh.close();
  }
}

async function adminCheck(rig: RigInfo, host: RigHost, what: string, script: string, stdin?: string): Promise<string> {
  const r = await adminRun(rig, host, script, stdin);
  if (r.code !== 0) throw new Error(`harness: ${what} on ${host.name} failed (exit ${r.code}):\n${r.combined}`);
  return r.stdout;
}

/**
 * A new machine: no containers, volumes, networks or images; an empty $HOME for root and the
 * deploy user (except the rig's authorized key, standing in for the key Hetzner installs), /tmp and
 * /run/cloud-init; no firewall; the rig's own host key. What `rig.sh reset-host` does.
 */
export async function wipeHost(rig: RigInfo, host: RigHost): Promise<void> {
  restoreRigHostKey(host);
  const deployHome = rig.deployUser ? `/home/${rig.deployUser}` : undefined;
  await adminCheck(
    rig,
    host,
    "wipe (new machine)",
    [
      "set -eu",
      // a container being removed already (restart policy, a concurrent remover) makes rm fail: retry
      'for i in 1 2 3 4 5 6 7 8 9 10; do ids=$(docker ps -aq); [ -z "$ids" ] && break; docker rm -f $ids >/dev/null 2>&1 || sleep 1; done',
      'ids=$(docker ps -aq); if [ -n "$ids" ]; then echo "containers left: $ids" >&2; exit 1; fi',
      'vols=$(docker volume ls -q); if [ -n "$vols" ]; then docker volume rm -f $vols >/dev/null; fi',
      'nets=$(docker network ls --filter type=custom -q); if [ -n "$nets" ]; then docker network rm $nets >/dev/null; fi',
      'imgs=$(docker images -aq); if [ -n "$imgs" ]; then docker rmi -f $imgs >/dev/null 2>&1 || true; fi',
      'find "$HOME" -mindepth 1 -maxdepth 1 ! -name .ssh -exec rm -rf {} +',
      ...(deployHome ? [`if [ -d ${deployHome}/.ssh ]; then find ${deployHome} -mindepth 1 -maxdepth 1 ! -name .ssh -exec rm -rf {} +; fi`] : []),
      "find /tmp -mindepth 1 -maxdepth 1 -exec rm -rf {} + 2>/dev/null || true",
      "rm -rf /run/cloud-init",
      firewallScript(null),
      'echo "wiped $(hostname)"',
    ].join("\n"),
  );
}

// ---------------------------------------------------------------------------------------------
// cloud-init

export interface BootReport {
  applied: string[];
  notApplied: string[];
  schemaErrors: string[];
}

/** cloud-init's status.json/result.json (cloudinit/cmd/status.py reads exactly these). */
function statusJson(running: boolean, t0: number, t1: number, errors: string[]): { status: string; result: string } {
  const stage = (s: number, f: number) => ({ start: s, finished: running ? null : f, errors });
  const v1: Record<string, unknown> = {
    datasource: "DataSourceHetzner (railhead e2e rig)",
    stage: running ? "init" : null,
    "init-local": { start: t0, finished: t0, errors: [] },
    init: stage(t0, t1),
    "modules-config": running ? { start: null, finished: null, errors: [] } : stage(t1, t1),
    "modules-final": running ? { start: null, finished: null, errors: [] } : stage(t1, t1),
  };
  return { status: JSON.stringify({ v1 }), result: JSON.stringify({ v1: { datasource: v1.datasource, errors } }) };
}

/** Marks cloud-init as running on a fresh machine: `cloud-init status --wait` now blocks. */
export async function markBooting(rig: RigInfo, host: RigHost): Promise<void> {
  const now = Date.now() / 1000;
  const { status } = statusJson(true, now, now, []);
  await adminCheck(rig, host, "cloud-init start", "set -eu; mkdir -p /run/cloud-init; rm -f /run/cloud-init/result.json; cat > /run/cloud-init/status.json", status);
}

/**
 * Boots a machine from its user-data: validates it with Debian's `cloud-init schema` (on this
 * machine), applies what a rig host can take without touching the machine the rig hosts share
 * (ssh_authorized_keys for root, write_files under $HOME or /tmp), records the rest, then writes
 * cloud-init's status files so the real `cloud-init status --wait` on the host reports done (or
 * error, with the schema errors, if the user-data is invalid).
 */
export async function bootHost(rig: RigInfo, host: RigHost, userData: string | undefined): Promise<BootReport> {
  const t0 = Date.now() / 1000;
  const report: BootReport = { applied: [], notApplied: [], schemaErrors: [] };
  const steps: string[] = ["set -eu"];
  if (userData && userData.startsWith("#cloud-config")) {
    report.schemaErrors = await validateCloudConfig(userData);
    const doc = (parseYaml(userData) ?? {}) as Record<string, unknown>;
    const keys = (doc.ssh_keys ?? {}) as Record<string, string>;
    if (keys.ed25519_private && keys.ed25519_public) {
      // cc_ssh writes the host key in cloud-init's init stage, before sshd starts: first here too.
      installHostKey(host, keys.ed25519_private, keys.ed25519_public);
      report.applied.push("ssh_keys ed25519 (the rig host's sshd HostKey; reloaded)");
    }
    for (const key of Object.keys(doc)) {
      if (key === "ssh_keys") {
        for (const k of Object.keys(keys).filter((x) => !/^ed25519_(private|public)$/.test(x))) report.notApplied.push(`ssh_keys ${k} (the rig's sshd has one HostKey, ed25519)`);
      } else if (key === "ssh_deletekeys") {
        report.applied.push("ssh_deletekeys (the rig's sshd loads only its one HostKey file)");
      } else if (key === "write_files") {
        for (const f of (doc.write_files as Array<{ path: string; content?: string; permissions?: string }>) ?? []) {
          if (/^\/(root|tmp)\//.test(f.path)) {
            const b64 = Buffer.from(f.content ?? "").toString("base64");
            steps.push(`mkdir -p "$(dirname '${f.path}')"; echo '${b64}' | base64 -d > '${f.path}'; chmod ${f.permissions ?? "0644"} '${f.path}'`);
            report.applied.push(`write_files ${f.path}`);
          } else report.notApplied.push(`write_files ${f.path} (the rig's hosts share /etc and /usr)`);
        }
      } else if (key === "users") {
        for (const u of (doc.users as Array<string | { name: string; ssh_authorized_keys?: string[] }>) ?? []) {
          const name = typeof u === "string" ? u : u.name;
          const home = name === "root" ? "/root" : name === rig.deployUser ? `/home/${name}` : undefined;
          if (home && typeof u !== "string") {
            // The account itself exists on the machine (rig.sh: shared /etc, in the docker group);
            // its keys go into this host's own home, as cloud-init's ssh_authorized_keys would.
            for (const k of u.ssh_authorized_keys ?? []) {
              if (/['\n]/.test(k)) throw new Error(`harness: ssh_authorized_keys entry of ${name} holds a quote or newline`);
              steps.push(`grep -qxF '${k}' ${home}/.ssh/authorized_keys || echo '${k}' >> ${home}/.ssh/authorized_keys`);
            }
            if (name !== "root") steps.push(`id -nG ${name} | tr ' ' '\\n' | grep -qx docker || { echo "${name} is not in the docker group (rig.sh up creates it so)" >&2; exit 1; }`);
            report.applied.push(`users ${name} ssh_authorized_keys (account from rig.sh: shared /etc/passwd)`);
          } else report.notApplied.push(`users ${name} (the rig's hosts share /etc/passwd; only root and ${rig.deployUser ?? "the deploy user"} exist)`);
        }
      } else if (key === "packages") {
        report.notApplied.push(`packages ${JSON.stringify(doc.packages)} (already on the rig host: docker, bash, curl)`);
      } else report.notApplied.push(`${key} (not applicable on a rig host)`);
    }
  } else if (userData) {
    report.notApplied.push("user-data is not #cloud-config (not applied)");
  }
  const t1 = Date.now() / 1000;
  const errors = report.schemaErrors.map((e) => `user-data schema: ${e}`);
  const { status, result } = statusJson(false, t0, t1, errors);
  const log = JSON.stringify(report, null, 2);
  steps.push(
    "mkdir -p /run/cloud-init",
    `echo '${Buffer.from(log).toString("base64")}' | base64 -d > /run/cloud-init/railhead-rig-boot.json`,
    `echo '${Buffer.from(result).toString("base64")}' | base64 -d > /run/cloud-init/result.json`,
    `echo '${Buffer.from(status).toString("base64")}' | base64 -d > /run/cloud-init/status.json`,
  );
  await adminCheck(rig, host, "cloud-init boot", steps.join("\n"));
  return report;
}

async function validateCloudConfig(userData: string): Promise<string[]> {
  const { mkdtempSync, writeFileSync, rmSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const dir = mkdtempSync(join(tmpdir(), "railhead-e2e-ud-"));
  try {
    const file = join(dir, "user-data");
    writeFileSync(file, userData);
    const r = await spawnCollect("cloud-init", ["schema", "--config-file", file]);
    if (r.code === 127) return []; // cloud-init not installed here: cannot validate (recorded by caller? no: CI installs it)
    if (r.code === 0) return [];
    return r.combined.split("\n").filter((l) => l.trim() !== "" && !/^Valid schema/.test(l));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// firewall

export interface FirewallRule {
  direction?: string;
  protocol?: string;
  port?: string;
  sourceIps?: string[];
  description?: string;
}

/**
 * iptables for a Hetzner firewall on the host's public interface (eth0): stateful, inbound only,
 * default drop for what no rule allows. Private-network (eth1) traffic is not filtered, as on
 * Hetzner. `null` removes the filter. IPv6 sources are not expressible on the IPv4-only rig and
 * are recorded by the caller.
 */
export function firewallScript(rules: FirewallRule[] | null): string {
  const lines = [
    "iptables -D INPUT -i eth0 -j RAILHEAD-FW 2>/dev/null || true",
    "iptables -F RAILHEAD-FW 2>/dev/null || true",
    "iptables -X RAILHEAD-FW 2>/dev/null || true",
  ];
  if (rules === null) return lines.join("\n");
  lines.push("iptables -N RAILHEAD-FW 2>/dev/null || iptables -F RAILHEAD-FW", "iptables -A RAILHEAD-FW -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT");
  for (const r of rules) {
    if ((r.direction ?? "in") !== "in") continue;
    const sources = (r.sourceIps ?? []).filter((s) => !s.includes(":"));
    const proto = r.protocol ?? "tcp";
    const portArg = (proto === "tcp" || proto === "udp") && r.port && r.port !== "any" ? ` --dport ${r.port.replace("-", ":")}` : "";
    for (const src of sources) lines.push(`iptables -A RAILHEAD-FW -p ${proto} -s ${src}${portArg} -j ACCEPT`);
  }
  lines.push("iptables -A RAILHEAD-FW -j DROP", "iptables -I INPUT 1 -i eth0 -j RAILHEAD-FW");
  return lines.join("\n");
}

export async function applyFirewall(rig: RigInfo, host: RigHost, rules: FirewallRule[] | null): Promise<void> {
  await adminCheck(rig, host, "firewall", `set -eu\n${firewallScript(rules)}`);
}
