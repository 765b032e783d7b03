// TEST EQUIPMENT (e2e apply harness): what each supported resource type does to a real local
// target on create, update and delete. Anything else fails the run by type name.
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SshClient, spawnCollect, type Connection, type ExecResult } from "./ssh";
import { applyFirewall, bootHost, markBooting, rigHost, wipeHost, type FirewallRule, type RigHost, type RigInfo } from "./rig";
import { isPlainAsset, type PlainAsset } from "./values";
import type { CloudState, ResourceState } from "./state";
import { s3Request, s3Target, versioningXml } from "./s3";
import { buildImage, type ImageInputs } from "./docker";
import { vmServerStep, vmSpec } from "./vm";
import { generateEd25519 } from "../../support/ssh-keys";

export type Phase = "create" | "update" | "delete";

/** One real action the harness took (a command run, a file copied, a host wiped...). */
export interface Action {
  urn: string;
  type: string;
  name: string;
  phase: Phase;
  /** "command", "copy", "server", "firewall", "record", ... */
  kind: string;
  target?: string;
  detail?: string;
  start: number;
  end: number;
  ok: boolean;
}

export interface ApplyContext {
  rig?: RigInfo;
  /** config host name -> rig host name, for hcloud servers and primary IPs. */
  hostMap: Record<string, string>;
  /** Live resources of this run (new state so far, plus old state not yet replaced). */
  live(): ResourceState[];
  nextSerial(): number;
  log(line: string): void;
  action(a: Action): void;
  /** Background work (cloud-init boots) the run must wait for before it ends. */
  background(p: Promise<unknown>): void;
  /** Cloud-side facts kept in the stack state (network attachments). */
  cloud: CloudState;
}

export interface ApplyResult {
  id: string;
  outputs: Record<string, unknown>;
  target?: Record<string, unknown>;
}

export class StepError extends Error {}

export const SUPPORTED_TYPES = [
  "command:remote:Command",
  "command:local:Command",
  "command:remote:CopyToRemote",
  "hcloud:index/server:Server",
  "hcloud:index/primaryIp:PrimaryIp",
  "hcloud:index/sshKey:SshKey",
  "hcloud:index/firewall:Firewall",
  "hcloud:index/firewallAttachment:FirewallAttachment",
  "hcloud:index/network:Network",
  "hcloud:index/networkSubnet:NetworkSubnet",
  "hcloud:index/serverNetwork:ServerNetwork",
  "aws:s3/bucket:Bucket",
  "aws:s3/bucketV2:BucketV2",
  "aws:s3/bucketVersioning:BucketVersioning",
  "aws:s3/bucketVersioningV2:BucketVersioningV2",
  "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
  "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
  "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
  "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
  "aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2",
  "aws:iam/user:User",
  "aws:iam/accessKey:AccessKey",
  "aws:iam/userPolicy:UserPolicy",
  "docker:index/image:Image",
  "tls:index/privateKey:PrivateKey",
];

export function isSupported(type: string, custom: boolean): boolean {
  return !custom || type.startsWith("pulumi:providers:") || SUPPORTED_TYPES.includes(type);
}

type Inputs = Record<string, unknown>;

/** The resource a step is for. */
export interface Ref {
  urn: string;
  type: string;
  name: string;
  id?: string;
  /** The resource's options (customTimeouts bound a step's dialing). */
  options?: { customTimeouts?: { create: string; update: string; delete: string } };
}

/** A Go duration ("10m", "1h30m", "45s") in ms; undefined when empty or unparsable. */
export function goDurationMs(d: string | undefined): number | undefined {
  if (!d) return undefined;
  const parts = [...d.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join("") !== d) return undefined;
  const unit: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1 };
  return parts.reduce((ms, p) => ms + Number(p[1]) * unit[p[2]], 0);
}

export async function applyStep(ctx: ApplyContext, phase: Phase, r: Ref, olds: ResourceState | undefined, news: Inputs): Promise<ApplyResult> {
  const t = r.type;
  if (t.startsWith("pulumi:providers:")) return { id: r.id || `provider-${ctx.nextSerial()}`, outputs: news };
  switch (t) {
    case "command:remote:Command":
    case "command:local:Command":
      return commandStep(ctx, phase, r, olds, news);
    case "command:remote:CopyToRemote":
      return copyStep(ctx, phase, r, olds, news);
    case "hcloud:index/server:Server":
      return serverStep(ctx, phase, r, olds, news);
    case "hcloud:index/primaryIp:PrimaryIp":
      return primaryIpStep(ctx, phase, r, olds, news);
    case "hcloud:index/firewall:Firewall":
    case "hcloud:index/firewallAttachment:FirewallAttachment":
      // the effect is on the servers: the runner calls syncFirewalls once this is in the live set
      return recordStep(ctx, phase, r, olds, news);
    case "hcloud:index/serverNetwork:ServerNetwork":
      return serverNetworkStep(ctx, phase, r, olds, news);
    case "docker:index/image:Image":
      return imageStep(ctx, phase, r, olds, news);
    case "tls:index/privateKey:PrivateKey":
      return privateKeyStep(ctx, phase, r, olds, news);
    default:
      if (t.startsWith("aws:")) return awsStep(ctx, phase, r, olds, news);
      if (SUPPORTED_TYPES.includes(t)) return recordStep(ctx, phase, r, olds, news);
      throw new StepError(`harness: resource type ${t} (${r.name}) is not supported by the e2e apply harness`);
  }
}

function recordStep(ctx: ApplyContext, phase: Phase, r: Ref, olds: ResourceState | undefined, news: Inputs): ApplyResult {
  const now = Date.now();
  ctx.action({ urn: r.urn, type: r.type, name: r.name, phase, kind: "record", start: now, end: now, ok: true, detail: "recorded (no local target)" });
  const id = phase === "create" ? String(1000 + ctx.nextSerial()) : (olds?.id ?? r.id ?? "");
  const extra: Inputs = {};
  if (r.type === "hcloud:index/sshKey:SshKey") extra.fingerprint = `harness:${id}`;
  if (r.type === "hcloud:index/network:Network" || r.type === "hcloud:index/networkSubnet:NetworkSubnet") extra.id = id;
  return { id, outputs: { ...news, ...extra } };
}

// ---------------------------------------------------------------------------------------------
// commands

interface CommandInputs {
  create?: string;
  update?: string;
  delete?: string;
  stdin?: string;
  logging?: string;
  connection?: Connection;
  interpreter?: string[];
  dir?: string;
  environment?: Record<string, string>;
  addPreviousOutputInEnv?: boolean;
}

async function commandStep(ctx: ApplyContext, phase: Phase, r: Ref, olds: ResourceState | undefined, news: Inputs): Promise<ApplyResult> {
  // commandController.go: create runs `create`; update runs `update` if set else `create` (new
  // inputs); delete runs `delete` from state (old inputs, old connection).
  const inputs = (phase === "delete" ? (olds?.inputs ?? {}) : news) as CommandInputs;
  const script = phase === "create" ? inputs.create : phase === "update" ? (inputs.update ?? inputs.create) : inputs.delete;
  const id = phase === "create" ? randomHex() : (olds?.id ?? r.id ?? "");
  if (!script) return { id, outputs: { ...news, stdout: "", stderr: "" } };
  if (r.type === "command:remote:Command" && inputs.environment && Object.keys(inputs.environment).length > 0) {
    // Setenv needs sshd AcceptEnv (pulumi-command #48); the rig's sshd accepts none, like Ubuntu's.
    throw new StepError(`${r.name}: remote.Command environment is set (${Object.keys(inputs.environment).join(", ")}); sshd rejects Setenv without AcceptEnv`);
  }
  const start = Date.now();
  const where = r.type === "command:remote:Command" ? `${inputs.connection?.user ?? "root"}@${inputs.connection?.host}` : "local";
  ctx.log(`--- ${phase} ${r.name} on ${where}`);
  const logging = inputs.logging ?? "stdoutAndStderr";
  const onData = (chunk: string, stream: "stdout" | "stderr") => {
    if (logging === "stdoutAndStderr" || logging === stream) ctx.log(chunk.replace(/\n$/, ""));
  };
  let res: ExecResult;
  if (r.type === "command:remote:Command") {
    if (!inputs.connection) throw new StepError(`${r.name}: remote.Command without connection`);
    const timeout = goDurationMs(r.options?.customTimeouts?.[phase]);
    const ssh = new SshClient(inputs.connection, timeout === undefined ? undefined : start + timeout);
    try {
      res = await ssh.run(script, inputs.stdin, onData);
    } finally {
      ssh.close();
    }
  } else {
    const interp = inputs.interpreter && inputs.interpreter.length > 0 ? inputs.interpreter : ["/bin/sh", "-c"];
    res = await spawnCollect(interp[0], [...interp.slice(1), script], inputs.stdin, onData, {
      cwd: inputs.dir,
      env: { ...process.env, ...(inputs.environment ?? {}) },
    });
  }
  const end = Date.now();
  ctx.action({ urn: r.urn, type: r.type, name: r.name, phase, kind: "command", target: where, detail: script, start, end, ok: res.code === 0 });
  if (res.code !== 0) {
    // remote/commandOutputs.go: fmt.Errorf("%w: running %q:\n%s", err, cmd, combined output)
    throw new StepError(`${r.name}: Process exited with status ${res.code}: running ${JSON.stringify(script)}:\n${res.combined}`);
  }
  // The provider trims one trailing newline from stdout and stderr.
  return { id, outputs: { ...news, stdout: res.stdout.replace(/\n$/, ""), stderr: res.stderr.replace(/\n$/, "") } };
}

// ---------------------------------------------------------------------------------------------
// tls.PrivateKey (hashicorp/terraform-provider-tls internal/provider/resource_private_key.go):
// Create generates the key on this machine; Update and Delete do nothing (every input replaces;
// delete only drops it from state). Only ED25519 is modelled (the one Railhead registers).

function privateKeyStep(ctx: ApplyContext, phase: Phase, r: Ref, olds: ResourceState | undefined, news: Inputs): ApplyResult {
  const now = Date.now();
  if (phase !== "create") {
    ctx.action({ urn: r.urn, type: r.type, name: r.name, phase, kind: "record", start: now, end: now, ok: true, detail: `tls.PrivateKey ${phase}: no-op (provider semantics)` });
    return { id: olds?.id ?? r.id ?? "", outputs: phase === "delete" ? {} : { ...(olds?.outputs ?? {}), ...news } };
  }
  if (news.algorithm !== "ED25519") throw new StepError(`harness: ${r.name}: tls.PrivateKey algorithm ${String(news.algorithm)} is not modelled (ED25519 only)`);
  const pair = generateEd25519(typeof news.opensshComment === "string" ? news.opensshComment : "");
  ctx.action({ urn: r.urn, type: r.type, name: r.name, phase, kind: "record", start: now, end: Date.now(), ok: true, detail: `generated ED25519 ${pair.publicKeyFingerprintSha256}` });
  const id = createHashHex(pair.publicKeyOpenssh);
  return { id, outputs: { ...news, id, ...pair } };
}

function createHashHex(s: string): string {
  return createHash("sha1").update(s).digest("hex");
}

// ---------------------------------------------------------------------------------------------
// docker.Image -> this machine's Docker engine (engine/docker.ts buildImage)

async function imageStep(ctx: ApplyContext, phase: Phase, r: Ref, olds: ResourceState | undefined, news: Inputs): Promise<ApplyResult> {
  const now = Date.now();
  if (phase === "delete") {
    // "This resource does not delete tags, locally or remotely, when destroyed." (docker.Image docs)
    ctx.action({ urn: r.urn, type: r.type, name: r.name, phase, kind: "record", start: now, end: now, ok: true, detail: "docker.Image delete: tags are kept (provider semantics)" });
    return { id: olds?.id ?? r.id ?? "", outputs: {} };
  }
  const inputs = news as ImageInputs;
  ctx.log(`--- ${phase} ${r.name}: docker build ${inputs.imageName ?? ""} on this machine's engine${inputs.skipPush ? " (no push)" : ", push"}`);
  const res = await buildImage(inputs, process.cwd(), (c) => ctx.log(c.replace(/\n$/, "")));
  ctx.action({ urn: r.urn, type: r.type, name: r.name, phase, kind: "command", target: "local", detail: res.commands.join(" && "), start: now, end: Date.now(), ok: res.ok });
  if (!res.ok) throw new StepError(`${r.name}: docker build/push of ${inputs.imageName ?? "?"} failed: running ${JSON.stringify(res.commands.join(" && "))}:\n${res.log.split("\n").slice(-40).join("\n")}`);
  const id = String(res.outputs.repoDigest ?? "");
  return { id: phase === "create" ? `${String(inputs.imageName)}-${id.replace(/^.*sha256:/, "").slice(0, 12)}` : (olds?.id ?? r.id ?? id), outputs: res.outputs };
}

function randomHex(): string {
  return [...Array(16)].map(() => Math.floor(Math.random() * 16).toString(16)).join("");
}

interface CopyInputs {
  connection?: Connection;
  source?: PlainAsset;
  remotePath?: string;
}

async function copyStep(ctx: ApplyContext, phase: Phase, r: Ref, olds: ResourceState | undefined, news: Inputs): Promise<ApplyResult> {
  const id = phase === "create" ? randomHex() : (olds?.id ?? r.id ?? "");
  if (phase === "delete") return { id, outputs: {} }; // CopyToRemote has no delete: files stay
  const n = news as CopyInputs;
  if (phase === "update") {
    // copyController.go Update: copies only when the source or remotePath changed.
    const o = (olds?.inputs ?? {}) as CopyInputs;
    if (o.source?.hash === n.source?.hash && o.remotePath === n.remotePath) {
      const now = Date.now();
      ctx.action({ urn: r.urn, type: r.type, name: r.name, phase, kind: "record", start: now, end: now, ok: true, detail: "update without copy (source and remotePath unchanged)" });
      return { id, outputs: news };
    }
  }
  if (!n.connection || !n.source || !isPlainAsset(n.source) || !n.remotePath) throw new StepError(`${r.name}: CopyToRemote needs connection, source and remotePath`);
  const start = Date.now();
  const dir = mkdtempSync(join(tmpdir(), "railhead-e2e-copy-"));
  let local: string;
  let recursive = false;
  if (n.source.__asset === "text") {
    local = join(dir, "asset");
    writeFileSync(local, n.source.text ?? "");
  } else if (n.source.__asset === "file") {
    local = n.source.path as string;
  } else if (n.source.__asset === "archive-file") {
    local = n.source.path as string;
    recursive = true;
  } else {
    rmSync(dir, { recursive: true, force: true });
    throw new StepError(`${r.name}: CopyToRemote of an AssetArchive is not supported by the harness`);
  }
  const ssh = new SshClient(n.connection);
  try {
    ctx.log(`--- copy ${r.name} -> ${n.connection.host}:${n.remotePath}`);
    const res = await ssh.upload(local, n.remotePath, recursive);
    ctx.action({ urn: r.urn, type: r.type, name: r.name, phase, kind: "copy", target: `${n.connection.host}:${n.remotePath}`, start, end: Date.now(), ok: res.code === 0 });
    if (res.code !== 0) throw new StepError(`${r.name}: sftp upload to ${n.connection.host}:${n.remotePath} failed:\n${res.combined}`);
  } finally {
    ssh.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return { id, outputs: news };
}

// ---------------------------------------------------------------------------------------------
// hcloud -> rig hosts

/** The config host a server-ish resource stands for: its `name` input ends with `-<host>`. */
export function configHostFor(ctx: ApplyContext, name: string, inputs: Inputs): string {
  const candidates = Object.keys(ctx.hostMap).sort((a, b) => b.length - a.length);
  const n = typeof inputs.name === "string" ? inputs.name : "";
  const hit = candidates.find((h) => n === h || n.endsWith(`-${h}`)) ?? candidates.find((h) => name === h || name.startsWith(`${h}/`) || name.includes(`-${h}/`));
  if (!hit) throw new StepError(`harness: ${name} (name ${JSON.stringify(n)}) matches no host of the e2e host map (${candidates.join(", ")})`);
  return hit;
}

function rigFor(ctx: ApplyContext, name: string, inputs: Inputs): { rig: RigInfo; host: RigHost } {
  if (!ctx.rig) throw new StepError(`harness: ${name} needs the rig (.rig/rig.json)`);
  const configHost = configHostFor(ctx, name, inputs);
  return { rig: ctx.rig, host: rigHost(ctx.rig, ctx.hostMap[configHost]) };
}

async function serverStep(ctx: ApplyContext, phase: Phase, r: Ref, olds: ResourceState | undefined, news: Inputs): Promise<ApplyResult> {
  const inputs = phase === "delete" ? (olds?.inputs ?? {}) : news;
  // internal/server/resource.go Update: a server_type change powers the server off and changes
  // its type (an update, not a replace); a rig host has no type, so it is recorded.
  const typeChange = phase === "update" && olds && olds.inputs.serverType !== news.serverType ? `serverType ${String(olds.inputs.serverType)} -> ${String(news.serverType)}: power off + change type; ` : "";
  if (!ctx.rig) {
    // Without the rig (harness self-tests) a server is a cloud record only: no machine, no boot.
    if (phase === "delete") for (const k of Object.keys(ctx.cloud.attachments)) if (k.startsWith(`${olds?.id ?? r.id}/`)) delete ctx.cloud.attachments[k];
    const now = Date.now();
    if (typeChange) ctx.action({ urn: r.urn, type: r.type, name: r.name, phase, kind: "record", start: now, end: now, ok: true, detail: typeChange });
    const res = recordStep(ctx, phase, r, olds, news);
    return phase === "create" ? { ...res, id: String(50_000 + ctx.nextSerial()), outputs: { ...res.outputs, status: "running" } } : res;
  }
  const vm = vmSpec(ctx.rig, ctx.hostMap[configHostFor(ctx, r.name, inputs)]); // host map `vm:<name>`: engine/vm.ts
  if (vm) return vmServerStep(ctx, vm, phase, r, olds, news);
  const { rig, host } = rigFor(ctx, r.name, inputs);
  const start = Date.now();
  if (phase === "delete") {
    ctx.log(`--- delete server ${r.name}: wiping rig host ${host.name}`);
    await wipeHost(rig, host);
    ctx.action({ urn: r.urn, type: r.type, name: r.name, phase, kind: "server", target: host.name, detail: "deleted: host wiped", start, end: Date.now(), ok: true });
    return { id: olds?.id ?? r.id ?? "", outputs: {} };
  }
  if (phase === "update") {
    ctx.action({ urn: r.urn, type: r.type, name: r.name, phase, kind: "record", target: host.name, detail: `${typeChange}server update (no effect on the rig host)`, start, end: Date.now(), ok: true });
    return { id: olds?.id ?? r.id ?? "", outputs: { ...(olds?.outputs ?? {}), ...news, id: olds?.id ?? r.id } };
  }
  // create: a new machine. Wipe, mark cloud-init running, boot in the background like a real VPS
  // whose API call returns before cloud-init finishes.
  ctx.log(`--- create server ${r.name}: rig host ${host.name} becomes a new machine`);
  await wipeHost(rig, host);
  await markBooting(rig, host);
  const userData = typeof news.userData === "string" ? news.userData : undefined;
  ctx.background(
    (async () => {
      await new Promise((res) => setTimeout(res, 1500));
      const report = await bootHost(rig, host, userData);
      ctx.log(`--- cloud-init on ${host.name}: applied [${report.applied.join("; ")}], not applied [${report.notApplied.join("; ")}]${report.schemaErrors.length ? `, SCHEMA ERRORS: ${report.schemaErrors.join("; ")}` : ""}`);
    })(),
  );
  const id = String(50_000 + ctx.nextSerial());
  ctx.action({ urn: r.urn, type: r.type, name: r.name, phase, kind: "server", target: host.name, detail: `created server ${id}`, start, end: Date.now(), ok: true });
  return { id, outputs: { ...news, id, ipv4Address: host.publicIp, ipv6Address: "", ipv6Network: "", status: "running" }, target: { rigHost: host.name } };
}

async function primaryIpStep(ctx: ApplyContext, phase: Phase, r: Ref, olds: ResourceState | undefined, news: Inputs): Promise<ApplyResult> {
  if (phase === "delete") return recordStep(ctx, phase, r, olds, news);
  const vm = vmSpec(ctx.rig, ctx.hostMap[configHostFor(ctx, r.name, news)]);
  const res = recordStep(ctx, phase, r, olds, news);
  if (vm) return { ...res, outputs: { ...res.outputs, ipAddress: vm.address }, target: { vm: vm.name } };
  const { host } = rigFor(ctx, r.name, news);
  return { ...res, outputs: { ...res.outputs, ipAddress: host.publicIp }, target: { rigHost: host.name } };
}

/**
 * ServerNetwork against the cloud's attachment table (ctx.cloud.attachments, one per server and
 * network). terraform-provider-hcloud internal/server/resource_network.go: Create calls
 * AttachToNetwork and ignores ErrorCodeServerAlreadyAttached (the existing attachment, with its
 * OLD address, stays); Delete detaches. On the rig the requested IP must be the rig host's.
 */
async function serverNetworkStep(ctx: ApplyContext, phase: Phase, r: Ref, olds: ResourceState | undefined, news: Inputs): Promise<ApplyResult> {
  const inputs = phase === "delete" ? (olds?.inputs ?? {}) : news;
  const subnet = ctx.live().find((x) => x.type === "hcloud:index/networkSubnet:NetworkSubnet" && String(x.id) === String(inputs.subnetId));
  const networkId = String(inputs.networkId ?? subnet?.inputs.networkId ?? "");
  const key = `${String(inputs.serverId)}/${networkId}`;
  const res = recordStep(ctx, phase, r, olds, news);
  if (phase === "delete") {
    delete ctx.cloud.attachments[key];
    return res;
  }
  const attached = ctx.cloud.attachments[key];
  let ip = attached ?? (typeof news.ip === "string" ? news.ip : undefined);
  if (ctx.rig && attached === undefined) {
    const server = ctx.live().find((x) => x.type === "hcloud:index/server:Server" && String(x.id) === String(news.serverId));
    if (!server || !server.target?.rigHost) throw new StepError(`harness: ${r.name}: server ${String(news.serverId)} is not a rig host`);
    const host = rigHost(ctx.rig, String(server.target.rigHost));
    if (news.ip && news.ip !== host.privateIp) {
      throw new StepError(`harness: ${r.name} asks for private IP ${String(news.ip)} but rig host ${host.name} has ${host.privateIp}; set privateIp: ${host.privateIp} in the e2e stack`);
    }
    ip = host.privateIp;
  }
  if (attached !== undefined) ctx.log(`--- ${r.name}: server ${String(news.serverId)} already attached to network ${networkId} (${attached}): kept (ServerAlreadyAttached)`);
  ctx.cloud.attachments[key] = ip ?? "auto";
  return { ...res, outputs: { ...res.outputs, ip } };
}

let firewallQueue: Promise<unknown> = Promise.resolve();

/**
 * Applies every firewall to the rig hosts its attachments select (server ids or label selectors).
 * Serialized: two servers finishing at once must not rewrite one host's chain concurrently.
 */
export function syncFirewalls(ctx: ApplyContext): Promise<string[]> {
  const run = firewallQueue.then(() => syncFirewallsNow(ctx));
  firewallQueue = run.catch(() => undefined);
  return run;
}

async function syncFirewallsNow(ctx: ApplyContext): Promise<string[]> {
  if (!ctx.rig) return [];
  const live = ctx.live();
  const servers = live.filter((x) => x.type === "hcloud:index/server:Server" && x.target?.rigHost);
  const firewalls = live.filter((x) => x.type === "hcloud:index/firewall:Firewall");
  const attachments = live.filter((x) => x.type === "hcloud:index/firewallAttachment:FirewallAttachment");
  const notes: string[] = [];
  for (const s of servers) {
    const labels = (s.inputs.labels ?? {}) as Record<string, string>;
    const rules: FirewallRule[] = [];
    let attached = false;
    for (const a of attachments) {
      const ids = ((a.inputs.serverIds ?? []) as unknown[]).map(String);
      const selectors = (a.inputs.labelSelectors ?? []) as string[];
      const selected = ids.includes(String(s.id)) || selectors.some((sel) => matchSelector(sel, labels));
      if (!selected) continue;
      const fw = firewalls.find((f) => String(f.id) === String(a.inputs.firewallId));
      if (!fw) continue;
      attached = true;
      rules.push(...((fw.inputs.rules ?? []) as FirewallRule[]));
    }
    for (const rule of rules) if ((rule.sourceIps ?? []).some((x) => x.includes(":"))) notes.push(`firewall rule ${rule.description ?? rule.port}: IPv6 sources recorded only (IPv4-only rig)`);
    const host = rigHost(ctx.rig, String(s.target?.rigHost));
    await applyFirewall(ctx.rig, host, attached ? rules : null);
  }
  return notes;
}

function matchSelector(selector: string, labels: Record<string, string>): boolean {
  return selector.split(",").every((term) => {
    const t = term.trim();
    const ne = /^([^!=]+)!=(.*)$/.exec(t);
    if (ne) return labels[ne[1]] !== ne[2];
    const eq = /^([^=]+)==?(.*)$/.exec(t);
    if (eq) return labels[eq[1]] === eq[2];
    if (t.startsWith("!")) return !(t.slice(1) in labels);
    return t in labels;
  });
}

// ---------------------------------------------------------------------------------------------
// aws -> the local S3 endpoint named by the resource's explicit provider

async function awsStep(ctx: ApplyContext, phase: Phase, r: Ref, olds: ResourceState | undefined, news: Inputs): Promise<ApplyResult> {
  const state = phase === "delete" ? olds : undefined;
  const inputs = phase === "delete" ? (olds?.inputs ?? {}) : news;
  const providerUrn = (state?.options.provider ?? currentProvider(ctx, r.urn)).split("::").slice(0, -1).join("::");
  const provider = ctx.live().find((x) => x.urn === providerUrn);
  const target = s3Target(provider?.inputs);
  const start = Date.now();
  const bucketOf = (v: unknown) => String(v ?? "");
  const done = (detail: string, ok = true) => ctx.action({ urn: r.urn, type: r.type, name: r.name, phase, kind: target ? "s3" : "record", target: target?.endpoint.host, detail, start, end: Date.now(), ok });
  const isBucket = r.type === "aws:s3/bucket:Bucket" || r.type === "aws:s3/bucketV2:BucketV2";
  if (isBucket) {
    const bucket = bucketOf(inputs.bucket);
    if (!bucket) throw new StepError(`${r.name}: the harness needs an explicit bucket name`);
    if (target && phase === "create") {
      const res = await s3Request(target, "PUT", bucket, "");
      if (res.status !== 200 && !/BucketAlreadyOwnedByYou/.test(res.body)) throw new StepError(`${r.name}: CreateBucket ${bucket} at ${target.endpoint.host} -> ${res.status} ${res.body}`);
      done(`CreateBucket ${bucket}`);
    } else if (target && phase === "delete") {
      const res = await s3Request(target, "DELETE", bucket, "");
      if (res.status >= 300) throw new StepError(`${r.name}: DeleteBucket ${bucket} -> ${res.status} ${res.body}`);
      done(`DeleteBucket ${bucket}`);
    } else done(target ? "bucket update (recorded)" : "recorded: no S3 endpoint (AWS)");
    return { id: bucket, outputs: { ...news, id: bucket, bucket, arn: `arn:aws:s3:::${bucket}` } };
  }
  if ((r.type === "aws:s3/bucketVersioning:BucketVersioning" || r.type === "aws:s3/bucketVersioningV2:BucketVersioningV2") && target && phase !== "delete") {
    const bucket = bucketOf(inputs.bucket);
    const status = String((inputs.versioningConfiguration as { status?: string } | undefined)?.status ?? "Enabled");
    const res = await s3Request(target, "PUT", bucket, "versioning", versioningXml(status));
    if (res.status !== 200) throw new StepError(`${r.name}: PutBucketVersioning ${bucket} -> ${res.status} ${res.body}`);
    done(`PutBucketVersioning ${bucket} ${status}`);
    return { id: bucket, outputs: { ...news, id: bucket } };
  }
  const res = recordStep(ctx, phase, r, olds, news);
  if (r.type === "aws:iam/accessKey:AccessKey") return { ...res, outputs: { ...res.outputs, id: `AKIAHARNESS${res.id}`, secret: `harness-secret-${res.id}` }, id: `AKIAHARNESS${res.id}` };
  if (r.type === "aws:iam/user:User") return { ...res, id: String(inputs.name), outputs: { ...res.outputs, name: inputs.name, arn: `arn:aws:iam::000000000000:user${String(inputs.path ?? "/")}${String(inputs.name)}` } };
  if (String(inputs.bucket ?? "")) return { ...res, id: String(inputs.bucket) };
  return res;
}

/** The provider reference of a resource being registered in this run (from its registration). */
let providerRefs: Record<string, string> = {};
export function setProviderRef(urn: string, ref: string): void {
  providerRefs = { ...providerRefs, [urn]: ref };
}
function currentProvider(_ctx: ApplyContext, urn: string): string {
  return providerRefs[urn] ?? "";
}
