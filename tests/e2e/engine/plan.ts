// TEST EQUIPMENT (e2e apply harness): the step decision for one registration against the previous
// state, per resource type. Pure functions; the sources for each rule are in harness.ts's header.
import type { CapturedOptions, ResourceState } from "./state";

export type StepOp = "create" | "same" | "update" | "replace";

export interface StepPlan {
  op: StepOp;
  /** Input keys that differ (after ignoreChanges). */
  changed: string[];
  /** Why a replace was chosen. */
  reason?: string;
  /** Inputs to apply (ignoreChanges paths hold their old values). */
  inputs: Record<string, unknown>;
  deleteBeforeReplace: boolean;
}

/**
 * Inputs whose change forces a replacement, per type ("ForceNew" upstream / replaceOnChanges in
 * the provider schema). Types missing here replace on nothing (every change is an update).
 */
export const REPLACE_KEYS: Record<string, string[]> = {
  // pulumi-command: only `triggers` is tagged replaceOnChanges (schema.json, common/inputs.go).
  "command:remote:Command": ["triggers"],
  "command:local:Command": ["triggers"],
  "command:remote:CopyToRemote": ["triggers"],
  // hcloud (terraform-provider-hcloud ForceNew, research/pulumi.md §3).
  "hcloud:index/server:Server": ["image", "location", "userData", "sshKeys", "datacenter"],
  "hcloud:index/sshKey:SshKey": ["publicKey"],
  "hcloud:index/primaryIp:PrimaryIp": ["type", "location", "datacenter", "assigneeType"],
  "hcloud:index/firewallAttachment:FirewallAttachment": ["firewallId"],
  "hcloud:index/networkSubnet:NetworkSubnet": ["networkId", "type", "networkZone", "ipRange", "vswitchId"],
  "hcloud:index/serverNetwork:ServerNetwork": ["serverId", "networkId", "subnetId", "ip"],
  // tls (hashicorp/terraform-provider-tls internal/provider/resource_private_key.go: RequiresReplace
  // on every input; Update is a no-op).
  "tls:index/privateKey:PrivateKey": ["algorithm", "opensshComment", "rsaBits", "ecdsaCurve"],
  // aws (bucket name and the bucket a side resource belongs to).
  "aws:s3/bucket:Bucket": ["bucket", "bucketPrefix", "region"],
  "aws:s3/bucketV2:BucketV2": ["bucket", "bucketPrefix", "region"],
  "aws:s3/bucketVersioning:BucketVersioning": ["bucket"],
  "aws:s3/bucketVersioningV2:BucketVersioningV2": ["bucket"],
  "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": ["bucket"],
  "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2": ["bucket"],
  "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": ["bucket"],
  "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": ["bucket"],
  "aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2": ["bucket"],
  "aws:iam/accessKey:AccessKey": ["user", "pgpKey"],
  "aws:iam/userPolicy:UserPolicy": ["user", "name", "namePrefix"],
};

/** Provider-side deleteBeforeReplace defaults for the supported types (none; docker_container would be true). */
const PROVIDER_DELETE_BEFORE_REPLACE: Record<string, boolean> = {};

export function canonical(v: unknown): string {
  return JSON.stringify(sortKeys(v));
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v as Record<string, unknown>).sort()) {
      const x = (v as Record<string, unknown>)[k];
      if (x !== undefined) out[k] = sortKeys(x);
    }
    return out;
  }
  return v;
}

export function changedKeys(olds: Record<string, unknown>, news: Record<string, unknown>): string[] {
  const keys = new Set([...Object.keys(olds), ...Object.keys(news)]);
  return [...keys].filter((k) => canonical(olds[k] ?? null) !== canonical(news[k] ?? null)).sort();
}

/** ignoreChanges: the listed property paths keep their old values (dotted paths, `a[0]`, `*`). */
export function applyIgnoreChanges(olds: Record<string, unknown>, news: Record<string, unknown>, paths: string[]): Record<string, unknown> {
  if (paths.length === 0) return news;
  const out = structuredClone(news);
  for (const path of paths) {
    if (path === "*") return structuredClone(olds);
    const segs = path.split(/\.|\[(\d+)\]/).filter((s) => s !== undefined && s !== "");
    setPath(out, segs, getPath(olds, segs));
  }
  return out;
}

function getPath(obj: unknown, segs: string[]): unknown {
  let cur = obj;
  for (const s of segs) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string, unknown>)[s];
  }
  return cur;
}

function setPath(obj: Record<string, unknown>, segs: string[], value: unknown): void {
  let cur: Record<string, unknown> = obj;
  for (const s of segs.slice(0, -1)) {
    if (cur[s] === null || typeof cur[s] !== "object") cur[s] = {};
    cur = cur[s] as Record<string, unknown>;
  }
  const last = segs[segs.length - 1];
  if (value === undefined) delete cur[last];
  else cur[last] = value;
}

export function planStep(
  type: string,
  old: ResourceState | undefined,
  inputs: Record<string, unknown>,
  options: CapturedOptions,
  replacedThisRun: ReadonlySet<string>,
): StepPlan {
  const dbr = options.deleteBeforeReplaceDefined ? options.deleteBeforeReplace : (PROVIDER_DELETE_BEFORE_REPLACE[type] ?? false);
  if (!old) return { op: "create", changed: Object.keys(inputs), inputs, deleteBeforeReplace: dbr };
  const effective = applyIgnoreChanges(old.inputs, inputs, options.ignoreChanges);
  const changed = changedKeys(old.inputs, effective);
  const forcing = [...(REPLACE_KEYS[type] ?? []), ...options.replaceOnChanges];
  const forced = options.replaceOnChanges.includes("*") ? changed : changed.filter((k) => forcing.includes(k));
  const withReplaced = options.replaceWith.filter((u) => replacedThisRun.has(u));
  const triggerChanged =
    options.replacementTrigger !== undefined && canonical(options.replacementTrigger) !== canonical(old.options.replacementTrigger ?? null);
  // A replacement is built from the program's inputs as registered, ignoreChanges not applied: the
  // engine re-runs the provider's Check on goal.Properties ("we need to recompute the default
  // values", pulumi/pulumi pkg/resource/deploy/step_generator.go, the replace branch).
  if (forced.length > 0) return { op: "replace", changed, reason: `changed: ${forced.join(", ")}`, inputs, deleteBeforeReplace: dbr };
  if (withReplaced.length > 0) return { op: "replace", changed, reason: `replaceWith: ${withReplaced.join(", ")} was replaced`, inputs, deleteBeforeReplace: dbr };
  if (triggerChanged) return { op: "replace", changed, reason: "replacementTrigger changed", inputs, deleteBeforeReplace: dbr };
  if (changed.length > 0) return { op: "update", changed, inputs: effective, deleteBeforeReplace: dbr };
  return { op: "same", changed, inputs: effective, deleteBeforeReplace: dbr };
}

/**
 * Deletion order for resources that are gone: dependents before what they depend on, children
 * before parents (the engine deletes in reverse topological order).
 */
export function deleteOrder(resources: ResourceState[]): ResourceState[] {
  const byUrn = new Map(resources.map((r) => [r.urn, r]));
  const visited = new Set<string>();
  const order: ResourceState[] = [];
  // Topological order (dependencies first), then reversed.
  const visit = (r: ResourceState) => {
    if (visited.has(r.urn)) return;
    visited.add(r.urn);
    const deps = [...r.options.dependencies, r.options.parent].filter((u) => u && byUrn.has(u));
    for (const d of deps) visit(byUrn.get(d) as ResourceState);
    order.push(r);
  };
  resources.forEach(visit);
  return order.reverse();
}
