// Host: a place Railhead runs containers. A Hetzner server it provisions, an existing machine it
// reaches over SSH, or this machine. Whatever the kind, the host is ready when the host tool is on
// it, `check` passed and the app network exists; every command on it depends on that.
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import * as hcloud from "@pulumi/hcloud";
import * as tls from "@pulumi/tls";
import type { HostConfig, HostKind } from "./config";
import { hostCommand, type HostHandle } from "./host-command";
import type { HostToolBundle } from "./host-tool/bundle";
import { renderCloudInit } from "./cloud-init";
import { hcloudName, type HcloudBase } from "./hcloud-base";

/** The user-defined Docker network apps, proxy and accessories share on a host. */
export const APP_NETWORK = "railhead";

/** Hetzner images start sshd on 22 and cloud-init does not move it. */
const HCLOUD_SSH_PORT = 22;

export interface HostArgs {
  /** The host's entry in `railhead:hosts`. */
  readonly config: HostConfig;
  /** Deploy user for hcloud hosts (ssh hosts carry their own). */
  readonly sshUser: string;
  /** The deploy key (a secret Output). Required for hcloud and ssh hosts. */
  readonly privateKey?: pulumi.Output<string>;
  /** The bundled host tool; its hash names the file on the host. */
  readonly tool: HostToolBundle;
  /** Required for hcloud hosts. */
  readonly hcloud?: {
    readonly base: HcloudBase;
    readonly publicKey: string;
    /** Protect the PrimaryIp from deletion (its address is in DNS). */
    readonly protectAddress: boolean;
  };
  /** Log in to the app's registry before anything pulls (password: a secret Output, sent on stdin). */
  readonly registry?: { readonly server: string; readonly username: string; readonly password: pulumi.Output<string> };
}

/** A host as releases see it: ready for commands, and ready to pull the app image. */
export interface ReleaseHost extends HostHandle {
  /** `ready` plus the registry login, when there is one. */
  readonly pullReady: pulumi.Resource[];
}

export class Host extends pulumi.ComponentResource implements ReleaseHost {
  readonly hostName: string;
  readonly kind: HostKind;
  readonly connection?: pulumi.Output<command.types.input.remote.ConnectionArgs>;
  readonly address: pulumi.Output<string>;
  readonly privateAddress: pulumi.Output<string | undefined>;
  readonly identity: pulumi.Output<string>;
  /** The public host key every connection pins (`ssh-ed25519 AAAA...`); undefined for local. */
  readonly hostKey: pulumi.Output<string | undefined>;
  readonly toolPath: string;
  readonly ready: pulumi.Resource[];
  readonly pullReady: pulumi.Resource[];
  readonly server?: hcloud.Server;
  /** hcloud: the server's SSH host key pair (private half secret in state). */
  readonly sshHostKey?: tls.PrivateKey;
  readonly primaryIp?: hcloud.PrimaryIp;

  constructor(name: string, args: HostArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("railhead:index:Host", name, {}, opts);
    const cfg = args.config;
    this.hostName = cfg.name;
    this.kind = cfg.kind;
    this.toolPath = `$HOME/.railhead/bin/railhead-host-${args.tool.hash}`;
    const parent = { parent: this };

    // 1. The machine and how to reach it; `waited` is what must exist before the tool upload.
    let waited: pulumi.Resource[] = [];
    if (cfg.kind === "hcloud") {
      const hc = cfg.hcloud;
      const base = args.hcloud;
      if (!hc || !base) throw new Error(`host ${cfg.name}: hcloud host without hcloud settings`);
      const serverName = hcloudName(base.base.prefix, cfg.name);
      const labels = { ...base.base.serverLabels, ...cfg.labels };
      // The server's SSH host key, generated here so it is known before the server exists and can be
      // pinned on every connection (no trust on first use). It belongs to the host, not to one
      // server: a rebuilt server (new image, location) gets the same key through its cloud-init, so
      // the pinned key and a user's known_hosts stay valid. Replacing the key (`pulumi up --replace`
      // on it) replaces the server too (replaceWith below): a key only cloud-init can install must
      // not be pinned on a server that has the old one. The private half is a secret in state.
      this.sshHostKey = new tls.PrivateKey(`${name}/host-key`, { algorithm: "ED25519" }, { ...parent, additionalSecretOutputs: ["privateKeyOpenssh", "privateKeyPem", "privateKeyPemPkcs8"] });
      const hostPublicKey = this.sshHostKey.publicKeyOpenssh.apply((k) => k.trim());
      const userData = pulumi.secret(
        pulumi
          .all([this.sshHostKey.privateKeyOpenssh, hostPublicKey])
          .apply(([privateKey, publicKey]) => renderCloudInit({ user: args.sshUser, publicKey: base.publicKey, hostKey: { privateKey, publicKey } })),
      );
      // The address outlives the server (autoDelete off) and, when DNS points at it, the stack.
      this.primaryIp = new hcloud.PrimaryIp(
        `${name}/ip`,
        { name: serverName, type: "ipv4", assigneeType: "server", autoDelete: false, location: hc.location, labels },
        { ...parent, protect: base.protectAddress },
      );
      this.server = new hcloud.Server(
        `${name}/server`,
        {
          name: serverName,
          serverType: hc.serverType,
          image: hc.image,
          location: hc.location,
          sshKeys: [base.base.sshKey.id],
          userData,
          labels,
          publicNets: [{ ipv4Enabled: true, ipv4: this.primaryIp.id.apply(Number), ipv6Enabled: false }],
          // The firewall is attached by label selector; its id showing up on the server is not drift.
          ignoreRemoteFirewallIds: true,
        },
        {
          ...parent,
          // userData and sshKeys force a new server; editing cloud-init or rotating the key must not
          // rebuild a running host (DESIGN.md decision 6). A key rotation is done on the hosts.
          ignoreChanges: ["userData", "sshKeys"],
          // The PrimaryIp can be assigned to one server at a time, so a rebuild deletes first.
          deleteBeforeReplace: true,
          replaceWith: [this.sshHostKey],
          dependsOn: [base.base.firewallAttachment],
        },
      );
      const serverId = this.server.id;
      let privateNet: hcloud.ServerNetwork | undefined;
      if (base.base.network && base.base.subnet) {
        privateNet = new hcloud.ServerNetwork(
          `${name}/private-network`,
          { serverId: serverId.apply(Number), subnetId: base.base.subnet.id, ip: cfg.privateIp },
          { ...parent, dependsOn: [base.base.subnet] },
        );
      }
      this.address = this.primaryIp.ipAddress;
      this.privateAddress = privateNet ? privateNet.ip.apply((ip) => ip as string | undefined) : pulumi.output(undefined);
      this.identity = serverId.apply((id) => `hcloud-${id}`);
      this.hostKey = hostPublicKey;
      const login = { host: this.address, user: args.sshUser, port: HCLOUD_SSH_PORT, hostKey: hostPublicKey, privateKey: requireKey(cfg, args.privateKey) };
      this.connection = secretConnection(login);
      // A new server answers SSH only after a while, and is ready only when cloud-init is done.
      // The server id in the script makes a rebuilt server (same address) wait again.
      const readiness = new command.remote.Command(
        `${name}/cloud-init`,
        {
          connection: secretConnection({ ...login, dialErrorLimit: -1, perDialTimeout: 30 }),
          create: pulumi.interpolate`${cloudInitWaitScript()} # server ${serverId}`,
          addPreviousOutputInEnv: false,
          logging: "stdoutAndStderr",
        },
        { ...parent, customTimeouts: { create: "10m", update: "10m" }, dependsOn: privateNet ? [this.server, privateNet] : [this.server] },
      );
      waited = [readiness];
    } else if (cfg.kind === "ssh") {
      const ssh = cfg.ssh;
      if (!ssh) throw new Error(`host ${cfg.name}: ssh host without ssh settings`);
      this.address = pulumi.output(ssh.address);
      this.privateAddress = pulumi.output(cfg.privateIp);
      this.identity = pulumi.output(`ssh-${ssh.address}`);
      // Config requires hostKey for ssh hosts (components/config.ts); a missing one is refused here too.
      if (!ssh.hostKey) throw new Error(`host ${cfg.name}: ssh host without hostKey; read it with: ssh-keyscan -t ed25519 ${ssh.address}`);
      this.hostKey = pulumi.output(ssh.hostKey);
      this.connection = secretConnection({ host: ssh.address, user: ssh.user, port: ssh.port, hostKey: ssh.hostKey, privateKey: requireKey(cfg, args.privateKey) });
    } else {
      this.address = pulumi.output("127.0.0.1");
      this.privateAddress = pulumi.output(undefined);
      this.identity = pulumi.output("local");
      this.hostKey = pulumi.output(undefined);
    }

    // 2. The host tool. Its path holds its hash, so a new tool is a new file and a new command.
    let upload: pulumi.Resource;
    if (this.connection) {
      upload = new command.remote.CopyToRemote(
        `${name}/tool`,
        {
          connection: this.connection,
          source: new pulumi.asset.StringAsset(args.tool.text),
          // SFTP resolves a relative path against the user's home, the tool's $HOME.
          remotePath: `.railhead/bin/railhead-host-${args.tool.hash}`,
          // CopyToRemote copies again only when the asset or path changes, not on a new server.
          triggers: [this.identity],
        },
        { ...parent, dependsOn: waited },
      );
    } else {
      upload = new command.local.Command(
        `${name}/tool`,
        {
          create: localInstallScript(args.tool.hash),
          stdin: args.tool.text,
          interpreter: ["/bin/bash", "-c"],
          addPreviousOutputInEnv: false,
          logging: "stderr",
        },
        { ...parent, dependsOn: waited },
      );
    }

    // 3. `check` (docker reachable, state dir writable), then the app network.
    const check = hostCommand(this.stage([...waited, upload]), `${name}/check`, { create: ["check"] }, parent);
    const network = hostCommand(this.stage([...waited, upload, check]), `${name}/app-network`, { create: ["network", "ensure", APP_NETWORK] }, parent);
    this.ready = [...waited, upload, check, network];

    // 4. Registry login, before anything pulls the app image.
    if (args.registry) {
      const login = hostCommand(
        this,
        `${name}/registry-login`,
        { create: ["registry", "login", "--server", args.registry.server, "--username", args.registry.username], stdin: args.registry.password, logging: "stderr" },
        parent,
      );
      this.pullReady = [...this.ready, login];
    } else {
      this.pullReady = this.ready;
    }

    this.registerOutputs({ address: this.address, privateAddress: this.privateAddress, identity: this.identity, hostKey: this.hostKey, toolPath: this.toolPath });
  }

  /** This host as a handle whose commands wait for `ready` (used while the host is being built). */
  private stage(ready: pulumi.Resource[]): HostHandle {
    return {
      hostName: this.hostName,
      kind: this.kind,
      connection: this.connection,
      address: this.address,
      privateAddress: this.privateAddress,
      identity: this.identity,
      toolPath: this.toolPath,
      ready,
    };
  }
}

function requireKey(cfg: HostConfig, key: pulumi.Output<string> | undefined): pulumi.Output<string> {
  if (!key) throw new Error(`host ${cfg.name}: no SSH private key (railhead:ssh.privateKey)`);
  return key;
}

/** The whole connection is secret: it holds the private key. */
function secretConnection(c: command.types.input.remote.ConnectionArgs): pulumi.Output<command.types.input.remote.ConnectionArgs> {
  return pulumi.secret(pulumi.output(c)) as pulumi.Output<command.types.input.remote.ConnectionArgs>;
}

/**
 * Waits for cloud-init. Exit 2 is "done with recoverable errors" (e.g. a deprecated key) on
 * cloud-init 23.4+, which still leaves a usable host; anything else fails with the long status.
 */
export function cloudInitWaitScript(): string {
  return [
    "rc=0; cloud-init status --wait >/dev/null || rc=$?",
    'if [ "$rc" -eq 0 ] || [ "$rc" -eq 2 ]; then cloud-init status --long; exit 0; fi',
    'cloud-init status --long >&2; echo "cloud-init failed (exit $rc); see /var/log/cloud-init-output.log on the host" >&2; exit "$rc"',
  ].join("; ");
}

/** Writes the tool from stdin to `$HOME/.railhead/bin/railhead-host-<hash>` atomically. */
export function localInstallScript(hash: string): string {
  if (!/^[0-9a-f]+$/.test(hash)) throw new Error(`not a tool hash: ${hash}`);
  return [
    "set -euo pipefail",
    'dir="$HOME/.railhead/bin"',
    'mkdir -p "$dir"',
    `tmp="$dir/.railhead-host-${hash}.$$"`,
    'cat > "$tmp"',
    'chmod 0755 "$tmp"',
    `mv -f "$tmp" "$dir/railhead-host-${hash}"`,
    `echo "railhead-host ${hash} installed" >&2`,
  ].join("\n");
}
