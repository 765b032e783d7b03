// e2e: the data path. Kamal's accessory lifecycle (#13: boot, restart, upgrade, removal keeps data)
// plus Railhead's own: accessories unreachable from outside the private network, and Litestream
// restoring a rebuilt host's SQLite from S3. Apply harness (test equipment); the S3 endpoint is the
// project's local fauxqs wrapper (tests/support/s3) bound on the rig gateway so rig hosts reach it.
import { test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { scenario, skipped } from "../summary";
import { containerIds, containers, e2eStack, harness, hcloudHost, httpRequest, IMAGE, ip, mustSucceed, onHost, privateIp, rig, slot, up } from "../support";
import { REPO } from "../harness";

const STACK = "e2e-data";
const [H1, H2] = [slot(0), slot(1)];
const HOSTS = { "app-1": H1, "db-1": H2 };
const hostsConfig = (appImage = "ubuntu-24.04") => ({ "app-1": hcloudHost(H1, "fsn1", appImage), "db-1": hcloudHost(H2) });
const hasFauxqs = [join(REPO, "node_modules", "fauxqs"), join(REPO, "tmp", "data-deps", "node_modules", "fauxqs")].some((p) => existsSync(p));

function tcpOpen(host: string, port: number, timeoutMs = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (v: boolean) => {
      s.destroy();
      resolve(v);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.on("connect", () => done(true));
    s.on("error", () => done(false));
  });
}

const count = async (kind: "pg" | "sqlite") => {
  const r = await httpRequest("GET", ip(H1), `/${kind}/count`);
  assert.equal(r.status, 200, `GET /${kind}/count -> ${r.status} ${r.body}`);
  return Number(/\d+/.exec(r.body)?.[0] ?? NaN);
};

const NO_S3 = "fauxqs (the local S3 endpoint) is not installed: run tests/data/run.sh once or npm i --prefix tmp/data-deps fauxqs@1.9.2";
if (!hasFauxqs) skipped(["accessories: boot, private only", "accessories: restart + upgrade keep data", "accessories: removal keeps data", "litestream: rebuilt host restores SQLite"], NO_S3);

test("data path: accessories and Litestream", { concurrency: false, skip: hasFauxqs ? false : NO_S3 }, async (t) => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { startS3 } = require("../../support/s3/server") as typeof import("../../support/s3/server");
  const s3 = await startS3({ host: rig().gateway, port: 0 });
  t.after(() => s3.stop());
  const litestream = {
    image: `${rig().registry.pull}/railhead-test/litestream:0.3.13`,
    storage: "/rails/storage",
    databases: ["production.sqlite3"],
    replica: { type: "s3", bucket: "e2e-litestream", createBucket: true, region: "us-east-1", endpoint: s3.url, forcePathStyle: true, accessKeyId: ["LS_KEY_ID"], secretAccessKey: ["LS_SECRET"] },
    syncInterval: "1s",
  };
  const accessories = (over: Record<string, unknown> = {}) => ({
    db: { preset: "postgres", image: `${rig().registry.pull}/railhead-test/postgres:15`, host: "db-1", port: 5432, password: ["POSTGRES_PASSWORD"], ...over },
    cache: { preset: "redis", image: `${rig().registry.pull}/railhead-test/redis:7`, host: "db-1", port: 6379 },
  });
  const spec = (extra: Record<string, unknown> = {}) => e2eStack(STACK, HOSTS, { hosts: hostsConfig(), image: IMAGE("v1"), litestream, accessories: accessories(), ...extra }, "e2e-data.yaml");
  harness.forget(STACK);

  await t.test("accessories boot on the db host; the app uses them over the private network; nothing reachable from outside", async () => {
    await scenario("accessories: boot, private only", async () => {
      mustSucceed(await up(spec()));
      const names = await containers(H2);
      assert.ok(names.includes("e2edata-db") && names.includes("e2edata-cache"), `accessories on h2: ${names.join(", ")}`);
      assert.equal((await httpRequest("POST", ip(H1), "/pg/write?n=3")).status, 200);
      assert.equal(await count("pg"), 3);
      assert.equal((await httpRequest("POST", ip(H1), "/redis/incr?key=e2e")).status, 200);
      // from "the internet" (the rig's root namespace): closed on the public address
      assert.equal(await tcpOpen(ip(H2), 5432), false, "Postgres answers on the public address");
      assert.equal(await tcpOpen(ip(H2), 6379), false, "Redis answers on the public address");
      // from another host on the private network: open
      await onHost(H1, `timeout 3 bash -c '</dev/tcp/${privateIp(H2)}/5432'`);
      // the binds themselves, not only the firewall: loopback and the private IP, never 0.0.0.0
      const binds = await onHost(H2, "ss -Hltn | awk '{print $4}' | grep -E ':(5432|6379)$' | sort -u");
      assert.doesNotMatch(binds, /^(0\.0\.0\.0|\*|\[::\]):/m, `binds: ${binds}`);
    });
  });

  await t.test("restart (changed env) and upgrade (new image tag) keep the data", async () => {
    await scenario("accessories: restart + upgrade keep data", async () => {
      const before = await containerIds(H2, "e2edata");
      mustSucceed(await up(spec({ accessories: accessories({ env: { clear: { E2E_RESTART: "1" } } }) })));
      assert.notDeepEqual(await containerIds(H2, "e2edata"), before, "the db container was recreated");
      assert.equal(await count("pg"), 3);
      // an upgrade: the same Postgres under a new tag in the rig registry
      const { spawnCollect } = await import("../engine/ssh");
      const src = `${rig().registry.push}/railhead-test/postgres:15`;
      const dst = `${rig().registry.push}/railhead-test/postgres:15-e2e`;
      for (const args of [["pull", src], ["tag", src, dst], ["push", dst]]) {
        const r = await spawnCollect("docker", args);
        assert.equal(r.code, 0, `docker ${args.join(" ")}: ${r.combined}`);
      }
      mustSucceed(await up(spec({ accessories: accessories({ image: `${rig().registry.pull}/railhead-test/postgres:15-e2e`, env: { clear: { E2E_RESTART: "1" } } }) })));
      const image = await onHost(H2, "docker inspect -f '{{.Config.Image}}' e2edata-db");
      assert.match(image, /postgres:15-e2e/);
      assert.equal(await count("pg"), 3);
    });
  });

  await t.test("removing an accessory keeps its volume; adding it back finds the data", async () => {
    await scenario("accessories: removal keeps data", async () => {
      const noDb = { cache: accessories().cache };
      const r = await up(spec({ accessories: noDb }));
      mustSucceed(r);
      assert.ok(!(await containers(H2, true)).includes("e2edata-db"), "db container removed");
      assert.match(await onHost(H2, "docker volume ls -q"), /e2edata-db-data/, "its volume is kept");
      mustSucceed(await up(spec()));
      assert.equal(await count("pg"), 3);
    });
  });

  await t.test("Litestream: a destroyed and rebuilt host gets its SQLite data restored", async () => {
    await scenario("litestream: rebuilt host restores SQLite", async () => {
      assert.equal((await httpRequest("POST", ip(H1), "/sqlite/write?n=5")).status, 200);
      const n = await count("sqlite");
      assert.ok(n >= 5, `rows before: ${n}`);
      await new Promise((r) => setTimeout(r, 4000)); // syncInterval 1s: let the WAL reach S3
      const hosts = hostsConfig("ubuntu-22.04");
      const db = await containerIds(H2, "e2edata");
      const r = await up(spec({ hosts }));
      mustSucceed(r);
      assert.ok(r.steps.some((s) => s.name === "host-app-1/server" && s.op === "replace"), "app-1's server was replaced");
      assert.equal(await count("sqlite"), n, "the rebuilt host restored the SQLite rows from S3");
      assert.deepEqual(await containerIds(H2, "e2edata"), db, "the db host was untouched");
    });
  });
});
