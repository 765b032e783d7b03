// TEST SUPPORT: an ED25519 key pair in the formats `tls.PrivateKey` (algorithm ED25519) outputs:
// `privateKeyOpenssh` (an unencrypted "openssh-key-v1" PEM block) and `publicKeyOpenssh`
// (`ssh-ed25519 <base64>\n`). Used by the mock runtime (tests/support/mocks.ts) and the e2e apply
// harness's tls step, so the program's host keys are real keys sshd can load and clients can pin.
// Format: OpenSSH's PROTOCOL.key (openssh-portable); built from node:crypto, no ssh-keygen needed.
import { createHash, generateKeyPairSync, randomBytes } from "node:crypto";

export interface Ed25519Pair {
  /** `-----BEGIN OPENSSH PRIVATE KEY-----...` (trailing newline). */
  readonly privateKeyOpenssh: string;
  /** `-----BEGIN PRIVATE KEY-----...` (PKCS#8; for ED25519 the provider's PEM is PKCS#8 too). */
  readonly privateKeyPem: string;
  readonly privateKeyPemPkcs8: string;
  /** `ssh-ed25519 AAAA...\n`, with the trailing newline the tls provider emits. */
  readonly publicKeyOpenssh: string;
  readonly publicKeyPem: string;
  /** `SHA256:<base64 without padding>`, as `ssh-keygen -l` prints it. */
  readonly publicKeyFingerprintSha256: string;
}

function sshString(b: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(b.length);
  return Buffer.concat([len, b]);
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

export function generateEd25519(comment = ""): Ed25519Pair {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const jwk = privateKey.export({ format: "jwk" });
  const seed = Buffer.from(String(jwk.d), "base64url");
  const pub = Buffer.from(String(jwk.x), "base64url");
  const type = Buffer.from("ssh-ed25519");
  const pubBlob = Buffer.concat([sshString(type), sshString(pub)]);
  const check = randomBytes(4);
  let priv = Buffer.concat([check, check, sshString(type), sshString(pub), sshString(Buffer.concat([seed, pub])), sshString(Buffer.from(comment))]);
  const pad: number[] = [];
  for (let i = 1; (priv.length + pad.length) % 8 !== 0; i++) pad.push(i);
  priv = Buffer.concat([priv, Buffer.from(pad)]);
  const none = sshString(Buffer.from("none"));
  const body = Buffer.concat([Buffer.from("openssh-key-v1\0"), none, none, sshString(Buffer.alloc(0)), u32(1), sshString(pubBlob), sshString(priv)]);
  const b64 = body.toString("base64").replace(/.{1,70}/g, "$&\n");
  return {
    privateKeyOpenssh: `-----BEGIN OPENSSH PRIVATE KEY-----\n${b64}-----END OPENSSH PRIVATE KEY-----\n`,
    privateKeyPem: String(privateKey.export({ format: "pem", type: "pkcs8" })),
    privateKeyPemPkcs8: String(privateKey.export({ format: "pem", type: "pkcs8" })),
    publicKeyOpenssh: `ssh-ed25519 ${pubBlob.toString("base64")}\n`,
    publicKeyPem: String(publicKey.export({ format: "pem", type: "spki" })),
    publicKeyFingerprintSha256: `SHA256:${createHash("sha256").update(pubBlob).digest("base64").replace(/=+$/, "")}`,
  };
}
