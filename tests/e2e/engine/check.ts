// TEST EQUIPMENT (e2e apply harness): the providers' Check for the types Railhead registers, as
// far as the harness models it: the required inputs of each resource's schema. The engine calls
// Check for every registration during the preview (pulumi/pulumi pkg/resource/deploy/
// step_generator.go: `prov.Check(...)`, then `issueCheckErrors` fails the resource), so a missing
// required input stops the run before any step. Unknown values (preview) are not checked.
import { UNKNOWN } from "./values";

/**
 * Required inputs per type. hcloud: `Required: true` in hetznercloud/terraform-provider-hcloud
 * (commit f81c9af) internal/server/resource.go, internal/sshkey/resource.go,
 * internal/network/resource.go, internal/network/resource_subnet.go,
 * internal/server/resource_network.go, internal/primaryip/resource.go,
 * internal/firewall/attachment_resource.go, internal/firewall/resource.go (rules: direction,
 * protocol). command: pulumi/pulumi-command provider/cmd/pulumi-resource-command/schema.json
 * `requiredInputs` (Connection requires `host`). docker.Image: pulumi/pulumi-docker schema
 * (`imageName` is required).
 */
export const REQUIRED_INPUTS: Record<string, string[]> = {
  "hcloud:index/server:Server": ["name", "serverType"],
  "hcloud:index/sshKey:SshKey": ["name", "publicKey"],
  "hcloud:index/network:Network": ["name", "ipRange"],
  "hcloud:index/networkSubnet:NetworkSubnet": ["networkId", "type", "networkZone", "ipRange"],
  "hcloud:index/serverNetwork:ServerNetwork": ["serverId"],
  "hcloud:index/primaryIp:PrimaryIp": ["name", "type"],
  "hcloud:index/firewallAttachment:FirewallAttachment": ["firewallId"],
  "hcloud:index/firewall:Firewall": ["name"],
  "command:remote:Command": ["connection", "connection.host"],
  "command:remote:CopyToRemote": ["connection", "connection.host", "source", "remotePath"],
  "docker:index/image:Image": ["imageName"],
};

function get(obj: Record<string, unknown>, path: string): unknown {
  let cur: unknown = obj;
  for (const seg of path.split(".")) {
    if (cur === UNKNOWN) return UNKNOWN; // a whole unknown object (preview): its members are unknown too
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string, unknown>)[seg];
  }
  return cur;
}

function hasUnknown(v: unknown): boolean {
  if (v === UNKNOWN) return true;
  if (Array.isArray(v)) return v.some(hasUnknown);
  if (v && typeof v === "object") return Object.values(v as Record<string, unknown>).some(hasUnknown);
  return false;
}

/** Check failures for one registration, as "<property>: <what is wrong>" lines (empty: passes). */
export function checkInputs(type: string, inputs: Record<string, unknown>): string[] {
  const failures: string[] = [];
  for (const path of REQUIRED_INPUTS[type] ?? []) {
    const v = get(inputs, path);
    if (v === UNKNOWN) continue;
    if (v === undefined || v === null || v === "") failures.push(`${path}: Missing required property '${path}'`);
  }
  if (type === "hcloud:index/firewall:Firewall") {
    const rules = inputs.rules;
    if (Array.isArray(rules)) {
      rules.forEach((r, i) => {
        if (hasUnknown(r)) return;
        const rule = (r ?? {}) as Record<string, unknown>;
        for (const k of ["direction", "protocol"]) if (!rule[k]) failures.push(`rules[${i}].${k}: Missing required property '${k}'`);
      });
    }
  }
  return failures;
}
