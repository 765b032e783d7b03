// Incident-restore figures (prints numbers; not a test): the whole `railhead-host restore` command on
// a rig host, every step included, for a SQLite database (point in time, from a Litestream file
// replica) and a Postgres database (from a pg-dump), each at the sizes asked for (default 50 and
// 500 MB). The set-up is the data tests' (tests/data/restore.test.ts): a web release of the test
// app behind the host's proxy mounting the SQLite volume, the real Litestream 0.3.13 replicator,
// Postgres as an accessory. Rows are incompressible (random bytes), so the replica and the dump
// are about as big as the database.
//   node --import tsx bench/restore.ts [--sizes 50,500] [--host rhr-h3]   (rig up: tests/rig/rig.sh up)
import { renderLitestreamStdin, renderLitestreamYml } from "../components/litestream-render";
import { rigImage, loadRig } from "../tests/rig/rig";
import { must, rigTarget, sleep, uniq, type RunResult, type Target } from "../tests/data/support";

const arg = (name: string, dflt: string) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : dflt);
const sizes = arg("--sizes", "50,500").split(",").map(Number);

/** "step N NAME done in Xs" lines of a restore run: [name, seconds]. */
function steps(r: RunResult): Array<[string, number]> {
  return [...r.stdout.matchAll(/: step \d+ (.+?) done in (\d+\.\d+)s/g)].map((m) => [m[1].replace(/ \S*\/\S+| \S+_restore_\S+| (rhb|app)\S*/g, ""), Number(m[2])]);
}

function report(label: string, r: RunResult, wall: number): void {
  if (r.code !== 0) throw new Error(`${label} failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
  console.log(`${label}: ${wall.toFixed(2)} s in all (wall clock, ssh included)`);
  for (const [name, s] of steps(r)) console.log(`    ${s.toFixed(2).padStart(7)} s  ${name}`);
}

async function timed(fn: () => Promise<RunResult>): Promise<{ r: RunResult; wall: number }> {
  const t0 = performance.now();
  const r = await fn();
  return { r, wall: (performance.now() - t0) / 1000 };
}

async function main(): Promise<void> {
  const rig = loadRig();
  const t: Target = await rigTarget(arg("--host", rig.hosts[rig.hosts.length - 1].name));
  const tool = (args: string[], stdin?: string) => t.tool(args, { stdin, timeoutMs: 1_800_000 });
  const svc = uniq("rhb");
  const volume = `${svc}-storage`;
  const replicaDir = `/var/tmp/railhead-bench/${svc}`;
  const prefix = `${svc}/bench`;
  const pw = "bench-pw";
  console.log(`host ${t.name}; sizes ${sizes.join(", ")} MB; litestream 0.3.13 to a file replica (sync 1s); ${t.image("postgres")}`);
  try {
    await must(tool(["network", "ensure", "railhead"]), "network");
    await must(tool(["proxy", "boot", "--image", rigImage("haproxy:2.6", rig)]), "proxy");
    await must(tool(["proxy", "service", "add", svc, "--app-port", "3000", "--domain", `${svc}.bench`]), "service");
    await must(
      tool(["accessory", "boot", "--service", svc, "--name", "db", "--image", t.image("postgres"), "--volume", `${svc}-db:/var/lib/postgresql/data`, "--health-cmd", 'pg_isready -q -h 127.0.0.1 -U "$POSTGRES_USER"'], `POSTGRES_USER=app\nPOSTGRES_DB=app\nPOSTGRES_PASSWORD=${pw}\n`),
      "postgres",
    );
    const yml = renderLitestreamYml({ storage: "/rails/storage", databases: ["production.sqlite3"], replica: { type: "file", dir: replicaDir }, prefix, syncInterval: "1s", snapshotInterval: "1h", retention: "72h" });
    await must(tool(["litestream", "replicate", "--service", svc, "--volume", volume, "--uid", "1000", "--image", t.image("litestream")], renderLitestreamStdin(yml, "")), "replicate");
    await must(
      tool(["release", "--service", svc, "--role", "web", "--version", "v1", "--image", t.image("app"), "--web", "--app-port", "3000", "--volume", `${volume}:/rails/storage`], `DATABASE_URL=postgres://app:${pw}@${svc}-db:5432/app\n`),
      "release",
    );
    let filled = 0;
    for (const mb of sizes) {
      // SQLite: grow the live database to MB (1 KB random rows, 20 MB per transaction), let the
      // replicator ship it, take T, then restore to T.
      const sql = (n: number) => `PRAGMA busy_timeout=10000; CREATE TABLE IF NOT EXISTS big (id INTEGER PRIMARY KEY, b BLOB); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < ${n}) INSERT INTO big (b) SELECT randomblob(1000) FROM n;`;
      const f0 = performance.now();
      for (; filled < mb; filled += 20) await must(t.sh(`docker run --rm --user 1000:1000 --network none -v ${volume}:/rails/storage --entrypoint sqlite3 ${t.image("litestream")} /rails/storage/production.sqlite3 '${sql(20_000)}'`, { timeoutMs: 600_000 }), "fill sqlite");
      const size = (await t.sh(`docker run --rm -v ${volume}:/s --entrypoint du ${t.image("litestream")} -cm /s/production.sqlite3 /s/production.sqlite3-wal | tail -n1`)).stdout.trim().split(/\s+/)[0];
      // Shipped: the replica stops growing.
      let last = "";
      for (let i = 0; i < 600; i++) {
        const now = (await t.sh(`du -sb ${replicaDir} 2>/dev/null | cut -f1`)).stdout.trim();
        if (now === last && i > 3) break;
        last = now;
        await sleep(1000);
      }
      console.log(`\nSQLite ${mb} MB (file + WAL ${size} MB; filled and shipped in ${((performance.now() - f0) / 1000).toFixed(0)} s, replica ${(Number(last) / 1e6).toFixed(0)} MB)`);
      const T = new Date().toISOString();
      await sleep(1500);
      const dry = await timed(() => tool(["restore", "sqlite", "--service", svc, "--timestamp", T, "--dry-run"]));
      report(`  restore sqlite --timestamp T --dry-run`, dry.r, dry.wall);
      const real = await timed(() => tool(["restore", "sqlite", "--service", svc, "--timestamp", T]));
      report(`  restore sqlite --timestamp T`, real.r, real.wall);
      // Keep the next size's fill from starting on top of a kept-aside copy's disk use.
      await t.sh(`docker run --rm --user 0 -v ${volume}:/s --entrypoint sh ${t.image("litestream")} -c 'rm -f /s/*.before-restore-*'`);

      // Postgres: a table of MB of 1 KB random rows, a dump, a restore of it.
      await must(t.sh(`docker exec ${svc}-db psql -q -U app -d app -c "DROP TABLE IF EXISTS big; CREATE TABLE big (id serial primary key, b bytea); INSERT INTO big (b) SELECT decode(string_agg(lpad(to_hex((random() * 4294967295)::bigint), 8, '0'), ''), 'hex') FROM generate_series(1, ${mb * 1000}) r, generate_series(1, 250) c GROUP BY r"`, { timeoutMs: 1_800_000 }), "fill postgres");
      const pgSize = (await t.sh(`docker exec ${svc}-db psql -qAt -U app -d app -c "SELECT pg_database_size('app') / 1000000"`)).stdout.trim();
      const dump = await timed(() => tool(["pg-dump", "--service", svc, "--name", "db", "--target", replicaDir, "--prefix", prefix]));
      if (dump.r.code !== 0) throw new Error(dump.r.stderr);
      const dumpSize = (await t.sh(`du -m $(ls -1 ${replicaDir}/${prefix}/postgres/db/*.dump | tail -n1) | cut -f1`)).stdout.trim();
      console.log(`\nPostgres ${mb} MB (database ${pgSize} MB, dump ${dumpSize} MB, pg-dump ${dump.wall.toFixed(2)} s)`);
      const pg = await timed(() => tool(["restore", "postgres", "--service", svc, "--name", "db", "--target", replicaDir, "--prefix", prefix]));
      report(`  restore postgres`, pg.r, pg.wall);
      await t.sh(`docker exec ${svc}-db sh -c 'for d in $(psql -qAt -U app -d postgres -c "SELECT datname FROM pg_database WHERE datname LIKE '"'"'app_before_%'"'"'"); do dropdb -U app "$d"; done'`);
    }
  } finally {
    await t.sh(
      `docker ps -aq --filter label=railhead.service=${svc} | xargs -r docker rm -f >/dev/null; bash "$HOME/.railhead/bin/railhead-host-data" proxy service remove ${svc} >/dev/null 2>&1; ` +
        `docker volume rm -f ${volume} ${svc}-db >/dev/null; docker run --rm --user 0 -v /var/tmp/railhead-bench:/r --entrypoint rm ${t.image("litestream")} -rf /r/${svc}; rm -rf "$HOME/.railhead/apps/${svc}" "$HOME/.railhead/litestream/${svc}"; true`,
    );
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
