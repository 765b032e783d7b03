// The host tool's crontab edits are locked: the sqlite and postgres drills of one host are
// scheduled and unscheduled by resources the engine runs concurrently (creates in parallel, and
// deletes in one batch, pkg/resource/deploy/deployment_executor.go ExecuteParallel), and each edit
// is a read-modify-write of the user's crontab. Runs the tool on THIS machine (no rig, no Docker)
// with a stand-in `crontab` on PATH that stores the table in a file and holds the read open for
// 300 ms, so two unlocked edits always interleave and one entry is lost.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const TOOL = join(__dirname, "..", "..", "components", "host-tool", "main.sh");

function tool(env: NodeJS.ProcessEnv, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const c = spawn("bash", [TOOL, "--host-label", "lock-test", ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    c.stdout.on("data", (b: Buffer) => (out += b.toString()));
    c.stderr.on("data", (b: Buffer) => (out += b.toString()));
    c.on("close", (code) => resolve({ code: code ?? 1, out }));
  });
}

test("drill schedule/unschedule --kind sqlite and --kind postgres at the same time: both entries land, then both leave", async () => {
  const dir = mkdtempSync(join(tmpdir(), "railhead-crontab-lock-"));
  try {
    const bin = join(dir, "bin");
    const table = join(dir, "crontab.txt");
    const fake = [
      "#!/usr/bin/env bash",
      "set -eu",
      'f="$FAKE_CRONTAB"',
      'if [[ ${1:-} == -l ]]; then [[ -f $f ]] || { echo "no crontab for test" >&2; exit 1; }; cat "$f"; sleep 0.3; exit 0; fi',
      'if [[ ${1:-} == - ]]; then cat >"$f.tmp.$$"; mv -f "$f.tmp.$$" "$f"; exit 0; fi',
      'echo "fake crontab: unsupported $*" >&2; exit 2',
    ].join("\n");
    mkdirSync(bin);
    writeFileSync(join(bin, "crontab"), `${fake}\n`);
    chmodSync(join(bin, "crontab"), 0o755);
    const env = { ...process.env, PATH: `${bin}:${process.env.PATH ?? ""}`, FAKE_CRONTAB: table, RAILHEAD_STATE_DIR: join(dir, "state") };
    for (let round = 1; round <= 3; round++) {
      const svc = `lock${round}`;
      const [a, b] = await Promise.all([
        tool(env, ["drill", "schedule", "--service", svc, "--kind", "sqlite", "--cron", "17 3 * * *", "--", "--db", "/rails/storage/app.sqlite3"]),
        tool(env, ["drill", "schedule", "--service", svc, "--kind", "postgres", "--cron", "27 3 * * *", "--", "--name", "db"]),
      ]);
      assert.equal(a.code, 0, a.out);
      assert.equal(b.code, 0, b.out);
      const tab = readFileSync(table, "utf8");
      assert.match(tab, new RegExp(`# railhead-drill ${svc} sqlite$`, "m"), `round ${round}: sqlite entry landed:\n${tab}`);
      assert.match(tab, new RegExp(`# railhead-drill ${svc} postgres$`, "m"), `round ${round}: postgres entry landed:\n${tab}`);
      const [c, d] = await Promise.all([
        tool(env, ["drill", "unschedule", "--service", svc, "--kind", "sqlite"]),
        tool(env, ["drill", "unschedule", "--service", svc, "--kind", "postgres"]),
      ]);
      assert.equal(c.code, 0, c.out);
      assert.equal(d.code, 0, d.out);
      const after = existsSync(table) ? readFileSync(table, "utf8") : "";
      assert.doesNotMatch(after, new RegExp(`railhead-drill ${svc} `), `round ${round}: both entries left:\n${after}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
