// What all Hetzner hosts of a stack share: the SSH key, the firewall and its attachment, and the
// private network. Created once per stack, before any server (DESIGN.md decision 6).
import * as pulumi from "@pulumi/pulumi";
import * as hcloud from "@pulumi/hcloud";

export interface HcloudBaseArgs {
  /** `<service>-<stack>`: names every Hetzner object so stacks in one project do not collide. */
  readonly prefix: string;
  /** The deploy key's public half, installed on every server. */
  readonly publicKey: string;
  /** CIDRs that may reach port 22. */
  readonly sshAllowFrom: string[];
  /** Creates a private network when set. `confirmRangeChange` allows an ipRange change (downtime). */
  readonly network?: { ipRange: string; subnet: string; zone: string; confirmRangeChange?: boolean };
}

/**
 * Refuses a change of the private network's range unless confirmed. Hetzner cannot change a
 * network's ip_range in place (ForceNew in terraform-provider-hcloud internal/network/resource.go)
 * and the network is named, so the bridge replaces it delete-before-create, taking its subnet and
 * every server attachment down with it mid-deploy. `existing` is what the cloud has now (the
 * getNetworks invoke, which runs during the preview, before anything changes). Pure; throws.
 */
export function checkNetworkRange(existing: ReadonlyArray<{ name: string; ipRange: string }>, name: string, ipRange: string, confirmed: boolean): void {
  const current = existing.find((n) => n.name === name);
  if (!current || current.ipRange === ipRange || confirmed) return;
  throw new Error(
    `railhead:network.ipRange: the network ${name} has ${current.ipRange}, the config asks for ${ipRange}. ` +
      "Hetzner replaces a network to change its range: it deletes the network with its subnet and every server's attachment first, " +
      "so the hosts lose their private addresses (accessories, replicas on the private network) until they are re-attached. " +
      `To do it anyway set railhead:network.confirmRangeChange: true for this one up (e.g. network: { ipRange: ${ipRange}, confirmRangeChange: true }), ` +
      `or keep ipRange: ${current.ipRange}.`,
  );
}

/** The label that puts a server behind the stack's firewall (a label selector attaches it). */
export const STACK_LABEL = "railhead-stack";

export const ANY = ["0.0.0.0/0", "::/0"];

/** Inbound rules: SSH from the configured CIDRs, HTTP and HTTPS from anywhere, ICMP. Pure. */
export function firewallRules(sshAllowFrom: string[]): hcloud.types.input.FirewallRule[] {
  return [
    { direction: "in", protocol: "tcp", port: "22", sourceIps: sshAllowFrom, description: "ssh" },
    { direction: "in", protocol: "tcp", port: "80", sourceIps: ANY, description: "http" },
    { direction: "in", protocol: "tcp", port: "443", sourceIps: ANY, description: "https" },
    { direction: "in", protocol: "icmp", sourceIps: ANY, description: "icmp" },
  ];
}

export class HcloudBase extends pulumi.ComponentResource {
  readonly prefix: string;
  readonly sshKey: hcloud.SshKey;
  readonly firewall: hcloud.Firewall;
  readonly firewallAttachment: hcloud.FirewallAttachment;
  readonly network?: hcloud.Network;
  readonly subnet?: hcloud.NetworkSubnet;
  /** Labels every server of the stack carries. */
  readonly serverLabels: Record<string, string>;

  constructor(name: string, args: HcloudBaseArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("railhead:index:HcloudBase", name, {}, opts);
    this.prefix = args.prefix;
    this.serverLabels = { [STACK_LABEL]: args.prefix };

    this.sshKey = new hcloud.SshKey(`${name}/ssh-key`, { name: args.prefix, publicKey: args.publicKey }, { parent: this });

    this.firewall = new hcloud.Firewall(`${name}/firewall`, { name: args.prefix, rules: firewallRules(args.sshAllowFrom) }, { parent: this });
    // A label selector instead of a list of server ids: a new or rebuilt server is covered the
    // moment it exists, and adding a host never touches this resource (one attachment per firewall).
    this.firewallAttachment = new hcloud.FirewallAttachment(
      `${name}/firewall-attachment`,
      { firewallId: this.firewall.id.apply(Number), labelSelectors: [`${STACK_LABEL}=${args.prefix}`] },
      { parent: this },
    );

    if (args.network) {
      const net = args.network;
      // Checked against the live network during the preview: a refused range change stops the run
      // before anything changes (the Network's registration waits on this).
      const ipRange = hcloud
        .getNetworksOutput({}, { parent: this })
        .apply((r) => {
          checkNetworkRange(r.networks ?? [], args.prefix, net.ipRange, net.confirmRangeChange ?? false);
          return net.ipRange;
        });
      this.network = new hcloud.Network(`${name}/network`, { name: args.prefix, ipRange }, { parent: this });
      this.subnet = new hcloud.NetworkSubnet(
        `${name}/subnet`,
        { networkId: this.network.id.apply(Number), type: "cloud", networkZone: args.network.zone, ipRange: args.network.subnet },
        { parent: this },
      );
    }

    this.registerOutputs({
      sshKeyId: this.sshKey.id,
      firewallId: this.firewall.id,
      networkId: this.network?.id,
    });
  }
}

/** Hetzner names are hostnames: lower-case letters, digits and hyphens, at most 63 characters. */
export function hcloudName(...parts: string[]): string {
  const name = parts
    .join("-")
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, "-");
  if (name.length > 63) throw new Error(`Hetzner name "${name}" is longer than 63 characters; shorten railhead:service or the host name`);
  return name;
}
