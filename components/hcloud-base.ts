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
  /** Creates a private network when set. */
  readonly network?: { ipRange: string; subnet: string; zone: string };
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
      this.network = new hcloud.Network(`${name}/network`, { name: args.prefix, ipRange: args.network.ipRange }, { parent: this });
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
