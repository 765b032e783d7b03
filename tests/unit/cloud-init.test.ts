// The rendered user-data is valid cloud-config, per cloud-init's own schema validator. The binary
// is a test dependency (.ci/run installs the `cloud-init` package): without it this test fails.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { DOCKER_DAEMON_JSON, HOST_KEY_FILE, renderCloudInit, SSHD_DROP_IN } from "../../components/cloud-init";
import { generateEd25519 } from "../support/ssh-keys";

const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOr5lQ0FzR3kXq0d9bDemoKeyReplaceMeWithYoursXXXX railhead";
const pair = generateEd25519();
const HOST_KEY = { privateKey: pair.privateKeyOpenssh, publicKey: pair.publicKeyOpenssh.trim() };
const ARGS = { user: "deploy", publicKey: KEY, hostKey: HOST_KEY };
const dir = mkdtempSync(join(tmpdir(), "railhead-cloud-init-"));

function schema(text: string): { status: number | null; out: string } {
  const file = join(dir, `user-data-${Math.random().toString(16).slice(2)}.yaml`);
  writeFileSync(file, text);
  const r = spawnSync("cloud-init", ["schema", "--config-file", file], { encoding: "utf8" });
  if (r.error) throw new Error(`cannot run cloud-init (${r.error.message}); install the Debian package cloud-init, as .ci/run does`);
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

test("the validator itself rejects invalid cloud-config (so a pass below means something)", () => {
  const r = schema("#cloud-config\nusers: 5\nssh_pwauth: maybe-not\n");
  assert.notEqual(r.status, 0, r.out);
});

test("rendered user-data passes `cloud-init schema`", () => {
  const r = schema(renderCloudInit(ARGS));
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /Valid cloud-config/);
});

test("user-data: Docker from the distribution, the deploy user in docker with the key, keys-only sshd, updates", () => {
  const text = renderCloudInit(ARGS);
  assert.ok(text.startsWith("#cloud-config\n"));
  const doc = parse(text) as Record<string, unknown>;
  assert.deepEqual(doc.packages, ["docker.io", "bash", "curl", "cron", "ca-certificates", "unattended-upgrades"]);
  assert.equal(doc.ssh_pwauth, false);
  assert.equal(doc.disable_root, true);
  const users = doc.users as Array<Record<string, unknown>>;
  assert.equal(users.length, 1, "only the deploy user (no distribution default user)");
  assert.equal(users[0].name, "deploy");
  assert.deepEqual(users[0].groups, ["docker"]);
  assert.equal(users[0].lock_passwd, true);
  assert.deepEqual(users[0].ssh_authorized_keys, [KEY]);
  const files = doc.write_files as Array<Record<string, string>>;
  const sshd = files.find((f) => f.path === "/etc/ssh/sshd_config.d/10-railhead.conf");
  assert.equal(sshd?.content, SSHD_DROP_IN);
  for (const line of ["PasswordAuthentication no", "PermitRootLogin no", "AuthenticationMethods publickey"]) assert.ok(SSHD_DROP_IN.includes(line));
  assert.ok(files.some((f) => f.path === "/etc/apt/apt.conf.d/20auto-upgrades" && f.content.includes('Unattended-Upgrade "1"')));
  assert.ok(!/railhead\/|\/var\/lib\/railhead/.test(text), "state lives in the deploy user's $HOME/.railhead, created by the tool");
});

test("bad input is refused rather than rendered", () => {
  assert.throws(() => renderCloudInit({ ...ARGS, user: "Deploy User" }));
  assert.throws(() => renderCloudInit({ ...ARGS, publicKey: `${KEY}\nruncmd: [reboot]` }));
  assert.throws(() => renderCloudInit({ ...ARGS, hostKey: { ...HOST_KEY, publicKey: `${HOST_KEY.publicKey}\nruncmd: [reboot]` } }), /host key's public half/);
  assert.throws(() => renderCloudInit({ ...ARGS, hostKey: { ...HOST_KEY, publicKey: "ssh-rsa AAAAB3NzaC1yc2E" } }), /ssh-ed25519/);
  assert.throws(() => renderCloudInit({ ...ARGS, hostKey: { ...HOST_KEY, privateKey: `${HOST_KEY.privateKey}runcmd: [reboot]\n` } }), /OpenSSH private key/);
});

test("the same input renders the same document (a change never rebuilds, but should not churn)", () => {
  assert.equal(renderCloudInit(ARGS), renderCloudInit(ARGS));
});

test("user-data: the generated host key is the only one installed and offered", () => {
  const doc = parse(renderCloudInit(ARGS)) as Record<string, unknown>;
  assert.equal(doc.ssh_deletekeys, true, "the image's own host keys are removed");
  assert.deepEqual(doc.ssh_keys, { ed25519_private: HOST_KEY.privateKey, ed25519_public: HOST_KEY.publicKey }, "byte-exact key files (cc_ssh writes them as given)");
  assert.ok(!("ssh_genkeytypes" in doc), "with ssh_keys set cc_ssh generates no other types");
  assert.match(SSHD_DROP_IN, new RegExp(`^HostKey ${HOST_KEY_FILE}$`, "m"), "sshd offers only that key, even if a package upgrade regenerates the defaults");
  assert.equal(SSHD_DROP_IN.match(/^HostKey /gm)?.length, 1);
});

test("user-data: Docker's daemon.json caps container logs before the daemon first starts", () => {
  const doc = parse(renderCloudInit(ARGS)) as Record<string, unknown>;
  const file = (doc.write_files as Array<Record<string, string>>).find((f) => f.path === "/etc/docker/daemon.json");
  assert.ok(file, "daemon.json is written (write_files: init stage, before packages install docker.io)");
  assert.equal(file.content, DOCKER_DAEMON_JSON);
  const daemon = JSON.parse(file.content) as { "log-driver": string; "log-opts": Record<string, string> };
  assert.equal(daemon["log-driver"], "json-file");
  assert.deepEqual(daemon["log-opts"], { "max-size": "10m", "max-file": "5" });
});
