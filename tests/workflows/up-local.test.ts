// scripts/up-local.sh without the Pulumi CLI (which cannot be installed here): --dry-run prints the
// plan, and a stand-in `pulumi` records every call, so the order, the defaults, and that secret
// values travel only on stdin are checked for real. No claim is made that `pulumi up` ran. With no
// CLI at all, the script must say so and how to install it, before it changes anything.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync, chmodSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const ROOT = join(__dirname, "..", "..");
const SCRIPT = join(ROOT, "scripts", "up-local.sh");

test("up-local.sh is shellcheck-clean", () => {
  const r = spawnSync("shellcheck", [SCRIPT], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stdout + r.stderr);
});

test("--dry-run prints every step and sets each secret the local stack names, from stdin", () => {
  const out = execFileSync("bash", [SCRIPT, "--dry-run"], { encoding: "utf8", env: { ...process.env, PULUMI_CONFIG_PASSPHRASE: "", PULUMI_BACKEND_URL: "" } });
  const commands = out.split("\n").filter((l) => l.startsWith("+ "));
  assert.deepEqual(commands, [
    "+ pulumi stack select --create local",
    "+ pulumi config set --secret --path railhead:secrets.POSTGRES_PASSWORD --stack local < (32 random bytes, hex)",
    "+ pulumi config set --secret --path railhead:secrets.RAILS_MASTER_KEY --stack local < (32 random bytes, hex)",
    "+ pulumi up --yes --stack local",
    "+ pulumi stack output urls --json --stack local",
  ]);
  assert.match(out, /passphrase: the documented local default/);
  assert.match(out, new RegExp(`state backend: file://${ROOT}/\\.pulumi`));
});

/** A stand-in CLI: logs argv, the two env vars, and stdin; remembers which secrets were set. */
function fakeCli(dir: string): string {
  const cli = join(dir, "pulumi");
  writeFileSync(
    cli,
    `#!/usr/bin/env bash
set -euo pipefail
log=${dir}/calls.log
[[ "$1" == version ]] && { echo v3.265.0; exit 0; }
printf 'ARGS %s | BACKEND=%s PASS=%s\\n' "$*" "$PULUMI_BACKEND_URL" "$PULUMI_CONFIG_PASSPHRASE" >>"$log"
case "$1 $2" in
  "config get") grep -qx -- "$4" ${dir}/set 2>/dev/null || exit 1; echo value ;;
  "config set") v="$(cat)"; printf '%s\\n' "$v" >>${dir}/values; printf '%s\\n' "$5" >>${dir}/set ;;
  "stack output") [[ "$3" == urls ]] && echo '["http://127.0.0.1:8080"]' ;;
esac
`,
  );
  chmodSync(cli, 0o755);
  // docker info must answer; this test does not need the engine.
  writeFileSync(join(dir, "docker"), "#!/bin/sh\nexit 0\n");
  chmodSync(join(dir, "docker"), 0o755);
  return cli;
}

test("a run against a stand-in CLI: defaults exported, secrets only on stdin, set once, url printed", () => {
  const dir = mkdtempSync(join(tmpdir(), "up-local-"));
  const cli = fakeCli(dir);
  const env = { ...process.env, PATH: `${dir}:${process.env.PATH}`, PULUMI: cli, PULUMI_CONFIG_PASSPHRASE: "", PULUMI_BACKEND_URL: `file://${dir}/state` };
  const out = execFileSync("bash", [SCRIPT], { encoding: "utf8", env });
  const calls = readFileSync(join(dir, "calls.log"), "utf8").trim().split("\n");
  const args = calls.map((c) => c.replace(/^ARGS (.*) \| .*$/, "$1"));
  assert.deepEqual(args, [
    "stack select --create local",
    "config get --path railhead:secrets.POSTGRES_PASSWORD --stack local",
    "config set --secret --path railhead:secrets.POSTGRES_PASSWORD --stack local",
    "config get --path railhead:secrets.RAILS_MASTER_KEY --stack local",
    "config set --secret --path railhead:secrets.RAILS_MASTER_KEY --stack local",
    "up --yes --stack local",
    "stack output urls --json --stack local",
  ]);
  for (const c of calls) assert.match(c, new RegExp(`BACKEND=file://${dir}/state PASS=railhead-local$`));
  assert.ok(existsSync(join(dir, "state")), "the file backend directory is created");
  const values = readFileSync(join(dir, "values"), "utf8").trim().split("\n");
  assert.equal(values.length, 2);
  for (const v of values) {
    assert.match(v, /^[0-9a-f]{64}$/, "a random 32-byte hex value");
    assert.ok(!calls.some((c) => c.includes(v)), "a secret value never appears in an argument");
    assert.ok(!out.includes(v), "nor in the output");
  }
  assert.match(out, /the app answers at: http:\/\/127\.0\.0\.1:8080/);
  assert.match(out, /pulumi CLI v3\.265\.0/, "the CLI was checked first");

  // Again: the secrets exist now, so they are kept.
  const again = execFileSync("bash", [SCRIPT], { encoding: "utf8", env });
  assert.match(again, /secret POSTGRES_PASSWORD: already set/);
  assert.equal(readFileSync(join(dir, "values"), "utf8").trim().split("\n").length, 2);
});

test("a failing pulumi up names the step and what to do next", () => {
  const dir = mkdtempSync(join(tmpdir(), "up-local-"));
  const cli = fakeCli(dir);
  writeFileSync(cli, readFileSync(cli, "utf8").replace("case \"$1 $2\" in", "[[ \"$1\" == up ]] && { echo 'error: web-local/release failed' >&2; exit 1; }\ncase \"$1 $2\" in"));
  const r = spawnSync("bash", [SCRIPT], { encoding: "utf8", env: { ...process.env, PATH: `${dir}:${process.env.PATH}`, PULUMI: cli, PULUMI_BACKEND_URL: `file://${dir}/state` } });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /ERROR pulumi up failed .* Next: fix it and run npm run up:local again/);
});

/** A directory with a docker stand-in (docker info answers) and an empty PULUMI_HOME and HOME. */
function noCliEnv(): { dir: string; env: NodeJS.ProcessEnv } {
  const dir = mkdtempSync(join(tmpdir(), "up-local-nocli-"));
  writeFileSync(join(dir, "docker"), "#!/bin/sh\nexit 0\n");
  chmodSync(join(dir, "docker"), 0o755);
  mkdirSync(join(dir, "home"));
  // PATH without any node_modules/.bin (as under plain `bash`), so no installed CLI is suggested
  // unless the machine really has one outside node_modules.
  const path = [dir, ...(process.env.PATH ?? "").split(":").filter((d) => !d.endsWith("node_modules/.bin"))].join(":");
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: path, HOME: join(dir, "home"), PULUMI_HOME: join(dir, "pulumi-home"), PULUMI_BACKEND_URL: `file://${dir}/state`, npm_config_update_notifier: "false" };
  delete env.PULUMI;
  return { dir, env };
}

// The default CLI is the npm package `pulumi` (node_modules/pulumi): with an empty PULUMI_HOME it
// must download the CLI. The download is refused in-process (fetch rejects with undici's own
// offline error, "fetch failed"), so the test needs no network and behaves the same on a machine
// that has one; on a machine without internet the script prints the same message with no help.
test("without a Pulumi CLI that can be installed: a clear message, how to install it, exit 1, nothing changed", () => {
  const { dir, env } = noCliEnv();
  const offline = join(dir, "offline.cjs");
  writeFileSync(offline, "globalThis.fetch = async () => { throw new TypeError('fetch failed'); };\n");
  const r = spawnSync("bash", [SCRIPT], { encoding: "utf8", env: { ...env, NODE_OPTIONS: `--require ${offline}` }, timeout: 120_000 });
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /Downloading pulumi v\d+\.\d+\.\d+/, "the real npm wrapper tried to download the CLI");
  assert.match(r.stderr, /ERROR the Pulumi CLI is not installed and could not be downloaded \(the npm package 'pulumi' fetches it from get\.pulumi\.com on first use: pulumi: fetch failed\)/);
  assert.match(r.stderr, /curl -fsSL https:\/\/get\.pulumi\.com \| sh/);
  assert.match(r.stderr, /brew install pulumi\/tap\/pulumi/);
  assert.match(r.stderr, /PULUMI=~\/\.pulumi\/bin\/pulumi npm run up:local/);
  assert.doesNotMatch(r.stderr + r.stdout, /pulumi whoami|step 1\/4/, "it stops before the first step, with no misleading hint");
  assert.ok(!existsSync(join(dir, "state")), "no state backend directory was created");
});

test("a PULUMI command that does not exist: named as missing, with how to install the CLI", () => {
  const { dir, env } = noCliEnv();
  const r = spawnSync("bash", [SCRIPT], { encoding: "utf8", env: { ...env, PULUMI: join(dir, "no-such-pulumi") } });
  assert.equal(r.status, 1);
  assert.match(r.stderr, new RegExp(`ERROR the Pulumi CLI is missing: '${dir}/no-such-pulumi' was not found`));
  assert.match(r.stderr, /curl -fsSL https:\/\/get\.pulumi\.com \| sh/);
  assert.ok(!existsSync(join(dir, "state")));
});

test("an installed CLI the default does not use is named in the message", () => {
  const { dir, env } = noCliEnv();
  mkdirSync(join(dir, "home", ".pulumi", "bin"), { recursive: true });
  writeFileSync(join(dir, "home", ".pulumi", "bin", "pulumi"), "#!/bin/sh\necho v3.265.0\n");
  chmodSync(join(dir, "home", ".pulumi", "bin", "pulumi"), 0o755);
  const r = spawnSync("bash", [SCRIPT], { encoding: "utf8", env: { ...env, PULUMI: join(dir, "no-such-pulumi") } });
  assert.equal(r.status, 1);
  assert.match(r.stderr, new RegExp(`An installed CLI is already here: ${dir}/home/\\.pulumi/bin/pulumi \\(run with PULUMI=${dir}/home/\\.pulumi/bin/pulumi\\)`));
});

test("an unknown option is a usage error", () => {
  const r = spawnSync("bash", [SCRIPT, "--bogus"], { encoding: "utf8" });
  assert.equal(r.status, 2);
});
