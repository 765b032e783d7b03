// bin/railhead.ts without hosts: argument parsing, joining outputs with the stack file, what runs
// where (--dry-run), the rollback rule, and the errors a person sees before anything connects.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs, stackView, parseContainers, rollbackCandidates, toolLine, sshArgv } from "../../bin/railhead";

const ROOT = join(__dirname, "..", "..");
const CLI = join(ROOT, "bin", "railhead.ts");

const STACK_FILE = {
  config: {
    "railhead:service": "demo",
    "railhead:image": "ghcr.io/acme/demo:1.0.0",
    "railhead:ssh": { user: "deploy", port: 2222 },
    "railhead:hosts": { "web-1": { hcloud: {} }, "web-2": { ssh: { address: "198.51.100.7", user: "ops", port: 22, hostKey: "ssh-ed25519 AAAAC3Nza" } }, "db-1": { hcloud: {} } },
    "railhead:servers": { web: ["web-1", "web-2"], job: { hosts: ["web-1"], cmd: "bin/jobs" } },
    "railhead:accessories": { db: { preset: "postgres", host: "db-1" } },
  },
};
const OUTPUTS = {
  service: "demo",
  image: "ghcr.io/acme/demo:1.0.0",
  version: "1.0.0",
  hosts: {
    "web-1": { kind: "hcloud", address: "203.0.113.1", hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGenerated1" },
    "web-2": { kind: "ssh", address: "198.51.100.7", hostKey: "ssh-ed25519 AAAAC3Nza" },
    "db-1": { kind: "hcloud", address: "203.0.113.3" },
  },
};

test("arguments: command, positional words, flags with values, the command after --", () => {
  const o = parseArgs(["exec", "web", "--reuse", "--stack=staging", "--host", "web-2", "--", "bin/rails", "runner", "puts 1"]);
  assert.equal(o.command, "exec");
  assert.deepEqual(o.args, ["web"]);
  assert.deepEqual(o.rest, ["bin/rails", "runner", "puts 1"]);
  assert.equal(o.stack, "staging");
  assert.equal(o.host, "web-2");
  assert.equal(o.flags.get("--reuse"), true);
  assert.equal(parseArgs(["logs", "web", "-f"]).flags.get("--follow"), true);
  assert.throws(() => parseArgs(["logs", "--bogus"]), /unknown option --bogus[\s\S]*Next:/);
  assert.throws(() => parseArgs(["logs", "--since"]), /--since needs a value/);
});

test("the stack view joins addresses from the outputs with users, ports, keys and roles from the stack file", () => {
  const v = stackView(OUTPUTS, STACK_FILE, "production");
  assert.deepEqual(v.hosts["web-1"], { name: "web-1", kind: "hcloud", address: "203.0.113.1", user: "deploy", port: 2222, hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGenerated1" });
  assert.deepEqual(v.hosts["web-2"], { name: "web-2", kind: "ssh", address: "198.51.100.7", user: "ops", port: 22, hostKey: "ssh-ed25519 AAAAC3Nza" });
  assert.deepEqual(v.roles, { web: ["web-1", "web-2"], job: ["web-1"] });
  assert.equal(v.primaryRole, "web");
  assert.deepEqual(v.accessories, { db: "db-1" });
});

test("the host command runs the newest uploaded tool with quoted arguments; a pinned host key is enforced", () => {
  const line = toolLine("web-1", ["exec", "--service", "demo", "--", "bin/rails", "runner", "puts 'hi'"]);
  assert.match(line, /ls -t "\$HOME"\/\.railhead\/bin\/railhead-host-\*/);
  assert.match(line, /exec bash "\$t" --host-label web-1 exec --service demo -- bin\/rails runner 'puts '"'"'hi'"'"''$/);
  const v = stackView(OUTPUTS, STACK_FILE, "production");
  const pinned = sshArgv(v.hosts["web-2"], { identity: "/k" }, false);
  assert.ok(pinned.includes("StrictHostKeyChecking=yes"));
  assert.ok(!pinned.some((x) => /accept-new|StrictHostKeyChecking=no/.test(x)), "a host key is never learned");
  assert.ok(pinned.includes("GlobalKnownHostsFile=/dev/null") && pinned.includes("HostKeyAlgorithms=ssh-ed25519"));
  const khFile = pinned.find((x) => x.startsWith("UserKnownHostsFile="))?.slice("UserKnownHostsFile=".length) ?? "";
  assert.equal(readFileSync(khFile, "utf8"), "198.51.100.7 ssh-ed25519 AAAAC3Nza\n", "known_hosts holds exactly the stack's key");
  assert.ok(pinned.includes("-i") && pinned.includes("/k"));
  assert.equal(pinned.at(-1), "ops@198.51.100.7");
  const hcloud = sshArgv(v.hosts["web-1"], {}, true);
  assert.ok(hcloud.includes("-t"));
  const hcloudKh = hcloud.find((x) => x.startsWith("UserKnownHostsFile="))?.slice("UserKnownHostsFile=".length) ?? "";
  assert.equal(readFileSync(hcloudKh, "utf8"), "[203.0.113.1]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGenerated1\n", "an hcloud server's generated key, from the outputs");
  assert.throws(() => sshArgv(v.hosts["db-1"], {}, false), /no host key for 203\.0\.113\.3[\s\S]*pulumi up/, "no key in the stack: refused, not learned");
  assert.throws(() => sshArgv({ ...v.hosts["web-2"], hostKey: undefined }, {}, false), /ssh-keyscan -t ed25519 198\.51\.100\.7/);
});

test("rollback candidates: a version must exist for every role on every host", () => {
  const v = stackView(OUTPUTS, STACK_FILE, "production");
  const listing = (host: string, rows: string[]) => parseContainers(host, "demo", `NAME\tROLE\tVERSION\tSTATE\tIMAGE\n${rows.join("\n")}\n`);
  const retained = [
    ...listing("web-1", [
      "demo-web-2\tweb\t2\trunning\tghcr.io/acme/demo:2@sha256:bb",
      "demo-web-1\tweb\t1\texited\tghcr.io/acme/demo:1@sha256:aa",
      "demo-web-1-replaced-1\tweb\t1\texited\told",
      "demo-job-2\tjob\t2\trunning\tghcr.io/acme/demo:2@sha256:bb",
      "demo-job-1\tjob\t1\texited\tghcr.io/acme/demo:1@sha256:aa",
    ]),
    ...listing("web-2", ["demo-web-2\tweb\t2\trunning\tghcr.io/acme/demo:2@sha256:bb"]),
  ];
  assert.equal(retained.length, 5, "the -replaced- copy is not a release");
  const c = rollbackCandidates(v, retained);
  const one = c.find((x) => x.version === "1");
  assert.deepEqual(one, { version: "1", image: "ghcr.io/acme/demo:1@sha256:aa", running: false, complete: false, missing: ["web@web-2"] });
  assert.equal(c.find((x) => x.version === "2")?.complete, true);
});

function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  return spawnSync(process.execPath, ["--import", "tsx", CLI, ...args], { cwd: ROOT, encoding: "utf8", env: { ...process.env, ...env } });
}

function files(outputs: unknown): { config: string; outputs: string } {
  const dir = mkdtempSync(join(tmpdir(), "railhead-cli-"));
  const { stringify } = require("yaml") as { stringify(v: unknown): string }; // eslint-disable-line @typescript-eslint/no-require-imports
  writeFileSync(join(dir, "Pulumi.t.yaml"), stringify(STACK_FILE));
  writeFileSync(join(dir, "outputs.json"), JSON.stringify(outputs));
  return { config: join(dir, "Pulumi.t.yaml"), outputs: join(dir, "outputs.json") };
}

test("--dry-run shows the ssh command per host of the role", () => {
  const f = files(OUTPUTS);
  const r = cli(["logs", "web", "--since", "10m", "--grep", "ERROR|FATAL", "--stack", "t", "--config", f.config, "--outputs", f.outputs, "--dry-run"]);
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split("\n");
  assert.equal(lines.length, 2, "one per web host");
  assert.match(lines[0], /^\+ ssh -p 2222 .* deploy@203\.0\.113\.1 .*logs --service demo --role web --since 10m --grep .*ERROR\|FATAL/);
  assert.match(lines[1], /ops@198\.51\.100\.7/);
  const m = cli(["maintenance", "on", "--message", "Back at 10", "--stack", "t", "--config", f.config, "--outputs", f.outputs, "--dry-run"]);
  assert.match(m.stdout, /proxy maintenance demo on/);
  assert.doesNotMatch(m.stdout, /Back at 10/, "the message travels on stdin, not in the command line");
});

test("clear errors: no outputs yet, unknown role, unknown command, host filter", () => {
  const empty = files({});
  const none = cli(["details", "--stack", "t", "--config", empty.config, "--outputs", empty.outputs]);
  assert.equal(none.status, 1);
  assert.match(none.stderr, /stack t has no outputs yet .*Next: run pulumi up --stack t first/);
  const f = files(OUTPUTS);
  const role = cli(["logs", "worker", "--stack", "t", "--config", f.config, "--outputs", f.outputs]);
  assert.match(role.stderr, /"worker" is neither a role nor an accessory .*Next: roles: web, job; accessories: db/);
  const cmd = cli(["deploy", "--stack", "t", "--config", f.config, "--outputs", f.outputs]);
  assert.equal(cmd.status, 2);
  assert.match(cmd.stderr, /unknown command "deploy"/);
  const host = cli(["logs", "job", "--host", "web-2", "--stack", "t", "--config", f.config, "--outputs", f.outputs]);
  assert.match(host.stderr, /no host runs role job named web-2/);
});
