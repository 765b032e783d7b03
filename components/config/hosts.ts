// `railhead:hosts`: named hosts, each a Hetzner server to create, an existing server reached over
// SSH, or this machine.
import { z } from "zod";
import { ipv4, nameKey, obj, plainValue, port } from "./shared";
import { publicKeyLine } from "./ssh";
import type { Section } from "./section";

/** Hetzner Cloud locations and the network zone each belongs to. */
export const HCLOUD_LOCATIONS: Record<string, string> = { fsn1: "eu-central", nbg1: "eu-central", hel1: "eu-central", ash: "us-east", hil: "us-west", sin: "ap-southeast" };

const underSsh = (k: string) => `"${k}" goes under ssh for an existing server: { ssh: { ${k}: ... } }`;
const hostLevel = { address: underSsh("address"), host: underSsh("address"), user: underSsh("user"), port: underSsh("port"), hostKey: underSsh("hostKey"), ip: underSsh("address") };
const labels = z
  .record(
    z
      .string()
      .regex(/^([a-z0-9A-Z]([a-z0-9A-Z._-]{0,61}[a-z0-9A-Z])?\/)?[a-z0-9A-Z]([a-z0-9A-Z._-]{0,61}[a-z0-9A-Z])?$/, { error: "a label key: letters, digits, ., _ and -, at most 63" })
      .refine((k) => !/^railhead/i.test(k), { error: (iss) => `"${String(iss.input)}" is Railhead's own label namespace (the firewall and the tool select servers by it); use another key` }),
    plainValue,
  )
  .default({})
  .describe("labels (Hetzner labels on hcloud servers); railhead* keys are Railhead's own");

export const hcloudHost = obj(
  {
    hcloud: obj(
      {
        serverType: z.string().regex(/^[a-z]+[0-9]+[a-z]*$/, { error: "a Hetzner server type, e.g. cx23, cpx21, cax11" }).describe("Hetzner server type, e.g. cx23"),
        location: z.enum(Object.keys(HCLOUD_LOCATIONS) as [string, ...string[]]).describe(`Hetzner location: ${Object.keys(HCLOUD_LOCATIONS).join(", ")}`),
        image: z.string().min(1).default("ubuntu-24.04").describe("OS image name (default ubuntu-24.04)"),
      },
      { type: "=serverType", server: "=serverType", size: "=serverType", region: "=location", datacenter: "=location", os: "=image" },
    ),
    privateIp: ipv4().optional().describe("the host's address on the private network (default: assigned); inside railhead:network.subnet"),
    labels,
  },
  hostLevel,
);

export const sshHost = obj(
  {
    ssh: obj(
      {
        address: z.string().min(1).regex(/^[A-Za-z0-9.:[\]-]+$/, { error: "an IP address or a DNS name" }).describe("IP address or DNS name"),
        user: z.string().min(1).optional().describe("SSH user (default: ssh.user)"),
        port: port().optional().describe("SSH port (default: ssh.port)"),
        hostKey: z
          .string({ error: (iss) => (iss.input === undefined ? "required: the host's key pins it, so secrets sent on stdin reach only that host; read it with ssh-keyscan" : undefined) })
          .pipe(publicKeyLine("a host key"))
          .describe("required: the host's public key line (`ssh-keyscan -t ed25519 HOST`); pins the host"),
      },
      { host: "=address", hostname: "=address", ip: "=address", host_key: "=hostKey", known_host: "=hostKey", fingerprint: "=hostKey" },
    ),
    privateIp: ipv4().optional().describe("the host's address on a private network shared with the other hosts"),
    labels,
  },
  hostLevel,
);

export const localHost = obj({ local: obj({}).describe("this machine, through local.Command and its Docker engine"), labels }, hostLevel);

export const hostSchema = z
  .union([hcloudHost, sshHost, localHost], {
    error: (iss) =>
      typeof iss.input === "string"
        ? `a host is a map, not an address; for an existing server write { ssh: { address: ${iss.input} } }`
        : "a host is one of `hcloud: {serverType, location}`, `ssh: {address, user, port, hostKey}` or `local: {}`",
  })
  .describe("one of `hcloud: {serverType, location, image}`, `ssh: {address, user, port, hostKey}`, `local: {}`");

export const hostsSchema = z.record(nameKey, hostSchema).refine((h) => Object.keys(h).length > 0, { error: "needs at least one host" });

export const hosts: Section = {
  key: "hosts",
  schema: hostsSchema,
  entries: { name: nameKey, value: hostSchema },
  examples: [
    [/^hosts\.[^.]+\.hcloud\.location/, "hcloud: { serverType: cx23, location: fsn1 }   (fsn1, nbg1, hel1, ash, hil, sin)"],
    [/^hosts\.[^.]+\.hcloud/, "web-1: { hcloud: { serverType: cx23, location: fsn1, image: ubuntu-24.04 } }"],
    [/^hosts\.[^.]+\.ssh\.hostKey/, "hostKey: ssh-ed25519 AAAAC3Nz...   (the output of: ssh-keyscan -t ed25519 HOST)"],
    [/^hosts\.[^.]+\.ssh/, "web-1: { ssh: { address: 203.0.113.10, user: deploy, port: 22, hostKey: 'ssh-ed25519 AAAA...' } }"],
    [/^hosts\.[^.]+\.privateIp/, "privateIp: 10.0.1.11   (inside railhead:network.subnet)"],
    [/^hosts\.[^.]+\.labels/, "labels: { tier: web }"],
    [/^hosts/, "railhead:hosts: { web-1: { hcloud: { serverType: cx23, location: fsn1 } }, db-1: { ssh: { address: 203.0.113.10 } } }"],
  ],
};
