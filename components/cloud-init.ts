// Renders the cloud-init user-data of a Hetzner host (DESIGN.md decision 6). Pure: no resources.
// The server ignores later changes to it (`ignoreChanges: ["userData"]`), so it only sets up what a
// host needs before Railhead's own commands take over: Docker from the distribution (with a log size
// cap by default), the deploy user, a keys-only sshd presenting the SSH host key Railhead generated
// (and pins on every connection), automatic security updates. Everything else is done by the host tool.

export interface CloudInitArgs {
  /** The deploy user, put in the docker group; Railhead's SSH user. */
  readonly user: string;
  /** Its authorized key (`ssh-ed25519 AAAA... comment`). */
  readonly publicKey: string;
  /**
   * The server's SSH host key (ED25519), generated in the Pulumi graph. cloud-init's `ssh_keys`
   * writes it to /etc/ssh/ssh_host_ed25519_key{,.pub} after deleting the image's keys
   * (`ssh_deletekeys`), and generates no others (cloudinit/config/cc_ssh.py: `ssh_genkeytypes` is
   * only used when `ssh_keys` is absent). The rendered document then holds a secret.
   */
  readonly hostKey: { readonly privateKey: string; readonly publicKey: string };
}

/** Where cloud-init's `ssh_keys.ed25519_private` lands (cc_ssh.py CONFIG_KEY_TO_FILE). */
export const HOST_KEY_FILE = "/etc/ssh/ssh_host_ed25519_key";

/** Drop-in read after the distribution's sshd_config: keys only, no root. */
export const SSHD_DROP_IN = [
  "# Written by Railhead's cloud-init: keys only, no root login.",
  "PasswordAuthentication no",
  "KbdInteractiveAuthentication no",
  "PermitRootLogin no",
  "PubkeyAuthentication yes",
  "AuthenticationMethods publickey",
  "# Only the host key Railhead generated and pins: a key type the package regenerates later",
  "# (openssh-server's postinst creates missing default keys on upgrade) is never offered.",
  `HostKey ${HOST_KEY_FILE}`,
  "",
].join("\n");

/**
 * Docker's daemon-wide log default: json-file (what `docker logs` and log shippers read) capped at
 * 5 files of 10 MB per container, so a container started without its own cap cannot fill the disk.
 * Written before the docker.io package starts the daemon (write_files runs in cloud-init's init
 * stage, packages in its config stage). The host tool sets per-container caps as well.
 */
export const DOCKER_DAEMON_JSON = `${JSON.stringify({ "log-driver": "json-file", "log-opts": { "max-size": "10m", "max-file": "5" } }, null, 2)}\n`;

const OPENSSH_PRIVATE = /^-----BEGIN OPENSSH PRIVATE KEY-----\n[A-Za-z0-9+/=\n]+-----END OPENSSH PRIVATE KEY-----\n?$/;
const ED25519_PUBLIC = /^ssh-ed25519 [A-Za-z0-9+/]+={0,2}$/;

const AUTO_UPGRADES = ['APT::Periodic::Update-Package-Lists "1";', 'APT::Periodic::Unattended-Upgrade "1";', ""].join("\n");

/** The `#cloud-config` document, as YAML (JSON-compatible scalars, so no YAML library is needed). */
export function renderCloudInit(args: CloudInitArgs): string {
  if (!/^[a-z_][a-z0-9_-]*$/.test(args.user)) throw new Error(`not a valid Unix user name: ${JSON.stringify(args.user)}`);
  if (/[\r\n]/.test(args.publicKey)) throw new Error("the SSH public key must be one line");
  if (!OPENSSH_PRIVATE.test(args.hostKey.privateKey)) throw new Error("the host key's private half must be an unencrypted OpenSSH private key (tls.PrivateKey privateKeyOpenssh)");
  if (!ED25519_PUBLIC.test(args.hostKey.publicKey)) throw new Error('the host key\'s public half must be one "ssh-ed25519 AAAA..." line without a comment');
  const q = (s: string) => JSON.stringify(s); // a JSON string is a valid YAML double-quoted scalar
  const block = (s: string, indent: string) =>
    s
      .replace(/\n$/, "")
      .split("\n")
      .map((l) => (l ? indent + l : ""))
      .join("\n");
  return [
    "#cloud-config",
    "# Rendered by Railhead (components/cloud-init.ts). Changing it does not rebuild a server.",
    "package_update: true",
    "packages:",
    "  - docker.io",
    "  - bash",
    "  - curl",
    "  - cron",
    "  - ca-certificates",
    "  - unattended-upgrades",
    "ssh_pwauth: false",
    "disable_root: true",
    // The image's host keys are deleted; only the generated ED25519 key is installed and offered.
    "ssh_deletekeys: true",
    "ssh_keys:",
    "  ed25519_private: |",
    block(args.hostKey.privateKey, "    "),
    `  ed25519_public: ${q(args.hostKey.publicKey)}`,
    "groups:",
    "  - docker",
    "users:",
    `  - name: ${q(args.user)}`,
    "    groups: [docker]",
    "    shell: /bin/bash",
    "    lock_passwd: true",
    "    ssh_authorized_keys:",
    `      - ${q(args.publicKey)}`,
    "write_files:",
    "  - path: /etc/ssh/sshd_config.d/10-railhead.conf",
    "    owner: root:root",
    '    permissions: "0644"',
    "    content: |",
    block(SSHD_DROP_IN, "      "),
    "  - path: /etc/docker/daemon.json",
    "    owner: root:root",
    '    permissions: "0644"',
    "    content: |",
    block(DOCKER_DAEMON_JSON, "      "),
    "  - path: /etc/apt/apt.conf.d/20auto-upgrades",
    "    owner: root:root",
    '    permissions: "0644"',
    "    content: |",
    block(AUTO_UPGRADES, "      "),
    "runcmd:",
    // The docker group exists before docker.io is installed (cloud-init made it), so the package
    // keeps it; adding the user again is a no-op that covers images where that order differs.
    `  - [usermod, -aG, docker, ${q(args.user)}]`,
    "  - [systemctl, enable, --now, docker]",
    "  - [systemctl, enable, --now, unattended-upgrades]",
    // sshd re-reads its config for each new connection; this applies it to the listener as well.
    "  - [systemctl, try-reload-or-restart, ssh]",
    "",
  ].join("\n");
}
