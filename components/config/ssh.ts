// `railhead:ssh`: how Pulumi reaches the hosts (user, port, the private key as a secret reference),
// the public key installed on hcloud hosts, and who may reach port 22.
import { z } from "zod";
import { cidr, obj, port, secretRef, SECRET_MARK } from "./shared";
import type { Section } from "./section";

export const PUBLIC_KEY_RE = /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) AAAA[A-Za-z0-9+/]+={0,3}( .*)?$/;

/** An OpenSSH public key line; a private key pasted here is reported as a leaked secret. */
export const publicKeyLine = (what: string) =>
  z.string().check((ctx) => {
    const v = ctx.value.trim();
    if (PUBLIC_KEY_RE.test(v)) return;
    let message = `is not ${what} line ("ssh-ed25519 AAAA... comment")`;
    if (/PRIVATE KEY/.test(v)) message = SECRET_MARK;
    else if (/^SHA256:|^MD5:|^([0-9a-f]{2}:){15}[0-9a-f]{2}$/i.test(v)) message = `is a key fingerprint, not ${what}: write the whole key line`;
    else if (/^[a-z0-9-]+ AAAA/.test(v)) message = `has an unknown key type "${v.split(" ")[0]}"; use ssh-ed25519, ssh-rsa or ecdsa-sha2-nistp256`;
    ctx.issues.push({ code: "custom", input: ctx.value, message });
  });

const kamalKeys = "Kamal's ssh.keys / key_data are railhead:ssh.privateKey here, a secret: privateKey: [SSH_PRIVATE_KEY]";
const unsupported = "not supported: Railhead connects directly with @pulumi/command (no proxy jump or ssh config file)";

export const sshSchema = obj(
  {
    user: z.string().min(1).default("deploy").describe("SSH user (default deploy; hcloud hosts get it from cloud-init)"),
    port: port().default(22).describe("SSH port"),
    privateKey: secretRef.optional(),
    publicKey: publicKeyLine("a public key").optional().describe("public half of privateKey; installed on hcloud hosts"),
    allowFrom: z.array(cidr()).default(["0.0.0.0/0", "::/0"]).describe("CIDRs the firewall lets reach port 22"),
  },
  { keys: kamalKeys, key_data: kamalKeys, keys_only: kamalKeys, proxy: unsupported, proxy_command: unsupported, config: unsupported, log_level: unsupported },
);

export const ssh: Section = {
  key: "ssh",
  schema: sshSchema.prefault({}),
  examples: [
    [/^ssh\.privateKey/, "privateKey: [SSH_PRIVATE_KEY]   then: pulumi config set --secret --path 'railhead:secrets.SSH_PRIVATE_KEY' < ~/.ssh/id_ed25519"],
    [/^ssh\.publicKey/, "publicKey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA... deploy@example   (the line in ~/.ssh/id_ed25519.pub)"],
    [/^ssh\.allowFrom/, "allowFrom: [203.0.113.0/24, \"2001:db8::/32\"]"],
    [/^ssh\.(keys|key_data|keys_only)/, "railhead:ssh: { privateKey: [SSH_PRIVATE_KEY] }   then: pulumi config set --secret --path 'railhead:secrets.SSH_PRIVATE_KEY' < ~/.ssh/id_ed25519"],
    [/^ssh/, "railhead:ssh: { user: deploy, privateKey: [SSH_PRIVATE_KEY], publicKey: 'ssh-ed25519 AAAA...' }"],
  ],
};
