// Renders the cloud-init user-data of a Hetzner host (DESIGN.md decision 6). Pure: no resources.
// The server ignores later changes to it (`ignoreChanges: ["userData"]`), so it only sets up what a
// host needs before Railhead's own commands take over: Docker from the distribution, the deploy user,
// a keys-only sshd, automatic security updates. Everything else is done by the host tool.

export interface CloudInitArgs {
  /** The deploy user, put in the docker group; Railhead's SSH user. */
  readonly user: string;
  /** Its authorized key (`ssh-ed25519 AAAA... comment`). */
  readonly publicKey: string;
}

/** Drop-in read after the distribution's sshd_config: keys only, no root. */
export const SSHD_DROP_IN = [
  "# Written by Railhead's cloud-init: keys only, no root login.",
  "PasswordAuthentication no",
  "KbdInteractiveAuthentication no",
  "PermitRootLogin no",
  "PubkeyAuthentication yes",
  "AuthenticationMethods publickey",
  "",
].join("\n");

const AUTO_UPGRADES = ['APT::Periodic::Update-Package-Lists "1";', 'APT::Periodic::Unattended-Upgrade "1";', ""].join("\n");

/** The `#cloud-config` document, as YAML (JSON-compatible scalars, so no YAML library is needed). */
export function renderCloudInit(args: CloudInitArgs): string {
  if (!/^[a-z_][a-z0-9_-]*$/.test(args.user)) throw new Error(`not a valid Unix user name: ${JSON.stringify(args.user)}`);
  if (/[\r\n]/.test(args.publicKey)) throw new Error("the SSH public key must be one line");
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
