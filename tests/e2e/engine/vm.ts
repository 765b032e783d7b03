// TEST EQUIPMENT (e2e apply harness): an `hcloud.Server` as a real virtual machine. Where the e2e
// host map sends a config host to `vm:<name>` (instead of a rig host), a server create boots a
// QEMU guest (TCG: KVM does not work on this machine kind) from the Debian bookworm image
// tests/vm/image.sh builds, with a NoCloud seed (`cidata`) holding EXACTLY the server's `userData`
// input, the user-data the program rendered (components/cloud-init.ts). Like Hetzner's API, the
// create returns once the machine is starting; cloud-init runs in the guest and the program's own
// readiness command (`cloud-init status --wait`, components/host.ts) waits for it.
//
// Network (QEMU user networking, `restrict=on`: the guest reaches nothing but what is listed):
// - the VM's "public address" is a loopback address of its own, 127.<rig gateway octets 2-3>.<n>,
//   with hostfwd of its ports 22 (SSH) and 80 (the proxy) to the guest's: the program's
//   connection (port 22) works unchanged;
// - guestfwd: Debian's mirror at 10.0.2.100:80 (the image's /etc/hosts names it; cloud-init's apt),
//   the rig registry at its own address (the app, proxy and Litestream images), and each rule in
//   $E2E_VM_GUESTFWD (set by the scenario: the local S3 endpoint for Litestream; see
//   guestForwards). The virtual network is 10.0.0.0/8 so the rig gateway's address is inside it;
//   QEMU runs `socat` per connection to the target on this machine.
// A VM outlives the harness child that created it (one child per `up`): its files live in
// tmp/e2e/vm/<name>/ (overlay disk over the cached image, seed, serial console log, pid file).
// A server delete stops it and removes them; scenarios stop what is left in their `after`.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { REPO, type RigInfo } from "./rig";
import { SshClient, sleep, spawnCollect, type ExecResult } from "./ssh";
import type { Action, ApplyContext, ApplyResult, Phase, Ref } from "./apply";
import type { ResourceState } from "./state";

export const VM_PREFIX = "vm:";
export const VM_DIR = join(REPO, "tmp", "e2e", "vm");
export const IMAGE_SCRIPT = join(REPO, "tests", "vm", "image.sh");
/** The guest address Debian's mirror answers at (tests/vm/image.sh writes it into /etc/hosts). */
const MIRROR_GUEST = "10.0.2.100:80";

export interface VmSpec {
  name: string;
  /** The VM's public address (a loopback address of its own). */
  address: string;
  dir: string;
}

/** `vm:<name>` in the host map: the config host's server is a VM. */
export function vmSpec(rig: RigInfo | undefined, mapped: string | undefined): VmSpec | undefined {
  if (!mapped?.startsWith(VM_PREFIX)) return undefined;
  const name = mapped.slice(VM_PREFIX.length);
  if (!/^[a-z0-9-]{1,20}$/.test(name)) throw new Error(`harness: VM name ${JSON.stringify(name)} (host map ${mapped}) must be [a-z0-9-]{1,20}`);
  if (!rig) throw new Error(`harness: VM ${name} needs the rig (its registry and gateway)`);
  return { name, address: vmAddress(rig, name), dir: join(VM_DIR, name) };
}

/** 127.<gateway octets 2-3>.<20..219 from the name>: per rig and per VM, stable across runs. */
export function vmAddress(rig: RigInfo, name: string): string {
  const [, b, c] = rig.gateway.split(".");
  let h = 0;
  for (const ch of name) h = (h * 31 + ch.charCodeAt(0)) % 200;
  return `127.${b}.${c}.${20 + h}`;
}

/** Builds the image unless cached (tests/vm/image.sh); returns its directory. */
export async function vmImage(): Promise<string> {
  const r = await spawnCollect("bash", [IMAGE_SCRIPT]);
  if (r.code !== 0) throw new Error(`harness: VM image build (tests/vm/image.sh) failed (exit ${r.code}):\n${r.combined.slice(-4000)}`);
  return r.stdout.trim().split("\n").pop() as string;
}

/** Debian's mirror host as this machine's apt uses it (the only mirror reachable here). */
export function mirrorHost(): string {
  for (const f of ["/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list"]) {
    if (!existsSync(f)) continue;
    const m = /https?:\/\/([^/\s:]+)(?::\d+)?\/debian\/?(\s|$)/m.exec(readFileSync(f, "utf8"));
    if (m) return m[1];
  }
  return "deb.debian.org";
}

/**
 * guestfwd rules: Debian's mirror, the rig registry (same address in the guest), and each entry of
 * $E2E_VM_GUESTFWD: `ip:port` (the same address in the guest) or `guestIp:port=hostIp:port`. The
 * guest side must be a 10.x address (inside the virtual network), the host side loopback or the
 * rig gateway: nothing else is reachable from the guest.
 */
export function guestForwards(rig: RigInfo, extra = process.env.E2E_VM_GUESTFWD ?? ""): string[] {
  const rules = [rig.registry.pull, ...extra.split(",").filter(Boolean)];
  const out = [`guestfwd=tcp:${MIRROR_GUEST}-cmd:socat - TCP:${mirrorHost()}:80`];
  for (const rule of new Set(rules)) {
    const [guest, host = guest] = rule.split("=");
    const g = /^(10\.\d+\.\d+\.\d+):(\d+)$/.exec(guest);
    const h = /^(\d+\.\d+\.\d+\.\d+):(\d+)$/.exec(host);
    if (!g || !h || !(h[1] === rig.gateway || h[1].startsWith("127."))) {
      throw new Error(`harness: VM guestfwd ${JSON.stringify(rule)}: want <10.x guest ip>:<port>[=<loopback or rig gateway ${rig.gateway}>:<port>], e.g. 10.0.2.101:9000=127.0.0.1:9000`);
    }
    out.push(`guestfwd=tcp:${g[1]}:${g[2]}-cmd:socat - TCP:${h[1]}:${h[2]}`);
  }
  return out;
}

function pidOf(spec: VmSpec): number | undefined {
  const f = join(spec.dir, "qemu.pid");
  if (!existsSync(f)) return undefined;
  const pid = Number(readFileSync(f, "utf8").trim());
  if (!pid) return undefined;
  try {
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

/** Stops the VM (its qemu process, by pid file) and removes its files. */
export async function destroyVm(spec: VmSpec): Promise<void> {
  const pid = pidOf(spec);
  if (pid) {
    process.kill(pid, "SIGTERM");
    for (let i = 0; i < 50 && pidOf(spec); i++) await sleep(100);
    if (pidOf(spec)) process.kill(pid, "SIGKILL");
  }
  rmSync(spec.dir, { recursive: true, force: true });
}

/** Stops every VM under tmp/e2e/vm (a scenario's clean-up). */
export async function destroyAllVms(rig: RigInfo): Promise<void> {
  if (!existsSync(VM_DIR)) return;
  const { readdirSync } = await import("node:fs");
  for (const name of readdirSync(VM_DIR)) await destroyVm({ name, address: vmAddress(rig, name), dir: join(VM_DIR, name) });
}

/** Starts a new machine: an empty overlay over the image, the seed, qemu in the background. */
export async function bootVm(rig: RigInfo, spec: VmSpec, opts: { userData: string; instanceId: string; hostname: string; memoryMiB?: number }): Promise<void> {
  const image = await vmImage();
  await destroyVm(spec);
  mkdirSync(spec.dir, { recursive: true });
  const must = async (cmd: string, args: string[]) => {
    const r = await spawnCollect(cmd, args);
    if (r.code !== 0) throw new Error(`harness: VM ${spec.name}: ${cmd} ${args.join(" ")} failed (exit ${r.code}):\n${r.combined}`);
  };
  const overlay = join(spec.dir, "disk.qcow2");
  await must("qemu-img", ["create", "-q", "-f", "qcow2", "-F", "raw", "-b", join(image, "disk.img"), overlay]);
  const seed = join(spec.dir, "seed");
  mkdirSync(seed);
  writeFileSync(join(seed, "user-data"), opts.userData);
  writeFileSync(join(seed, "meta-data"), `instance-id: ${opts.instanceId}\nlocal-hostname: ${opts.hostname}\n`);
  await must("genisoimage", ["-quiet", "-output", join(spec.dir, "seed.iso"), "-volid", "cidata", "-joliet", "-rock", join(seed, "user-data"), join(seed, "meta-data")]);
  const netdev = [
    "user,id=n0,restrict=on,net=10.0.0.0/8,host=10.0.2.2,dhcpstart=10.0.2.15,dns=10.0.2.3",
    `hostfwd=tcp:${spec.address}:22-:22`,
    `hostfwd=tcp:${spec.address}:80-:80`,
    ...guestForwards(rig),
  ].join(",");
  const args = [
    "-name", `rh-vm-${spec.name}`,
    "-accel", "tcg,thread=multi,tb-size=256",
    "-cpu", "max",
    "-smp", "2",
    "-m", String(opts.memoryMiB ?? 2048),
    "-kernel", join(image, "vmlinuz"),
    "-initrd", join(image, "initrd.img"),
    "-append", "root=/dev/vda rw console=ttyS0",
    "-drive", `file=${overlay},if=virtio,format=qcow2`,
    "-drive", `file=${join(spec.dir, "seed.iso")},if=virtio,format=raw,readonly=on`,
    "-netdev", netdev,
    "-device", "virtio-net-pci,netdev=n0",
    "-display", "none",
    "-serial", `file:${join(spec.dir, "console.log")}`,
    "-monitor", `unix:${join(spec.dir, "monitor.sock")},server,nowait`,
    "-pidfile", join(spec.dir, "qemu.pid"),
    "-daemonize",
  ];
  writeFileSync(join(spec.dir, "qemu.args"), JSON.stringify(args));
  await must("qemu-system-x86_64", args);
  writeFileSync(join(spec.dir, "started"), String(Date.now()));
}

/**
 * The guest's ed25519 host key, read from its serial console, where cloud-init prints the keys it
 * generated ("-----BEGIN SSH HOST KEY KEYS-----", cc_keys_to_console): the out-of-band channel a
 * cloud console gives. Waits for it up to timeoutMs.
 */
export async function consoleHostKey(spec: VmSpec, timeoutMs = 300_000): Promise<string> {
  const file = join(spec.dir, "console.log");
  const end = Date.now() + timeoutMs;
  for (;;) {
    const text = existsSync(file) ? readFileSync(file, "utf8") : "";
    const block = /-----BEGIN SSH HOST KEY KEYS-----([\s\S]*?)-----END SSH HOST KEY KEYS-----/.exec(text);
    const key = block ? /^(ssh-ed25519 [A-Za-z0-9+/=]+)/m.exec(block[1].replace(/\r/g, "")) : null;
    if (key) return key[1];
    if (Date.now() > end) throw new Error(`harness: VM ${spec.name}: no SSH host keys on its console after ${timeoutMs / 1000} s (${file})`);
    if (!pidOf(spec)) throw new Error(`harness: VM ${spec.name} is not running (console: ${file})`);
    await sleep(1000);
  }
}

/** Runs a script in the guest as `user` over the forwarded port, the host key pinned. */
export async function vmRun(spec: VmSpec, login: { user: string; privateKey: string; hostKey: string }, script: string, stdin?: string): Promise<ExecResult> {
  const ssh = new SshClient({ host: spec.address, port: 22, user: login.user, privateKey: login.privateKey, hostKey: login.hostKey, dialErrorLimit: 5 });
  try {
    return await ssh.run(script, stdin);
  } finally {
    ssh.close();
  }
}

/**
 * Waits until the guest's sshd sends its banner (hostfwd accepts a connection before the guest
 * listens, then closes it, so only the banner counts).
 */
export async function waitForSshd(spec: VmSpec, timeoutMs: number): Promise<void> {
  const net = await import("node:net");
  const end = Date.now() + timeoutMs;
  const banner = () =>
    new Promise<boolean>((resolve) => {
      const s = net.connect({ host: spec.address, port: 22 });
      const done = (v: boolean) => {
        s.destroy();
        resolve(v);
      };
      s.setTimeout(10_000, () => done(false));
      s.on("data", (b: Buffer) => done(b.toString().startsWith("SSH-")));
      s.on("error", () => done(false));
      s.on("close", () => done(false));
    });
  while (!(await banner())) {
    if (Date.now() > end) throw new Error(`harness: VM ${spec.name}: sshd did not answer within ${timeoutMs / 1000} s (console: ${join(spec.dir, "console.log")})`);
    if (!pidOf(spec)) throw new Error(`harness: VM ${spec.name} stopped (console: ${join(spec.dir, "console.log")})`);
    await sleep(2000);
  }
}

/** The server step when the server is a VM (engine/apply.ts serverStep hands over here). */
export async function vmServerStep(ctx: ApplyContext, spec: VmSpec, phase: Phase, r: Ref, olds: ResourceState | undefined, news: Record<string, unknown>): Promise<ApplyResult> {
  const start = Date.now();
  const act = (kind: string, detail: string) => ctx.action({ urn: r.urn, type: r.type, name: r.name, phase, kind, target: `vm:${spec.name}`, detail, start, end: Date.now(), ok: true } satisfies Action);
  if (phase === "delete") {
    ctx.log(`--- delete server ${r.name}: stopping VM ${spec.name}`);
    await destroyVm(spec);
    act("server", "deleted: VM stopped, its disk removed");
    return { id: olds?.id ?? r.id ?? "", outputs: {} };
  }
  if (phase === "update") {
    act("record", "server update (no effect on the VM)");
    return { id: olds?.id ?? r.id ?? "", outputs: { ...(olds?.outputs ?? {}), ...news, id: olds?.id ?? r.id } };
  }
  const userData = typeof news.userData === "string" ? news.userData : "";
  const id = String(50_000 + ctx.nextSerial());
  ctx.log(`--- create server ${r.name}: booting VM ${spec.name} at ${spec.address} (server ${id})`);
  await bootVm(ctx.rig as RigInfo, spec, { userData, instanceId: `hcloud-${id}`, hostname: String(news.name ?? spec.name) });
  // Harness deviation: the create returns once the guest's sshd answers, not right after the boot
  // starts. The program's readiness command dials with dialErrorLimit -1, which the provider
  // bounds only by the 10-minute custom timeout, but the harness caps at 180 s (engine/ssh.ts); a
  // TCG boot on a loaded 2-core machine can take longer than that to start sshd.
  await waitForSshd(spec, 1_200_000);
  act("server", `created server ${id}: VM ${spec.name} booted (QEMU TCG), sshd answering after ${((Date.now() - start) / 1000).toFixed(0)} s`);
  return { id, outputs: { ...news, id, ipv4Address: spec.address, ipv6Address: "", ipv6Network: "", status: "running" }, target: { vm: spec.name } };
}
