// Incident restores on a real host (components/host-tool/lib/restore.sh): a web and a job release
// of the test app behind the host's proxy, SQLite replicated by the real Litestream 0.3.13 binary
// to a file replica, Postgres as an accessory. What is checked through the proxy (HTTP), in the
// volume and in the database:
// - restore sqlite --timestamp T brings back rows deleted after T; every row written after T is in
//   the kept-aside file; a dry run changes nothing; a corrupted replica fails safe (old data serves);
// - restore postgres brings a dropped table back (the old database and a safety dump are kept); a
//   corrupted dump fails safe;
// - no secret in the tool's output or in any process argument while it runs;
// - bin/restore.ts runs dump and restore postgres on the stack's host over SSH (--yes on production).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { renderLitestreamStdin, renderLitestreamYml } from "../../components/litestream-render";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { rigHost, rigImage } from "../rig/rig";
import { must, q, REPO, rigJson, run, sleep, targets, uniq, type RunResult, type Target } from "./support";

const RIG = rigJson();
let t: Target;
const svc = uniq("rr");
const domain = `${svc}.test`;
const volume = `${svc}-storage`;
const replicaDir = `/var/tmp/railhead-data-tests/${svc}`;
const prefix = `${svc}/rig`;
const PG_PASSWORD = "pw-CANARY-restore-7c1";
const DB = "/rails/storage/production.sqlite3";
const FAST = ["--health-interval", "0.2", "--health-timeout", "2", "--deploy-timeout", "30", "--drain-timeout", "3", "--stop-timeout", "3"];
const outputs: string[] = [];

async function tool(args: string[], stdin?: string): Promise<RunResult> {
  const r = await t.tool(args, { stdin, timeoutMs: 300_000 });
  outputs.push(r.stdout, r.stderr);
  return r;
}

/** An HTTP request through the host's proxy for the test's domain: status and body. */
async function viaProxy(method: string, path: string): Promise<{ status: number; body: string }> {
  const r = await t.sh(`curl -sS -m 10 -o /tmp/${svc}.body -w '%{http_code}' -X ${method} -H ${q(`Host: ${domain}`)} ${q(`http://127.0.0.1${path}`)}; echo; cat /tmp/${svc}.body`);
  const [status, ...body] = r.stdout.split("\n");
  return { status: Number(status), body: body.join("\n") };
}

async function appCount(kind: "sqlite" | "pg"): Promise<number> {
  const r = await viaProxy("GET", `/${kind}/count`);
  assert.equal(r.status, 200, `GET /${kind}/count: ${r.status} ${r.body}`);
  return Number((JSON.parse(r.body) as { count: number }).count);
}

async function appWrite(kind: "sqlite" | "pg", n: number): Promise<void> {
  const r = await viaProxy("POST", `/${kind}/write?n=${n}`);
  assert.equal(r.status, 200, `POST /${kind}/write: ${r.status} ${r.body}`);
}

/** sqlite3 on a file in the storage volume, as the app's uid. */
async function sqlite(file: string, sql: string): Promise<string> {
  const r = await must(t.sh(`docker run --rm --user 1000:1000 --network none -v ${volume}:/rails/storage --entrypoint sqlite3 ${t.image("litestream")} ${q(file)} ${q(sql)}`), `sqlite3 ${sql}`);
  return r.stdout.trim();
}

async function psql(db: string, sql: string): Promise<string> {
  const r = await must(t.sh(`docker exec ${svc}-db psql -qAt -U app -d ${q(db)} -c ${q(sql)}`), `psql ${sql}`);
  return r.stdout.trim();
}

async function storageFiles(): Promise<string[]> {
  const r = await must(t.sh(`docker run --rm --network none -v ${volume}:/s --entrypoint ls ${t.image("litestream")} -1a /s`), "ls volume");
  return r.stdout.split("\n").filter((f) => f && f !== "." && f !== "..");
}

/** StartedAt of the release and replicator containers (a restart changes it). */
async function startedAt(): Promise<string> {
  const r = await must(t.sh(`docker inspect -f '{{.Name}} {{.State.Status}} {{.State.StartedAt}}' ${svc}-web-v1 ${svc}-job-v1 ${svc}-litestream`), "inspect");
  return r.stdout.trim();
}

/** Samples every process's argv on the host while FN runs; returns FN's value and the samples. */
async function watchingArgv<T>(fn: () => Promise<T>): Promise<{ value: T; argv: string }> {
  let stop = false;
  let argv = "";
  const sampler = (async () => {
    while (!stop) {
      argv += (await t.sh("ps -eo args")).stdout;
      await sleep(150);
    }
  })();
  try {
    return { value: await fn(), argv };
  } finally {
    stop = true;
    await sampler;
  }
}

/** Statuses seen through the proxy while FN runs (GET /up every 100 ms). */
async function watchingHttp<T>(fn: () => Promise<T>): Promise<{ value: T; statuses: Set<number> }> {
  let stop = false;
  const statuses = new Set<number>();
  const poller = (async () => {
    while (!stop) {
      statuses.add((await viaProxy("GET", "/up")).status);
      await sleep(100);
    }
  })();
  try {
    return { value: await fn(), statuses };
  } finally {
    stop = true;
    await poller;
  }
}

before(async () => {
  if (!RIG) return;
  t = (await targets())[0];
  const lsStdin = renderLitestreamStdin(
    renderLitestreamYml({ storage: "/rails/storage", databases: ["production.sqlite3"], replica: { type: "file", dir: replicaDir }, prefix, syncInterval: "1s", snapshotInterval: "1h", retention: "72h" }),
    "",
  );
  await must(tool(["network", "ensure", "railhead"]), "network");
  await must(tool(["proxy", "boot", "--image", rigImage("haproxy:2.6", RIG)]), "proxy boot");
  await must(tool(["proxy", "service", "add", svc, "--app-port", "3000", "--domain", domain]), "proxy service add");
  await must(
    tool(
      ["accessory", "boot", "--service", svc, "--name", "db", "--image", t.image("postgres"), "--volume", `${svc}-db-data:/var/lib/postgresql/data`, "--health-cmd", 'pg_isready -q -h 127.0.0.1 -U "$POSTGRES_USER" -d "$POSTGRES_DB"'],
      `POSTGRES_USER=app\nPOSTGRES_DB=app\nPOSTGRES_PASSWORD=${PG_PASSWORD}\n`,
    ),
    "postgres",
  );
  await must(tool(["litestream", "replicate", "--service", svc, "--volume", volume, "--uid", "1000", "--image", t.image("litestream")], lsStdin), "replicate");
  const env = `SQLITE_PATH=${DB}\nDATABASE_URL=postgres://app:${PG_PASSWORD}@${svc}-db:5432/app\n`;
  const common = ["--service", svc, "--version", "v1", "--image", t.image("app"), "--volume", `${volume}:/rails/storage`, ...FAST];
  await must(tool(["release", ...common, "--role", "web", "--web", "--app-port", "3000"], env), "release web");
  await must(tool(["release", ...common, "--role", "job", "--readiness-delay", "2"], env), "release job");
});

after(async () => {
  if (!RIG || !t) return;
  await t.sh(
    `docker ps -aq --filter label=railhead.service=${svc} | xargs -r docker rm -f >/dev/null; ` +
      `bash "$HOME/.railhead/bin/railhead-host-data" proxy service remove ${svc} >/dev/null 2>&1; ` +
      `docker volume ls -q --filter label=railhead.service=${svc} | xargs -r docker volume rm -f >/dev/null; docker volume rm -f ${volume} ${svc}-db-data >/dev/null 2>&1; ` +
      `docker run --rm --user 0 -v /var/tmp/railhead-data-tests:/r --entrypoint rm ${t.image("litestream")} -rf /r/${svc}; ` +
      `rm -rf "$HOME/.railhead/apps/${svc}" "$HOME/.railhead/litestream/${svc}" "$HOME/.railhead/accessories/${svc}-db"; true`,
  );
});

const SKIP = RIG ? false : "needs rig hosts (a proxy on port 80 and a host of its own): bring the rig up with tests/rig/rig.sh up";
let T = "";
let rowsAfterT = 0;

test("sqlite: a dry run at T restores and checks, and touches nothing live", { skip: SKIP }, async () => {
  await appWrite("sqlite", 100);
  await sleep(2500); // replicated (sync interval 1 s)
  T = new Date().toISOString();
  await sleep(1500);
  // The incident: a bad change deletes 60 rows; the app goes on writing.
  await sqlite(DB, "DELETE FROM items WHERE id <= 60");
  for (let i = 0; i < 7; i++) await appWrite("sqlite", 1);
  rowsAfterT = 7;
  assert.equal(await appCount("sqlite"), 47);
  await sleep(2500);
  const before = { started: await startedAt(), files: await storageFiles(), vols: (await t.sh("docker volume ls -q")).stdout };
  const { value: r, statuses } = await watchingHttp(() => tool(["restore", "sqlite", "--service", svc, "--timestamp", T, "--dry-run"]));
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /production\.sqlite3 integrity_check ok/);
  assert.match(r.stdout, /dry run passed/);
  assert.match(r.stdout, /step 1 restore into scratch volume .* done in \d+\.\d\ds/);
  assert.doesNotMatch(r.stdout, /maintenance|stopped/);
  assert.deepEqual([...statuses], [200], "the app answered 200 all along");
  assert.equal(await startedAt(), before.started, "nothing was stopped or restarted");
  assert.deepEqual(await storageFiles(), before.files, "no file added, moved or removed in the volume");
  assert.equal((await t.sh("docker volume ls -q")).stdout, before.vols, "the scratch volume is gone");
  assert.equal(await appCount("sqlite"), 47);
});

test("sqlite: restore --timestamp T brings back the rows deleted after T; what was written after T is in the kept-aside file", { skip: SKIP }, async () => {
  assert.ok(T, "the dry-run test set T");
  const { value: r, statuses } = await watchingHttp(() => tool(["restore", "sqlite", "--service", svc, "--timestamp", T]));
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  for (const step of ["maintenance on", "stop the roles that mount", "restore into a new file", "integrity check", "keep the current file aside", "start the replicator and the roles", "maintenance off"])
    assert.match(r.stdout, new RegExp(`step \\d+ ${step}.* done in \\d+\\.\\d\\ds`), `step "${step}" is printed with its time`);
  for (const c of ["web-v1", "job-v1"]) assert.match(r.stdout, new RegExp(`stopped ${svc}-${c}\\b[\\s\\S]*stopped ${svc}-litestream \\(final sync\\)[\\s\\S]*started ${svc}-${c}\\b`), `${c}: stopped before the replicator, started after the swap`);
  assert.match(r.stdout, /table=items live=47 restored=100/);
  assert.ok(statuses.has(503), `the maintenance page was up during the restore (seen: ${[...statuses].join(",")})`);
  assert.ok([...statuses].every((s) => s === 200 || s === 503), `only 200 or the maintenance 503 through the proxy (seen: ${[...statuses].join(",")})`);
  assert.equal(await appCount("sqlite"), 100, "every row as of T is back");
  const kept = (await storageFiles()).filter((f) => /^production\.sqlite3\.before-restore-\d{8}T\d{6}Z$/.test(f));
  assert.equal(kept.length, 1, `one kept-aside file: ${(await storageFiles()).join(" ")}`);
  const keptFile = `/rails/storage/${kept[0]}`;
  assert.equal(await sqlite(keptFile, "SELECT count(*) FROM items"), "47", "the kept-aside file is the database as it was before the restore");
  assert.equal(await sqlite(keptFile, "SELECT count(*) FROM items WHERE id > 100"), String(rowsAfterT), "every row written after T is in the kept-aside file");
  assert.match(await startedAt(), /-web-v1 running[\s\S]*-job-v1 running[\s\S]*-litestream running/);
  // The app writes to the restored file and the replicator ships it.
  await appWrite("sqlite", 5);
  assert.equal(await appCount("sqlite"), 105);
  await sleep(2500);
  // A T after the newest replicated write: Litestream 0.3 finds no generation spanning it; the
  // state at T is the newest one, and that is what is restored (from the new generation).
  const dry = await tool(["restore", "sqlite", "--service", svc, "--dry-run", "--timestamp", new Date(Date.now() + 60_000).toISOString()]);
  assert.match(dry.stdout, /is after the newest replicated write/);
  assert.match(dry.stdout, /dry run passed/, `the new generation restores: ${dry.stdout}\n${dry.stderr}`);
});

test("sqlite: a corrupted replica fails at the restore step; the app serves the old data again", { skip: SKIP }, async () => {
  const filesBefore = await storageFiles();
  // Every snapshot of every generation: no restore can succeed.
  await must(
    t.sh(
      `docker run --rm --user 0 -v ${replicaDir}:${replicaDir} --entrypoint sh ${t.image("litestream")} -c 'for f in $(find ${replicaDir} -path "*/snapshots/*.lz4"); do sz=$(stat -c %s "$f"); dd if=/dev/urandom of="$f" bs=1 count=64 seek=$((sz / 2)) conv=notrunc status=none; done'`,
    ),
    "corrupt the replica",
  );
  const { value: r, statuses } = await watchingHttp(() => tool(["restore", "sqlite", "--service", svc]));
  assert.equal(r.code, 1, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stderr, /ERROR restore sqlite .*: step \d+ \((restore into a new file|integrity check)[^)]*\) failed/);
  assert.match(r.stderr, /putting everything back/);
  assert.ok(statuses.has(503), "the maintenance page was up");
  assert.equal((await viaProxy("GET", "/up")).status, 200, "maintenance is off again");
  assert.equal(await appCount("sqlite"), 105, "the app serves the data it had");
  assert.match(await startedAt(), /-web-v1 running[\s\S]*-job-v1 running[\s\S]*-litestream running/);
  assert.deepEqual((await storageFiles()).filter((f) => !/-(wal|shm)$/.test(f)), filesBefore.filter((f) => !/-(wal|shm)$/.test(f)), "no restored file is left, nothing was moved");
});

test("sqlite: bad input fails before anything changes", { skip: SKIP }, async () => {
  const before = await startedAt();
  const bad = await tool(["restore", "sqlite", "--service", svc, "--timestamp", "yesterday"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--timestamp 'yesterday' is not RFC 3339; give e\.g\. 2026-11-29T14:05:00Z/);
  const db = await tool(["restore", "sqlite", "--service", svc, "--database", "nope.sqlite3"]);
  assert.equal(db.code, 2);
  assert.match(db.stderr, /--database nope\.sqlite3 is not replicated here; one of: production\.sqlite3/);
  assert.equal(await startedAt(), before);
});

test("postgres: restore after a dropped table brings it back; the replaced database and a safety dump are kept", { skip: SKIP }, async () => {
  await appWrite("pg", 500);
  await psql("app", "CREATE TABLE orders (id serial primary key, note text); INSERT INTO orders (note) SELECT md5(i::text) FROM generate_series(1, 1234) i");
  await must(tool(["pg-dump", "--service", svc, "--name", "db", "--target", replicaDir, "--prefix", prefix]), "pg-dump");
  // The incident: a migration drops a table; the app goes on writing.
  await psql("app", "DROP TABLE orders");
  await appWrite("pg", 5);
  const args = ["restore", "postgres", "--service", svc, "--name", "db", "--target", replicaDir, "--prefix", prefix];
  const { value: timed, argv } = await watchingArgv(() => watchingHttp(() => tool(args)));
  const r = timed.value;
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  for (const step of ["fetch dump", "safety dump of the live database", "maintenance on", "pg_restore into a new database", "row counts", "swap", "maintenance off"])
    assert.match(r.stdout, new RegExp(`step \\d+ ${step}.* done in \\d+\\.\\d\\ds`), `step "${step}" is printed with its time`);
  assert.match(r.stdout, /table=orders live=missing restored=1234/);
  assert.match(r.stdout, /table=items live=505 restored=500/);
  assert.ok(timed.statuses.has(503), "the maintenance page was up");
  assert.equal(await psql("app", "SELECT count(*) FROM orders"), "1234", "the dropped table is back");
  assert.equal(await appCount("pg"), 500, "the app serves the restored database");
  const kept = (await psql("postgres", "SELECT datname FROM pg_database WHERE datname LIKE 'app_before_%'")).split("\n").filter(Boolean);
  assert.equal(kept.length, 1, "the replaced database is kept");
  assert.equal(await psql(kept[0], "SELECT count(*) FROM items"), "505", "with what was written after the dump");
  const list = await must(tool([...args, "--list"]), "list");
  assert.match(list.stdout, /safety dumps taken before earlier restores:\n {2}pre-restore\/\d{8}T\d{6}Z\.dump/);
  assert.ok(!argv.includes(PG_PASSWORD), "the password is in no process argument during the restore");
});

test("postgres: a corrupted dump fails at pg_restore; the live database is untouched and served", { skip: SKIP }, async () => {
  const args = ["restore", "postgres", "--service", svc, "--name", "db", "--target", replicaDir, "--prefix", prefix];
  await must(
    t.sh(`docker run --rm --user 0 -v ${replicaDir}:${replicaDir} --entrypoint sh ${t.image("postgres")} -c 'f=$(ls -1 ${replicaDir}/${prefix}/postgres/db/*.dump | sort | tail -n1); truncate -s $(($(stat -c %s "$f") / 2)) "$f"'`),
    "corrupt the dump",
  );
  const { value: r, statuses } = await watchingHttp(() => tool(args));
  assert.equal(r.code, 1, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stderr, /ERROR restore postgres .*: step \d+ \(pg_restore into a new database .*\) failed/);
  assert.ok(statuses.has(503), "the maintenance page was up");
  assert.equal((await viaProxy("GET", "/up")).status, 200, "maintenance is off again");
  assert.equal(await appCount("pg"), 500);
  assert.equal(await psql("app", "SELECT count(*) FROM orders"), "1234");
  assert.equal(await psql("postgres", "SELECT count(*) FROM pg_database WHERE datname LIKE 'app_restore_%'"), "0", "the half-restored database is dropped");
  const missing = await tool([...args, "--dump", "20000101T000000Z.dump"]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /no dump 20000101T000000Z\.dump under/);
});

test("the CLI (bin/restore.ts) runs dump and restore postgres on the accessory's host over SSH; --yes stands in for the production confirmation", { skip: SKIP }, async () => {
  assert.ok(RIG);
  const h = rigHost(t.name, RIG);
  const dir = mkdtempSync(join(tmpdir(), "railhead-restore-cli-"));
  const config = {
    config: {
      "railhead:service": svc,
      "railhead:hosts": { [t.name]: { ssh: { address: h.publicIp, user: RIG.sshUser, port: h.sshPort, hostKey: h.hostKey } } },
      "railhead:servers": { web: [t.name] },
      "railhead:accessories": { db: { preset: "postgres", host: t.name } },
      "railhead:litestream": { prefix, replica: { type: "file", path: replicaDir } },
    },
  };
  writeFileSync(join(dir, "Pulumi.production.yaml"), stringify(config));
  writeFileSync(join(dir, "outputs.json"), JSON.stringify({ service: svc, hosts: { [t.name]: { kind: "ssh", address: h.publicIp } } }));
  const cli = (args: string[]) =>
    run([process.execPath, "--import", "tsx", join(REPO, "bin", "railhead.ts"), ...args, "--stack", "production", "--config", join(dir, "Pulumi.production.yaml"), "--outputs", join(dir, "outputs.json"), "--identity", RIG.sshKey], { timeoutMs: 300_000 });
  const d = await cli(["dump"]);
  outputs.push(d.stdout, d.stderr);
  assert.equal(d.code, 0, `${d.stdout}\n${d.stderr}`);
  assert.match(d.stderr, new RegExp(`\\+ railhead-host pg-dump --service ${svc} --name db --target ${replicaDir} --prefix ${prefix} --keep 30 \\(on ${RIG.sshUser}@${h.publicIp.replace(/\./g, "\\.")}\\)`));
  await psql("app", "DROP TABLE orders");
  const r = await cli(["restore", "postgres", "--yes"]);
  outputs.push(r.stdout, r.stderr);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stderr, new RegExp(`\\+ railhead-host restore postgres --service ${svc} --name db --target ${replicaDir} --prefix ${prefix} \\(on `));
  assert.match(r.stdout, /table=orders live=missing restored=1234/);
  assert.equal(await psql("app", "SELECT count(*) FROM orders"), "1234");
  assert.equal((await viaProxy("GET", "/up")).status, 200);
});

test("no secret in any output of the tool", { skip: SKIP }, () => {
  const all = outputs.join("\n");
  assert.ok(all.length > 1000);
  assert.ok(!all.includes(PG_PASSWORD), "the Postgres password never appears in the tool's output");
});
