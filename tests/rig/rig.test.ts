// Proves the rig works: run with `node --import tsx --test tests/rig/rig.test.ts` after
// `bash tests/rig/rig.sh up`. Test equipment, not a product feature.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { httpGet, loadRig, rigHost, rigImage, sshRun, startLoad, waitFor, type Rig } from "./rig";

const PREFIX = "rh-rigtest";
const NET = `${PREFIX}-net`;
let rig: Rig;

async function ok(host: string, command: string, timeoutMs = 120_000): Promise<string> {
  const r = await sshRun(host, command, { timeoutMs });
  assert.equal(r.code, 0, `${host}: ${command}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r.stdout.trim();
}

/** Removes the containers, network and firewall openings this file made, on every host. */
async function cleanup(): Promise<void> {
  await Promise.all(
    rig.hosts.map((h) =>
      sshRun(
        h,
        `docker ps -aq --filter name=${PREFIX} | xargs -r docker rm -f >/dev/null; docker network rm ${NET} >/dev/null 2>&1; ` +
          `while rule=$(iptables -S INPUT | grep -m1 -- '--comment ${PREFIX}'); do iptables $(echo "$rule" | sed 's/^-A/-D/') || break; done; true`,
        { timeoutMs: 60_000 },
      ),
    ),
  );
}

/**
 * Makes PORT on the host's public IP reachable from the root namespace: other suites may have put
 * a firewall on the rig hosts (INPUT -i eth0), so open just this port, marked, until cleanup.
 * Containers must join a user-defined network: the rig's engines run with --bridge none.
 */
async function ensureNet(host: string): Promise<void> {
  await ok(host, `docker network inspect ${NET} >/dev/null 2>&1 || docker network create ${NET} >/dev/null`);
}

async function openPort(host: string, port: number): Promise<void> {
  await ensureNet(host);
  await ok(host, `iptables -I INPUT 1 -i eth0 -p tcp --dport ${port} -m comment --comment ${PREFIX} -j ACCEPT`);
}

function tcpConnect(host: string, port: number, timeoutMs: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve("timeout");
    }, timeoutMs);
    socket.on("connect", () => {
      clearTimeout(timer);
      socket.destroy();
      resolve("connected");
    });
    socket.on("error", (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(e.code ?? e.message);
    });
  });
}

before(async () => {
  rig = loadRig();
  await cleanup();
});

after(async () => {
  await cleanup();
});

describe("rig hosts", () => {
  test("each host's SSH session reaches its own engine, $HOME, /tmp and hostname", async () => {
    assert.ok(rig.hosts.length >= 2, "the rig needs at least two hosts");
    for (const h of rig.hosts) {
      const marker = `rig-test-${h.name}-${process.pid}`;
      const out = await ok(
        h.name,
        `echo "$(hostname)|$HOME|$DOCKER_HOST|$(docker info --format '{{.DockerRootDir}}')"; echo ${marker} > ~/.rig-test-marker; echo ${marker} > /tmp/rig-test-marker`,
      );
      const [hostname, home, dockerHost, root] = out.split("|");
      assert.equal(hostname, h.name);
      assert.equal(home, "/root");
      assert.equal(dockerHost, h.dockerHost);
      assert.equal(root, path.join(path.dirname(h.home), "docker"), `${h.name} talks to its own engine`);
      // the host's $HOME is the rig's home directory for it, seen from the root namespace
      assert.equal(fs.readFileSync(path.join(h.home, ".rig-test-marker"), "utf8").trim(), marker);
      // a plain `docker` (default socket, no DOCKER_HOST) talks to the same engine
      const plain = await ok(h.name, `env -u DOCKER_HOST docker info --format '{{.DockerRootDir}}'`);
      assert.equal(plain, root);
    }
    // and each host sees only its own marker files
    for (const h of rig.hosts) {
      const mine = await ok(h.name, "cat ~/.rig-test-marker /tmp/rig-test-marker");
      assert.deepEqual(mine.split("\n"), [`rig-test-${h.name}-${process.pid}`, `rig-test-${h.name}-${process.pid}`]);
    }
    await Promise.all(rig.hosts.map((h) => ok(h.name, "rm -f ~/.rig-test-marker /tmp/rig-test-marker")));
  });

  test("the private network joins hosts but is unreachable from the root namespace", async () => {
    const h1 = rigHost("h1", rig);
    const h2 = rigHost("h2", rig);
    await ok(h1.name, `timeout 5 bash -c '</dev/tcp/${h2.privateIp}/22'`);
    await ok(h1.name, `timeout 5 bash -c '</dev/tcp/${h2.publicIp}/22'`);
    assert.equal(await tcpConnect(h2.publicIp, 22, 3000), "connected");
    assert.notEqual(await tcpConnect(h2.privateIp, 22, 3000), "connected");
  });
});

describe("test images through the registry", () => {
  test("a host pulls the app from the registry and serves it on its public IP", async () => {
    const h1 = rigHost("h1", rig);
    const image = rigImage("app:v1", rig);
    await openPort(h1.name, 38001);
    await ok(h1.name, `docker pull -q ${image} && docker run -d --name ${PREFIX}-app --network ${NET} -p 38001:3000 ${image}`);
    const res = await waitFor("the app on h1", async () => {
      const r = await httpGet(`http://${h1.publicIp}:38001/version`, { timeoutMs: 2000 });
      return r.status === 200 ? r : undefined;
    });
    assert.equal(res.body, "v1");
    assert.equal(res.headers["x-app-version"], "v1");
    assert.equal((await httpGet(`http://${h1.publicIp}:38001/up`)).body, "OK v1");
    const who = JSON.parse((await httpGet(`http://${h1.publicIp}:38001/whoami`)).body) as { uid: number };
    assert.equal(who.uid, 1000, "the app runs as uid 1000");

    // the load generator sees only successes and counts versions
    const load = startLoad({ url: `http://${h1.publicIp}:38001/`, keepAlive: true, connections: 4, durationMs: 1500 });
    const r = await load.done;
    assert.equal(r.failed, 0, JSON.stringify(r.errors));
    assert.ok(r.total > 50, `only ${r.total} requests in 1.5 s`);
    assert.deepEqual(Object.keys(r.versions), ["v1"]);
    const closeLoad = startLoad({ url: `http://${h1.publicIp}:38001/`, keepAlive: false, connections: 4, durationMs: 1000 });
    const rc = await closeLoad.done;
    assert.equal(rc.failed, 0, JSON.stringify(rc.errors));
    assert.ok(rc.total > 20, `only ${rc.total} requests in 1 s without keep-alive`);
    assert.throws(() => startLoad({ url: "http://192.0.2.1/", keepAlive: true, connections: 1, durationMs: 1 }), /refusing/);

    // graceful stop: a request in flight finishes, the container exits 0
    const slow = httpGet(`http://${h1.publicIp}:38001/slow?s=2`, { timeoutMs: 15_000 });
    await new Promise((res2) => setTimeout(res2, 500));
    const stop = await ok(h1.name, `docker stop -t 20 ${PREFIX}-app >/dev/null && docker inspect -f '{{.State.ExitCode}}' ${PREFIX}-app`);
    assert.equal(stop, "0");
    assert.equal((await slow).body, "slept 2 v1");
    const logs = await ok(h1.name, `docker logs ${PREFIX}-app 2>&1`);
    assert.match(logs, /graceful shutdown/);
  });

  test("v3-broken fails its health check and says so", async () => {
    const image = rigImage("app:v3-broken", rig);
    const h3 = rig.hosts[rig.hosts.length - 1];
    await openPort(h3.name, 38002);
    await ok(h3.name, `docker run -d --name ${PREFIX}-broken --network ${NET} -p 38002:3000 ${image}`);
    const res = await waitFor("the broken app", async () => {
      const r = await httpGet(`http://${h3.publicIp}:38002/up`, { timeoutMs: 2000 });
      return r.status ? r : undefined;
    });
    assert.equal(res.status, 500);
    assert.equal((await httpGet(`http://${h3.publicIp}:38002/version`)).body, "v3-broken");
    assert.match(await ok(h3.name, `docker logs ${PREFIX}-broken 2>&1`), /health check failing on purpose/);
    const migrate = await ok(h3.name, `docker run --rm --network none -e MIGRATE_LOG=/tmp/m.log ${image} sh -c 'bin/migrate && cat /tmp/m.log'`);
    assert.equal(migrate, "migrating v3-broken\nmigrated v3-broken\nv3-broken");
  });

  test("the app reaches postgres and redis on another host over the private network", async () => {
    const h1 = rigHost("h1", rig);
    const h2 = rigHost("h2", rig);
    const pw = "rig-test-secret";
    await ensureNet(h2.name);
    await ok(
      h2.name,
      `docker run -d --name ${PREFIX}-pg --network ${NET} -p ${h2.privateIp}:5432:5432 -e POSTGRES_PASSWORD=${pw} -e POSTGRES_DB=app ${rigImage("postgres:15", rig)} >/dev/null && ` +
        `docker run -d --name ${PREFIX}-redis --network ${NET} -p ${h2.privateIp}:6379:6379 ${rigImage("redis:7", rig)} >/dev/null`,
    );
    await waitFor("postgres on h2", async () => (await sshRun(h2, `docker exec ${PREFIX}-pg pg_isready -h 127.0.0.1 -U postgres`)).code === 0, 60_000);
    await waitFor("redis on h2", async () => (await sshRun(h2, `docker exec ${PREFIX}-redis redis-cli ping`)).stdout.trim() === "PONG", 30_000);

    await openPort(h1.name, 38003);
    await ok(
      h1.name,
      `docker run -d --name ${PREFIX}-data --network ${NET} -p 38003:3000 ` +
        `-e DATABASE_URL=postgres://postgres:${pw}@${h2.privateIp}:5432/app -e REDIS_URL=redis://${h2.privateIp}:6379/0 ` +
        `-e SQLITE_PATH=/rails/storage/test.sqlite3 -e SECRET_KEY_BASE=${pw} ${rigImage("app:v2", rig)} >/dev/null`,
    );
    const base = `http://${h1.publicIp}:38003`;
    await waitFor("the app on h1", async () => (await httpGet(`${base}/up`, { timeoutMs: 2000 })).status === 200);
    const post = (p: string) => httpGet(`${base}${p}`, { method: "POST", body: "" });

    const pgw = await post("/pg/write?n=3");
    assert.equal(pgw.status, 200, pgw.body);
    assert.deepEqual(JSON.parse((await httpGet(`${base}/pg/count`)).body), { count: 3 });
    assert.deepEqual(JSON.parse((await post("/redis/incr?key=k")).body), { key: "k", value: 1 });
    assert.deepEqual(JSON.parse((await post("/redis/incr?key=k")).body), { key: "k", value: 2 });
    assert.deepEqual(JSON.parse((await httpGet(`${base}/redis/get?key=k`)).body), { key: "k", value: "2" });
    assert.deepEqual(JSON.parse((await post("/sqlite/write?n=5")).body), { inserted: 5, count: 5 });
    assert.equal(await ok(h1.name, `docker exec ${PREFIX}-data python3 -c "import sqlite3; print(sqlite3.connect('/rails/storage/test.sqlite3').execute('PRAGMA journal_mode').fetchone()[0])"`), "wal");
    const env = JSON.parse((await httpGet(`${base}/env/SECRET_KEY_BASE`)).body) as { set: boolean; sha256: string };
    assert.equal(env.set, true);
    assert.equal(env.sha256.length, 64);
    assert.ok(!JSON.stringify(env).includes(pw), "the value never comes back");
    assert.deepEqual(JSON.parse((await httpGet(`${base}/env/NOT_SET_ANYWHERE`)).body), { name: "NOT_SET_ANYWHERE", set: false, sha256: null });
  });

  test("proxy, TLS front and litestream images run their programs", async () => {
    const h = rigHost("h2", rig);
    const out = await ok(
      h.name,
      `docker run --rm --entrypoint sh ${rigImage("haproxy:2.6", rig)} -c 'haproxy -v | head -n1; command -v bash; id -u' && ` +
        `docker run --rm ${rigImage("caddy:2.6", rig)} caddy version && ` +
        `docker run --rm ${rigImage("litestream:0.3.13", rig)} version && ` +
        `docker run --rm --entrypoint sqlite3 ${rigImage("litestream:0.3.13", rig)} -version`,
    );
    assert.match(out, /HAProxy version 2\.6/);
    assert.match(out, /\/bin\/bash/);
    assert.match(out, /^99$/m);
    assert.match(out, /^v?2\.6\.\d+/m);
    assert.match(out, /^v0\.3\.13$/m);
    assert.match(out, /^3\.\d+/m);
  });
});
