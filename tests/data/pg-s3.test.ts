// Postgres dumps to the S3 replica bucket on a real host: `pg-dump --s3` uploads with the host's
// curl (SigV4, credentials from the Litestream stdin document, never in arguments or output) to
// `<prefix>/postgres/<name>/<time>.dump` of the local S3 endpoint (tests/support/s3), keeps
// --keep dumps; `drill postgres --s3` (stored config, as cron runs it) restores the newest into a
// scratch database and passes; a corrupted newest dump makes it fail.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { renderCredentialsEnv, renderLitestreamStdin, renderLitestreamYml } from "../../components/litestream-render";
import { startS3, type S3Server } from "../support/s3/server";
import { must, sleep, targets, uniq, type Target } from "./support";

let t: Target;
let s3: S3Server;
const svc = uniq("rp");
const net = `${svc}-net`;
const BUCKET = "railhead-pg";
const CREDS = { accessKeyId: "AKPGTEST", secretAccessKey: "sk-CANARY-pg/s3+\"q\\" };
const prefix = `${svc}/staging`;
const dumpPrefix = `${prefix}/postgres/db/`;
const PG_HEALTH = 'pg_isready -q -h 127.0.0.1 -U "$POSTGRES_USER" -d "$POSTGRES_DB"';

function stdin(): string {
  const yml = renderLitestreamYml({
    storage: "/rails/storage",
    databases: ["production.sqlite3"],
    replica: { type: "s3", bucket: BUCKET, region: "us-east-1", endpoint: s3.url, forcePathStyle: true },
    prefix,
    syncInterval: "1s",
    snapshotInterval: "1h",
    retention: "72h",
  });
  return renderLitestreamStdin(yml, renderCredentialsEnv(CREDS));
}

async function keys(): Promise<string[]> {
  const res = await fetch(`${s3.url}/${BUCKET}?list-type=2&prefix=${encodeURIComponent(dumpPrefix)}`);
  assert.equal(res.status, 200);
  return [...(await res.text()).matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => m[1]).sort();
}

const dumpArgs = () => ["--service", svc, "--name", "db", "--s3", "--prefix", prefix];

before(async () => {
  t = (await targets())[0];
  s3 = await startS3({ host: t.s3Host, buckets: [BUCKET] });
});

after(async () => {
  await t.tool(["drill", "unschedule", "--service", svc, "--kind", "postgres", "--id", "db"]);
  await t.tool(["accessory", "remove", "--service", svc, "--name", "db", "--purge"]);
  await t.sh(`docker network rm ${net} >/dev/null 2>&1; true`);
  await s3.stop();
});

test("pg-dump --s3 uploads under the prefix; drill postgres --s3 restores the newest and passes", async () => {
  await must(t.sh(`docker network inspect ${net} >/dev/null 2>&1 || docker network create ${net} >/dev/null`), "network");
  await must(
    t.tool(["accessory", "boot", "--service", svc, "--name", "db", "--image", t.image("postgres"), "--network", net, "--volume", `${svc}-db-data:/var/lib/postgresql/data`, "--health-cmd", PG_HEALTH], {
      stdin: "POSTGRES_USER=app\nPOSTGRES_DB=app\nPOSTGRES_PASSWORD=pw-CANARY-pgs3\n",
    }),
    "boot postgres",
  );
  await must(
    t.sh(`docker exec ${svc}-db psql -q -U app -d app -c "CREATE TABLE orders (id serial primary key, note text); INSERT INTO orders (note) SELECT md5(i::text) FROM generate_series(1, 4321) i; CREATE TABLE users (id serial primary key); INSERT INTO users DEFAULT VALUES;"`),
    "seed",
  );
  const dump = await must(t.tool(["pg-dump", ...dumpArgs()], { stdin: stdin() }), "pg-dump --s3");
  assert.match(dump.stdout, new RegExp(`dumped to s3://${BUCKET}/${dumpPrefix}\\d{8}T\\d{6}Z\\.dump`));
  assert.ok(!`${dump.stdout}${dump.stderr}`.includes(CREDS.secretAccessKey), "the tool never prints the credentials");
  const stored = await t.sh(`stat -c %a "\${RAILHEAD_STATE_DIR:-$HOME/.railhead}/pg-dump/${svc}-db/env"`);
  assert.equal(stored.stdout.trim(), "600", "the stored credentials env is 0600");
  const k = await keys();
  assert.equal(k.length, 1, k.join(" "));
  assert.match(k[0], new RegExp(`^${dumpPrefix}\\d{8}T\\d{6}Z\\.dump$`));
  const obj = await fetch(`${s3.url}/${BUCKET}/${k[0]}`);
  assert.equal(Buffer.from(await obj.arrayBuffer()).subarray(0, 5).toString(), "PGDMP", "the object is a pg_dump -Fc archive");

  // No stdin: the stored config, as the cron entry runs it.
  const d = await must(t.tool(["drill", "postgres", ...dumpArgs()]), "drill postgres --s3");
  assert.match(d.stdout, /pg_restore ok/);
  assert.match(d.stdout, /table=orders live=4321 restored=4321 ok/);
  assert.match(d.stdout, /table=users live=1 restored=1 ok/);
  assert.match(d.stdout, /postgres drill passed/);
  const dbs = (await t.sh(`docker exec ${svc}-db psql -qAt -U app -d app -c "SELECT count(*) FROM pg_database WHERE datname LIKE 'railhead_drill_%'"`)).stdout.trim();
  assert.equal(dbs, "0", "the scratch database is dropped");
});

test("pg-dump --s3 keeps the newest --keep dumps; drill --dump dumps first", async () => {
  for (let i = 0; i < 2; i++) {
    await sleep(1100); // one dump per second: the key is the UTC time
    await must(t.tool(["pg-dump", ...dumpArgs(), "--keep", "2"]), `pg-dump ${i}`);
  }
  assert.equal((await keys()).length, 2);
  await sleep(1100);
  await must(t.sh(`docker exec ${svc}-db psql -q -U app -d app -c "INSERT INTO users DEFAULT VALUES;"`), "write");
  const d = await must(t.tool(["drill", "postgres", ...dumpArgs(), "--dump"]), "drill --dump");
  assert.match(d.stdout, /dumped to s3:[\s\S]*table=users live=2 restored=2 ok[\s\S]*postgres drill passed/);
  assert.equal((await keys()).length, 3, "drill --dump uses the default --keep 7");
});

test("drill schedule stores the S3 config for the cron run (no stdin there)", async () => {
  const has = (await t.sh("command -v crontab")).code === 0;
  const r = await must(t.tool(["drill", "schedule", "--service", svc, "--kind", "postgres", "--id", "db", "--cron", "41 4 * * *", "--", ...dumpArgs(), "--dump"], { stdin: stdin() }), "schedule");
  assert.ok(!`${r.stdout}${r.stderr}`.includes(CREDS.secretAccessKey));
  if (has) {
    const tab = (await t.sh("crontab -l")).stdout;
    const line = tab.split("\n").find((l) => l.endsWith(`# railhead-drill ${svc} db`)) ?? "";
    assert.match(line, /drill postgres --service \S+ --name db --s3 --prefix \S+ --dump <\/dev\/null/);
    assert.ok(!tab.includes(CREDS.secretAccessKey) && !tab.includes(CREDS.accessKeyId), "no credential in the crontab");
  }
});

test("a corrupted newest dump in the bucket makes the drill fail", async () => {
  const newest = (await keys()).pop() ?? "";
  const body = Buffer.from(await (await fetch(`${s3.url}/${BUCKET}/${newest}`)).arrayBuffer());
  const from = Math.floor(body.length / 3);
  for (let i = from; i < Math.floor((2 * body.length) / 3); i++) body[i] = (body[i] + 97) & 0xff;
  const put = await fetch(`${s3.url}/${BUCKET}/${newest}`, { method: "PUT", body });
  assert.ok(put.ok, `corrupt: HTTP ${put.status}`);
  const d = await t.tool(["drill", "postgres", ...dumpArgs()]);
  assert.equal(d.code, 1, `${d.stdout}\n${d.stderr}`);
  assert.match(d.stdout, /pg_restore FAIL/);
  assert.match(d.stderr, /postgres drill FAILED/);
  const dbs = (await t.sh(`docker exec ${svc}-db psql -qAt -U app -d app -c "SELECT count(*) FROM pg_database WHERE datname LIKE 'railhead_drill_%'"`)).stdout.trim();
  assert.equal(dbs, "0", "the scratch database is dropped after a failed drill");
});

test("no config on stdin and none stored: pg-dump --s3 fails and says why", async () => {
  const none = await t.tool(["pg-dump", "--service", svc, "--name", "nope", "--s3"]);
  assert.notEqual(none.code, 0);
  assert.match(none.stderr, /no S3 config on stdin and none stored/);
});
