// TEST EQUIPMENT: a tiny Hetzner program for the harness's hcloud rules (no rig: servers are cloud
// records, network attachments live in the harness's cloud table). Used by
// scenarios/harness-semantics.test.ts. Config: railhead:ipRange, ip, serverType, publicKey, dbr.
import * as pulumi from "@pulumi/pulumi";
import * as hcloud from "@pulumi/hcloud";

const cfg = new pulumi.Config("railhead");
const network = new hcloud.Network("net", { name: "sem-net", ipRange: cfg.require("ipRange") });
const subnet = new hcloud.NetworkSubnet("subnet", { networkId: network.id.apply(Number), type: "cloud", networkZone: "eu-central", ipRange: "10.0.1.0/24" });
const key = new hcloud.SshKey("key", { name: "sem-key", publicKey: cfg.require("publicKey") });
const server = new hcloud.Server("srv", { name: "sem-srv", serverType: cfg.require("serverType"), image: "debian-12", location: "fsn1", sshKeys: [key.id] }, { ignoreChanges: ["sshKeys"] });
new hcloud.ServerNetwork(
  "srv-net",
  { serverId: server.id.apply(Number), subnetId: subnet.id, ip: cfg.require("ip") },
  cfg.requireBoolean("dbr") ? { deleteBeforeReplace: true } : {},
);
export const serverId = server.id;
