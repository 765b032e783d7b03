// bin/restore.ts without hosts: which host runs which `railhead-host restore` line, where the
// maintenance page goes, and the production confirmation (refused before anything connects).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { parseArgs, stackView } from "../../bin/railhead";
import { restorePlan } from "../../bin/restore";

const ROOT = join(__dirname, "..", "..");
const CLI = join(ROOT, "bin", "railhead.ts");

const CONFIG = {
  "railhead:service": "demo",
  "railhead:hosts": { "web-1": { hcloud: {} }, "web-2": { hcloud: {} }, "db-1": { hcloud: {} } },
  "railhead:servers": { web: ["web-1", "web-2"], job: { hosts: ["web-1"], cmd: "bin/jobs" } },
  "railhead:accessories": { db: { preset: "postgres", host: "db-1" }, cache: { preset: "redis", host: "db-1" } },
  "railhead:litestream": { roles: ["job"], replica: { type: "s3" }, sqliteImage: "acme/sqlite:3" },
};
const OUTPUTS = {
  service: "demo",
  hosts: { "web-1": { kind: "hcloud", address: "203.0.113.1" }, "web-2": { kind: "hcloud", address: "203.0.113.2" }, "db-1": { kind: "hcloud", address: "203.0.113.3" } },
};
const view = (stack = "production") => stackView(OUTPUTS, { config: CONFIG }, stack);
const plan = (argv: string[], cfg: Record<string, unknown> = CONFIG) => restorePlan(view(), cfg, parseArgs(["restore", ...argv]));

test("restore sqlite runs on the SQLite role's host with the timestamp; the other web hosts get the maintenance page", () => {
  const p = plan(["sqlite", "--timestamp", "2026-11-29T14:05:00Z", "--database", "production.sqlite3"]);
  assert.equal(p.host.name, "web-1");
  assert.deepEqual(p.argv, ["restore", "sqlite", "--service", "demo", "--database", "production.sqlite3", "--timestamp", "2026-11-29T14:05:00Z", "--sqlite-image", "acme/sqlite:3"]);
  assert.deepEqual(p.maintenanceHosts.map((h) => h.name), ["web-2"]);
  assert.equal(p.changesData, true);
  const dry = plan(["sqlite", "--dry-run"]);
  assert.ok(dry.argv.includes("--dry-run"));
  assert.equal(dry.changesData, false);
  assert.deepEqual(dry.maintenanceHosts, [], "a dry run puts up no maintenance page");
});

test("restore postgres runs on the accessory's host with the replica target and the stack's prefix", () => {
  const p = plan(["postgres", "--dump", "20261129T020000Z.dump"]);
  assert.equal(p.host.name, "db-1");
  assert.deepEqual(p.argv, ["restore", "postgres", "--service", "demo", "--name", "db", "--s3", "--prefix", "demo/production", "--dump", "20261129T020000Z.dump"]);
  assert.deepEqual(p.maintenanceHosts.map((h) => h.name), ["web-1", "web-2"]);
  const file = plan(["postgres", "--list"], { ...CONFIG, "railhead:litestream": { prefix: "p/x" } });
  assert.deepEqual(file.argv, ["restore", "postgres", "--service", "demo", "--name", "db", "--target", "/var/lib/railhead-replicas", "--prefix", "p/x", "--list"]);
  assert.equal(file.changesData, false);
});

test("clear errors: no kind, no Litestream, an unknown accessory", () => {
  assert.throws(() => plan([]), /restore takes sqlite or postgres/);
  const noLs = { ...CONFIG, "railhead:litestream": undefined };
  assert.throws(() => plan(["sqlite"], noLs), /has no railhead:litestream/);
  assert.throws(() => plan(["postgres"], noLs), /has no backup target/);
  assert.throws(() => plan(["postgres", "--accessory", "cache"]), /no Postgres accessory "cache"[\s\S]*Next: pass --accessory db/);
});

test("production: refused without --yes when nobody can type the confirmation; nothing connects", () => {
  const dir = mkdtempSync(join(tmpdir(), "railhead-restore-"));
  writeFileSync(join(dir, "Pulumi.production.yaml"), stringify({ config: CONFIG }));
  writeFileSync(join(dir, "outputs.json"), JSON.stringify(OUTPUTS));
  const r = spawnSync(process.execPath, ["--import", "tsx", CLI, "restore", "postgres", "--stack", "production", "--config", join(dir, "Pulumi.production.yaml"), "--outputs", join(dir, "outputs.json")], {
    cwd: ROOT,
    encoding: "utf8",
    input: "",
  });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /refusing to restore postgres on db-1 \(stack production, service demo\) without confirmation\. Next: run it in a terminal and type the stack name, or pass --yes/);
  assert.doesNotMatch(r.stderr, /\+ railhead-host|ssh/, "nothing ran");
});
