// Litestream 0.3.13 on a real host with the real binary: replicate to a file replica and to the
// local S3 endpoint, lose the host's volume, restore, and bound what is lost by the sync interval;
// the backup drill passes, and fails on a corrupted replica; Postgres dump + restore drill.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { renderCredentialsEnv, renderLitestreamStdin, renderLitestreamYml, type RenderReplica } from "../../components/litestream-render";
import { startS3, type S3Server } from "../support/s3/server";
import { hostHttp, must, publishedPort, sleep, targets, uniq, type Target } from "./support";

let t: Target;
let s3: S3Server;
const svc = uniq("rl");
const net = `${svc}-net`;
const volume = `${svc}-storage`;
const replicaDir = `/var/tmp/railhead-data-tests/${svc}`;
const BUCKET = "railhead-test";
const CREDS = { accessKeyId: "AKTEST", secretAccessKey: "sk-CANARY-ls-51e" };
let appPort = "";
const app = (method: string, path: string) => hostHttp(t, appPort, method, path);

function stdinFor(replica: RenderReplica, prefix: string): string {
  const yml = renderLitestreamYml({ storage: "/rails/storage", databases: ["production.sqlite3"], replica, prefix, syncInterval: "1s", snapshotInterval: "1h", retention: "72h" });
  return renderLitestreamStdin(yml, replica.type === "s3" ? renderCredentialsEnv(CREDS) : "");
}
const fileReplica = (): RenderReplica => ({ type: "file", dir: replicaDir });
const s3Replica = (): RenderReplica => ({ type: "s3", bucket: BUCKET, region: "us-east-1", endpoint: s3.url, forcePathStyle: true });
const common = () => ["--service", svc, "--volume", volume, "--uid", "1000", "--image", t.image("litestream")];
const restore = (stdin: string) => t.tool(["litestream", "restore", ...common()], { stdin });
const replicate = (stdin: string) => t.tool(["litestream", "replicate", ...common()], { stdin });

async function deployApp(): Promise<void> {
  await t.sh(`docker rm -f ${svc}-web >/dev/null 2>&1 || true`);
  await must(t.sh(`docker network inspect ${net} >/dev/null 2>&1 || docker network create ${net} >/dev/null`), "network");
  await must(t.sh(`docker run -d --name ${svc}-web --network ${net} -v ${volume}:/rails/storage -p 127.0.0.1::3000 ${t.image("app")}`), "app run");
  appPort = await publishedPort(t, `${svc}-web`);
  await app("GET", "/up");
}

/** What a lost host leaves: nothing. The app, the replicator and the storage volume are gone. */
async function loseHost(signal = "KILL"): Promise<void> {
  await t.sh(`docker kill -s ${signal} ${svc}-web ${svc}-litestream >/dev/null 2>&1; docker rm -f ${svc}-web ${svc}-litestream >/dev/null 2>&1; true`);
  await must(t.sh(`docker volume rm ${volume} >/dev/null`), "volume rm");
}

/** `count max(at)` of the items table, read straight from the volume. */
async function itemsOnVolume(): Promise<{ count: number; maxAt: number }> {
  const r = await must(t.sh(`docker run --rm --user 1000:1000 -v ${volume}:/rails/storage --entrypoint sqlite3 ${t.image("litestream")} /rails/storage/production.sqlite3 'SELECT count(*), coalesce(max(at), 0) FROM items'`), "sqlite3");
  const [count, maxAt] = r.stdout.trim().split("|").map(Number);
  return { count, maxAt };
}

before(async () => {
  t = (await targets())[0];
  s3 = await startS3({ host: t.s3Host, buckets: [BUCKET] });
});

after(async () => {
  await t.sh(`docker rm -f ${svc}-web ${svc}-litestream >/dev/null 2>&1; docker volume rm ${volume} >/dev/null 2>&1; docker network rm ${net} >/dev/null 2>&1; docker run --rm --user 0 -v /var/tmp/railhead-data-tests:/r --entrypoint rm ${t.image("litestream")} -rf /r/${svc}; true`);
  await t.tool(["accessory", "remove", "--service", svc, "--name", "db", "--purge"]);
  await t.tool(["drill", "unschedule", "--service", svc, "--kind", "sqlite"]);
  await s3.stop();
});

test("file replica: restore on a fresh host starts empty; replicate is one container, idempotent, as uid 1000", async () => {
  const stdin = stdinFor(fileReplica(), `${svc}/file`);
  const r = await must(restore(stdin), "restore");
  assert.match(r.stdout, /no replica yet, starts empty/);
  const rep = await must(replicate(stdin), "replicate");
  assert.match(rep.stdout, /replicating 1 database/);
  const again = await must(replicate(stdin), "replicate again");
  assert.match(again.stdout, /already current/);
  const info = (await t.sh(`docker inspect -f '{{.Config.User}} {{.HostConfig.RestartPolicy.Name}}' ${svc}-litestream`)).stdout.trim();
  assert.equal(info, "1000:1000 unless-stopped");
  assert.equal((await t.sh(`docker ps -q --filter name=^${svc}-litestream$ | wc -l`)).stdout.trim(), "1");
});

test("file replica: the host's volume is lost, restore brings every synced row back", async () => {
  await deployApp();
  for (let i = 0; i < 3; i++) await app("POST", `/sqlite/write?n=100`);
  assert.equal(Number((await app("GET", `/sqlite/count`)).count), 300);
  await sleep(3000); // > sync interval + monitor interval
  await loseHost();
  const stdin = stdinFor(fileReplica(), `${svc}/file`);
  const r = await must(restore(stdin), "restore");
  assert.match(r.stdout, /restored from the replica/);
  const again = await must(restore(stdin), "restore is idempotent");
  assert.match(again.stdout, /exists: left alone/);
  await must(replicate(stdin), "replicate");
  await deployApp();
  assert.equal(Number((await app("GET", `/sqlite/count`)).count), 300);
});

test("the backup drill passes on a good replica", async () => {
  await app("POST", `/sqlite/write?n=50`);
  await sleep(2500);
  const d = await must(t.tool(["drill", "sqlite", ...common(), "--sqlite-image", t.image("litestream")]), "drill (stored config)");
  assert.match(d.stdout, /production\.sqlite3 integrity_check ok/);
  assert.match(d.stdout, /production\.sqlite3 table=items live=350 restored=350 ok/);
  assert.match(d.stdout, /backup drill passed/);
  const withApp = await must(t.tool(["drill", "sqlite", ...common(), "--sqlite-image", t.image("app")], { stdin: stdinFor(fileReplica(), `${svc}/file`) }), "drill with the app image (python3)");
  assert.match(withApp.stdout, /table=items live=350 restored=350 ok/);
});

test("the backup drill fails on a corrupted replica", async () => {
  const dir = `${replicaDir}/${svc}/file/production.sqlite3`;
  // Overwrite the middle of the newest snapshot: the lz4 frame no longer decodes.
  await must(
    t.sh(`docker run --rm --user 0 -v ${replicaDir}:${replicaDir} --entrypoint sh ${t.image("litestream")} -c 'f=$(ls -1 ${dir}/generations/*/snapshots/*.lz4 | sort | tail -n1); sz=$(stat -c %s "$f"); dd if=/dev/urandom of="$f" bs=1 count=64 seek=$((sz / 2)) conv=notrunc status=none'`),
    "corrupt",
  );
  const d = await t.tool(["drill", "sqlite", ...common(), "--sqlite-image", t.image("litestream")]);
  assert.equal(d.code, 1, d.stdout);
  assert.match(d.stdout, /production\.sqlite3 (restore|integrity_check) FAIL/);
  assert.match(d.stderr, /backup drill FAILED/);
});

test("S3 replica: at most the last sync interval of writes is lost when the host dies", async () => {
  await loseHost();
  const stdin = stdinFor(s3Replica(), `${svc}/s3`);
  const fresh = await must(restore(stdin), "restore (no S3 replica yet)");
  assert.match(fresh.stdout, /no replica yet/);
  const rep = await must(replicate(stdin), "replicate to S3");
  assert.ok(!`${fresh.stdout}${fresh.stderr}${rep.stdout}${rep.stderr}`.includes(CREDS.secretAccessKey), "the tool never prints the credentials");
  const mode = await t.sh(`stat -c %a "\${RAILHEAD_STATE_DIR:-$HOME/.railhead}/litestream/${svc}/env"`);
  assert.equal(mode.stdout.trim(), "600", "credentials env file is 0600");
  await deployApp();
  await app("POST", `/sqlite/write?n=200`);
  await sleep(2500);
  // A steady writer, then the host dies mid-stream (SIGKILL: no final sync).
  let acked = 0;
  let lastAck = 0;
  const until = Date.now() + 4000;
  while (Date.now() < until) {
    await app("POST", `/sqlite/write?n=1`);
    acked += 1;
    lastAck = Date.now() / 1000;
    await sleep(40);
  }
  await loseHost("KILL");
  const r = await must(restore(stdin), "restore from S3");
  assert.match(r.stdout, /restored from the replica/);
  const { count, maxAt } = await itemsOnVolume();
  const lost = 200 + acked - count;
  const window = lastAck - maxAt;
  console.log(`# S3: wrote ${200 + acked} rows, restored ${count}, lost ${lost} rows = the last ${window.toFixed(2)}s of writes (sync interval 1s)`);
  assert.ok(count >= 200, "everything before the steady writer is back");
  assert.ok(count <= 200 + acked);
  // The data-loss window: sync interval (1s) + monitor interval (1s, they overlap) + upload time.
  assert.ok(window <= 2.0, `lost the last ${window.toFixed(2)}s of writes; expected at most ~1 sync interval (+ monitor + upload slack)`);
});

test("postgres: pg-dump to the replica target, then a drill restores it into a scratch database", async () => {
  const pgEnv = "POSTGRES_USER=app\nPOSTGRES_DB=app\nPOSTGRES_PASSWORD=pw-CANARY-pgd\n";
  await must(
    t.tool(["accessory", "boot", "--service", svc, "--name", "db", "--image", t.image("postgres"), "--network", net, "--volume", `${svc}-db-data:/var/lib/postgresql/data`, "--health-cmd", 'pg_isready -q -h 127.0.0.1 -U "$POSTGRES_USER" -d "$POSTGRES_DB"'], { stdin: pgEnv }),
    "boot postgres",
  );
  await must(t.sh(`docker exec ${svc}-db psql -q -U app -d app -c "CREATE TABLE orders (id serial primary key, note text); INSERT INTO orders (note) SELECT md5(i::text) FROM generate_series(1, 1234) i; CREATE TABLE users (id serial primary key); INSERT INTO users DEFAULT VALUES;"`), "seed");
  const dump = await must(t.tool(["pg-dump", "--service", svc, "--name", "db", "--target", replicaDir, "--prefix", `${svc}/file`]), "pg-dump");
  assert.match(dump.stdout, /dumped to .*\/postgres\/db\/\d{8}T\d{6}Z\.dump/);
  const d = await must(t.tool(["drill", "postgres", "--service", svc, "--name", "db", "--target", replicaDir, "--prefix", `${svc}/file`]), "drill postgres");
  assert.match(d.stdout, /pg_restore ok/);
  assert.match(d.stdout, /table=orders live=1234 restored=1234 ok/);
  assert.match(d.stdout, /postgres drill passed/);
  const dbs = (await t.sh(`docker exec ${svc}-db psql -qAt -U app -d app -c "SELECT count(*) FROM pg_database WHERE datname LIKE 'railhead_drill_%'"`)).stdout.trim();
  assert.equal(dbs, "0", "the scratch database is dropped");
  const d2 = await must(t.tool(["drill", "postgres", "--service", svc, "--name", "db", "--target", replicaDir, "--prefix", `${svc}/file`, "--dump"]), "dump + drill");
  assert.match(d2.stdout, /dumped to[\s\S]*postgres drill passed/);
});

test("drill schedule: a cron entry where cron exists, a loud warning where it does not", async () => {
  const has = (await t.sh("command -v crontab")).code === 0;
  const r = await must(t.tool(["drill", "schedule", "--service", svc, "--kind", "sqlite", "--cron", "17 3 * * *", "--", ...common(), "--sqlite-image", t.image("app")]), "schedule");
  if (!has) {
    assert.match(r.stderr, /WARN .*no crontab, so the sqlite drill is NOT scheduled/);
    return;
  }
  const tab = (await t.sh("crontab -l")).stdout;
  assert.match(tab, new RegExp(`^17 3 \\* \\* \\* .* drill sqlite --service ${svc} .*# railhead-drill ${svc} sqlite$`, "m"));
  const again = await must(t.tool(["drill", "schedule", "--service", svc, "--kind", "sqlite", "--cron", "17 3 * * *", "--", ...common(), "--sqlite-image", t.image("app")]), "again");
  assert.match(again.stdout, /already scheduled/);
  await must(t.tool(["drill", "unschedule", "--service", svc, "--kind", "sqlite"]), "unschedule");
  assert.doesNotMatch((await t.sh("crontab -l")).stdout, new RegExp(`railhead-drill ${svc} `));
});
