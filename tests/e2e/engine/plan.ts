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
 * Each hcloud entry was read from hetznercloud/terraform-provider-hcloud (commit f81c9af, the
 * provider @pulumi/hcloud bridges): SDKv2 `ForceNew: true` or plugin-framework
 * `RequiresReplace()` in the file named beside it. Pulumi names are the camelCase of the TF names.
 */
export const REPLACE_KEYS: Record<string, string[]> = {
  // pulumi-command: only `triggers` is tagged replaceOnChanges (schema.json, common/inputs.go).
  "command:remote:Command": ["triggers"],
  "command:local:Command": ["triggers"],
  "command:remote:CopyToRemote": ["triggers"],
  // internal/server/resource.go: image, location, user_data, ssh_keys ForceNew. `datacenter` is a
  // removed attribute (its ValidateDiagFunc always errors) and `server_type` is an update (a
  // power-off + change type, resource.go Update), so neither is here.
  "hcloud:index/server:Server": ["image", "location", "userData", "sshKeys"],
  // internal/sshkey/resource.go: public_key RequiresReplace (name is updatable).
  "hcloud:index/sshKey:SshKey": ["publicKey"],
  // internal/primaryip/resource.go: type and location RequiresReplace (datacenter removed; the
  // assignee fields are updates: assign/unassign).
  "hcloud:index/primaryIp:PrimaryIp": ["type", "location"],
  // internal/firewall/attachment_resource.go: firewall_id ForceNew. internal/firewall/resource.go
  // has no ForceNew key: a Firewall is never replaced by a diff.
  "hcloud:index/firewallAttachment:FirewallAttachment": ["firewallId"],
  // internal/network/resource.go: ip_range ForceNew (name, labels, expose_routes_to_vswitch update).
  "hcloud:index/network:Network": ["ipRange"],
  // internal/network/resource_subnet.go: network_id, type, network_zone, ip_range, vswitch_id ForceNew.
  "hcloud:index/networkSubnet:NetworkSubnet": ["networkId", "type", "networkZone", "ipRange", "vswitchId"],
  // internal/server/resource_network.go: server_id, network_id, subnet_id, ip RequiresReplace.
  "hcloud:index/serverNetwork:ServerNetwork": ["serverId", "networkId", "subnetId", "ip"],
  // tls (hashicorp/terraform-provider-tls internal/provider/resource_private_key.go: RequiresReplace
  // on every input; Update is a no-op).
  "tls:index/privateKey:PrivateKey": ["algorithm", "opensshComment", "rsaBits", "ecdsaCurve"],
  // aws (hashicorp/terraform-provider-aws, not re-read for this table: the bucket name and the
  // bucket a side resource belongs to are ForceNew in internal/service/s3/bucket*.go).
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

/**
 * The Terraform bridge's delete-before-replace for NAMED resources
 * (pulumi/pulumi-terraform-bridge pkg/tfbridge/provider.go Diff: `deleteBeforeReplace :=
 * len(replaces) > 0 && (res.Schema.DeleteBeforeReplace || nameRequiresDeleteBeforeReplace(...))`;
 * pkg/tfbridge/schema.go nameRequiresDeleteBeforeReplace: true when an auto-nameable property was
 * given by the program, i.e. is not in the `__defaults` list Check writes). Only SDKv2 resources:
 * the plugin-framework path (pkg/pf/tfbridge/provider_diff.go, "TODO #823") never sets it.
 * Auto-nameable: pulumi/pulumi-hcloud provider/resources.go `prov.SetAutonaming(255, "-")` makes
 * every `name` auto-nameable; pulumi/pulumi-aws provider/resources.go gives aws_s3_bucket's
 * `bucket` an AutoNameTransform. Which hcloud resources are SDKv2 (schema.Resource with ForceNew)
 * and which plugin-framework (RequiresReplace plan modifiers) is from the files cited above:
 * Server, Network, NetworkSubnet, Firewall, FirewallAttachment are SDKv2; SshKey, PrimaryIp and
 * ServerNetwork are plugin-framework. Type -> the auto-nameable property.
 */
export const NAMED_DELETE_BEFORE_REPLACE: Record<string, string> = {
  "hcloud:index/server:Server": "name",
  "hcloud:index/network:Network": "name",
  "hcloud:index/firewall:Firewall": "name",
  "aws:s3/bucket:Bucket": "bucket",
};

/** The provider's answer for DeleteBeforeReplace on a replace (before the program's option overrides it). */
export function providerDeleteBeforeReplace(type: string, inputs: Record<string, unknown>): boolean {
  if (PROVIDER_DELETE_BEFORE_REPLACE[type]) return true;
  const nameKey = NAMED_DELETE_BEFORE_REPLACE[type];
  return nameKey !== undefined && inputs[nameKey] !== undefined && inputs[nameKey] !== null && inputs[nameKey] !== "";
}

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

/**
 * What a provider's Diff ignores. pulumi/pulumi-docker provider/provider.go Diff: for `registry`
 * it "only register[s] a diff on "server" field, but not on "username" or "password"", so a
 * credential rotation alone is no update (no rebuild, no push).
 */
export function diffView(type: string, inputs: Record<string, unknown>): Record<string, unknown> {
  if (type !== "docker:index/image:Image" || !inputs.registry || typeof inputs.registry !== "object") return inputs;
  const { username: _u, password: _p, ...rest } = inputs.registry as Record<string, unknown>;
  return { ...inputs, registry: rest };
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
  // step_generator.go: the program's deleteBeforeReplace option, when set, overrides the provider's
  // DiffResult.DeleteBeforeReplace ("The user can override the provider's decision").
  const dbr = options.deleteBeforeReplaceDefined ? options.deleteBeforeReplace : providerDeleteBeforeReplace(type, inputs);
  if (!old) return { op: "create", changed: Object.keys(inputs), inputs, deleteBeforeReplace: dbr };
  const effective = applyIgnoreChanges(old.inputs, inputs, options.ignoreChanges);
  const changed = changedKeys(diffView(type, old.inputs), diffView(type, effective));
  const forcing = [...(REPLACE_KEYS[type] ?? []), ...options.replaceOnChanges];
  const forced = options.replaceOnChanges.includes("*") ? changed : changed.filter((k) => forcing.includes(k));
  const withReplaced = options.replaceWith.filter((u) => replacedThisRun.has(u));
  const triggerChanged =
    options.replacementTrigger !== undefined && canonical(options.replacementTrigger) !== canonical(old.options.replacementTrigger ?? null);
  // A replacement is built from the program's CURRENT inputs, not the ignoreChanges-filtered ones:
  // step_generator.go, on a replace, calls the provider's Check again with
  // `News: goal.Properties` ("we need to recompute the default values ... no longer true") and
  // uses its result as new.Inputs. ignoreChanges only suppresses updates.
  const reason = forced.length > 0 ? `changed: ${forced.join(", ")}` : withReplaced.length > 0 ? `replaceWith: ${withReplaced.join(", ")} was replaced` : triggerChanged ? "replacementTrigger changed" : undefined;
  if (reason) return { op: "replace", changed, reason, inputs, deleteBeforeReplace: dbr };
  if (changed.length > 0) return { op: "update", changed, inputs: effective, deleteBeforeReplace: dbr };
  return { op: "same", changed, inputs: effective, deleteBeforeReplace: dbr };
}

/** What a resource depends on in the engine's dependency graph: parent, dependencies, property dependencies. */
export function dependenciesOf(r: ResourceState): string[] {
  return [r.options.parent, ...r.options.dependencies, ...Object.values(r.options.propertyDependencies).flat()].filter(Boolean);
}

/**
 * Deletes in dependency batches ("antichains"): pulumi/pulumi pkg/resource/deploy/step_generator.go
 * ScheduleDeletes peels off, round by round, the condemned resources none of whose dependencies
 * is still condemned, then reverses the list; deployment_executor.go performPostSteps runs each
 * batch with `stepExec.ExecuteParallel(antichain)` and waits for it before the next. So every
 * batch's deletes run CONCURRENTLY, dependents' batches before their dependencies'.
 */
export function deleteBatches(resources: ResourceState[]): ResourceState[][] {
  const condemned = new Map(resources.map((r) => [r.urn, r]));
  const rounds: ResourceState[][] = [];
  while (condemned.size > 0) {
    const round = [...condemned.values()].filter((r) => !dependenciesOf(r).some((d) => d !== r.urn && condemned.has(d)));
    if (round.length === 0) throw new Error(`harness: dependency cycle among deletes: ${[...condemned.keys()].join(", ")}`);
    for (const r of round) condemned.delete(r.urn);
    rounds.push(round);
  }
  return rounds.reverse();
}

/**
 * The resources a delete-before-replace of `urn` condemns with it: step_generator.go (DBR branch)
 * calls calculateDependentReplacements: every resource that depends, directly or transitively,
 * on the replaced one through a property whose change would replace it too is deleted BEFORE the
 * replaced resource and re-created after it. Returned dependents-first (the delete order). A
 * protected one among them refuses the replacement ("unable to replace resource ... as part of
 * replacing ...").
 */
export function dependentReplacements(urn: string, old: readonly ResourceState[]): ResourceState[] {
  const out: ResourceState[] = [];
  const seen = new Set<string>([urn]);
  const frontier = [urn];
  while (frontier.length > 0) {
    const cur = frontier.shift() as string;
    for (const r of old) {
      if (seen.has(r.urn)) continue;
      const keys = [...(REPLACE_KEYS[r.type] ?? []), ...r.options.replaceOnChanges];
      const via = Object.entries(r.options.propertyDependencies).filter(([k, urns]) => urns.includes(cur) && (keys.includes(k) || keys.includes("*")));
      if (via.length === 0) continue;
      seen.add(r.urn);
      out.push(r);
      frontier.push(r.urn);
    }
  }
  return deleteBatches(out).flat();
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
