// Accessories on a real host: Postgres and Redis data survive an app redeploy, an accessory
// restart, an image change (and a failed one), an engine restart (rig); bindings stay private.
// Runs the bundled host tool against tests/rig hosts when the rig is up, else this machine's engine.
import { test, before, after } from "node:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import assert from "node:assert/strict";
import { REPO, hostHttp, must, publishedPort, q, rigJson, sleep, targets, uniq, type Target } from "./support";

let t: Target;
let t2: Target | undefined;
const svc = uniq("ra");
const net = `${svc}-net`;
const PASSWORD = "pw-CANARY-data-9c1";
const PG_HEALTH = 'pg_isready -q -h 127.0.0.1 -U "$POSTGRES_USER" -d "$POSTGRES_DB"';
const pgEnv = `POSTGRES_USER=app\nPOSTGRES_DB=app\nPOSTGRES_PASSWORD=${PASSWORD}\n`;
let appPort = "";
const app = (method: string, path: string) => hostHttp(t, appPort, method, path);

const bootPg = (image: string, extra: string[] = [], health = PG_HEALTH) =>
  t.tool(["accessory", "boot", "--service", svc, "--name", "db", "--image", image, "--network", net, "--volume", `${svc}-db-data:/var/lib/postgresql/data`, "--health-cmd", health, ...extra], { stdin: pgEnv });
const bootRedis = (image: string) =>
  t.tool(["accessory", "boot", "--service", svc, "--name", "redis", "--image", image, "--network", net, "--volume", `${svc}-redis-data:/data`, "--cmd", "redis-server --protected-mode no --appendonly yes", "--health-cmd", "redis-cli ping | grep -q PONG"]);
const containerId = async (name: string) => (await t.sh(`docker inspect -f '{{.Id}} {{.State.Running}}' ${name}`)).stdout.trim();

/** Starts (or replaces) the app container, the way a release would: same network, URLs in env. */
async function deployApp(version: string): Promise<void> {
  await t.sh(`docker rm -f ${svc}-web >/dev/null 2>&1 || true`);
  const env = [`DATABASE_URL=postgres://app:${PASSWORD}@${svc}-db:5432/app`, `REDIS_URL=redis://${svc}-redis:6379/0`].map((e) => `-e ${q(e)}`).join(" ");
  await must(t.sh(`docker run -d --name ${svc}-web --network ${net} -p 127.0.0.1::3000 ${env} ${t.image("app", version)}`), "app run");
  appPort = await publishedPort(t, `${svc}-web`);
  await app("GET", "/up");
}

const pgCount = async () => Number((await app("GET", `/pg/count`)).count);
const redisGet = async () => Number((await app("GET", `/redis/get?key=visits`)).value);

before(async () => {
  const all = await targets();
  t = all[0];
  t2 = all[1];
});

after(async () => {
  await t.sh(`docker rm -f ${svc}-web >/dev/null 2>&1; true`);
  await t.tool(["accessory", "remove", "--service", svc, "--name", "db", "--purge"]);
  await t.tool(["accessory", "remove", "--service", svc, "--name", "redis", "--purge"]);
  await t.sh(`docker network rm ${net} >/dev/null 2>&1; docker rmi ${t.image("postgres").replace(/:[^:/]+$/, `:15-${svc}`)} ${t.image("redis").replace(/:[^:/]+$/, `:7-${svc}`)} >/dev/null 2>&1; true`);
});

test("postgres and redis boot healthy; the same spec twice changes nothing; stdin never echoes", async () => {
  const pg = await must(bootPg(t.image("postgres")), "boot postgres");
  assert.match(pg.stdout, /booted .*-db/);
  assert.ok(!`${pg.stdout}${pg.stderr}`.includes(PASSWORD), "the password is never printed");
  const id = await containerId(`${svc}-db`);
  const again = await must(bootPg(t.image("postgres")), "boot postgres again");
  assert.match(again.stdout, /already current/);
  assert.equal(await containerId(`${svc}-db`), id, "same container");
  const env = await t.sh(`stat -c %a "\${RAILHEAD_STATE_DIR:-$HOME/.railhead}/accessories/${svc}-db/env"`);
  assert.equal(env.stdout.trim(), "600", "env file is 0600");
  const aliases = (await t.sh(`docker inspect -f '{{json .NetworkSettings.Networks}}' ${svc}-db`)).stdout;
  assert.match(aliases, new RegExp(`"${svc}-db"`));
  assert.match(aliases, /"db"/);
  await must(bootRedis(t.image("redis")), "boot redis");
  await deployApp("v1");
  await app("POST", `/pg/write?n=5`);
  for (let i = 0; i < 3; i++) await app("POST", `/redis/incr?key=visits`);
  assert.equal(await pgCount(), 5);
  assert.equal(await redisGet(), 3);
});

test("data survives an app redeploy", async () => {
  await deployApp("v2");
  assert.equal(await pgCount(), 5);
  assert.equal(await redisGet(), 3);
});

test("data survives an accessory restart", async () => {
  await must(t.sh(`docker restart ${svc}-db ${svc}-redis >/dev/null`), "restart");
  await must(bootPg(t.image("postgres")), "boot waits until healthy");
  await must(bootRedis(t.image("redis")), "redis healthy");
  assert.equal(await pgCount(), 5);
  assert.equal(await redisGet(), 3);
});

test("an image change replaces the container and keeps the data; a failed one leaves the old running", async () => {
  const pgRepo = t.image("postgres").replace(/:[^:/]+$/, "");
  const redisRepo = t.image("redis").replace(/:[^:/]+$/, "");
  const rig = rigJson();
  if (rig) {
    // A tag the host has never seen, in the rig's registry: the boot must pull it, before it stops anything.
    const push = (name: string, tag: string) => {
      const ref = `${rig.registry.push}/railhead-test/${name}:${tag}-${svc}`;
      return `docker tag railhead-test/${name}:${tag} ${ref} && docker push -q ${ref} >/dev/null`;
    };
    const { runProcess } = await import("../rig/rig");
    const r = await runProcess("bash", ["-c", `${push("postgres", "15")} && ${push("redis", "7")}`]);
    assert.equal(r.code, 0, r.stderr);
  } else {
    await must(t.sh(`docker tag ${t.image("postgres")} ${pgRepo}:15-${svc} && docker tag ${t.image("redis")} ${redisRepo}:7-${svc}`), "tag");
  }
  const oldId = await containerId(`${svc}-db`);
  const changed = await must(bootPg(`${pgRepo}:15-${svc}`), "image change");
  assert.match(changed.stdout, rig ? new RegExp(`pulled .*15-${svc}[\\s\\S]*spec changed: stopping the old container[\\s\\S]*booted`) : /spec changed: stopping the old container[\s\S]*booted/);
  assert.notEqual(await containerId(`${svc}-db`), oldId);
  await must(bootRedis(`${redisRepo}:7-${svc}`), "redis image change");
  assert.equal(await pgCount(), 5);
  assert.equal(await redisGet(), 3);

  // A pull that fails happens before anything stops.
  const running = await containerId(`${svc}-db`);
  const bad = await bootPg(`${pgRepo}:does-not-exist`);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /could not pull/);
  assert.doesNotMatch(bad.stdout, /stopping the old container/);
  assert.equal(await containerId(`${svc}-db`), running, "old container untouched");

  // A new container that never gets healthy: rolled back to the old one.
  const unhealthy = await bootPg(`${pgRepo}:15-${svc}`, ["--health-timeout", "8"], "false");
  assert.equal(unhealthy.code, 1);
  assert.match(unhealthy.stderr, /did not become healthy/);
  assert.match(await containerId(`${svc}-db`), / true$/);
  assert.equal(await pgCount(), 5, "the old container serves again");
  await must(bootPg(`${pgRepo}:15-${svc}`), "back to the good spec");
});

const canRestartEngine = existsSync(join(REPO, "tests/rig/rig.sh")) && /restart-engine/.test(readFileSync(join(REPO, "tests/rig/rig.sh"), "utf8"));
test("data survives a restart of the host's Docker engine (rig)", {
  skip: !rigJson() ? "needs the rig: never restarts this machine's shared engine" : !canRestartEngine ? "tests/rig/rig.sh has no restart-engine subcommand yet" : false,
}, async () => {
  const r = await must(t.sh(`true`), "noop");
  assert.equal(r.code, 0);
  const { spawnSync } = await import("node:child_process");
  const res = spawnSync("bash", [join(REPO, "tests/rig/rig.sh"), "restart-engine", t.name], { encoding: "utf8", timeout: 120_000 });
  assert.equal(res.status, 0, `rig.sh restart-engine ${t.name}: ${res.stderr}`);
  for (let i = 0; i < 60 && !/ true$/.test(await containerId(`${svc}-db`)); i++) await sleep(1000);
  await must(bootPg(t.image("postgres").replace(/:[^:/]+$/, `:15-${svc}`)), "healthy after the engine restart");
  await must(t.sh(`docker start ${svc}-web >/dev/null`), "app back");
  // A restarted engine publishes the app on a new ephemeral host port.
  appPort = await publishedPort(t, `${svc}-web`);
  await app("GET", "/up");
  assert.equal(await pgCount(), 5);
  assert.equal(await redisGet(), 3);
});

test("ports: no bind address or 0.0.0.0 is refused without --allow-public, and warned with it", async () => {
  const bare = await bootPg(t.image("postgres"), ["--port", "5432:5432"]);
  assert.equal(bare.code, 2);
  assert.match(bare.stderr, /no bind address, so Docker publishes it on every interface/);
  const all = await bootPg(t.image("postgres"), ["--port", "0.0.0.0:15432:5432"]);
  assert.equal(all.code, 2);
  const warned = await bootPg("rh-data/none:none", ["--port", "0.0.0.0:15432:5432", "--allow-public"]);
  assert.match(warned.stderr, /WARN .*ALL interfaces/);
  assert.equal(warned.code, 1, "then fails at the pull: nothing was published");
});

test("a private-network accessory is reachable from another host and not from the public side (rig)", { skip: rigJson() ? false : "needs two rig hosts" }, async () => {
  assert.ok(t2?.privateIp && t.privateIp, "rig hosts have private IPs");
  const h2 = t2 as Target;
  const name = "pdb";
  const boot = await h2.tool(
    ["accessory", "boot", "--service", svc, "--name", name, "--image", h2.image("postgres"), "--network", net, "--volume", `${svc}-pdb-data:/var/lib/postgresql/data`, "--health-cmd", PG_HEALTH, "--port", "127.0.0.1:15432:5432", "--port", `${h2.privateIp}:15432:5432`],
    { stdin: pgEnv },
  );
  assert.equal(boot.code, 0, boot.stderr);
  try {
    const binds = (await h2.sh(`docker port ${svc}-${name} 5432/tcp`)).stdout.trim().split("\n").sort();
    assert.deepEqual(binds, [`${h2.privateIp}:15432`, "127.0.0.1:15432"].sort(), "published on loopback and the private IP only");
    const fromH1 = await t.sh(`docker run --rm --network host --entrypoint pg_isready ${t.image("postgres")} -h ${h2.privateIp} -p 15432`);
    assert.equal(fromH1.code, 0, `h1 reaches h2's accessory over the private network: ${fromH1.stdout}${fromH1.stderr}`);
    const { run } = await import("./support");
    const pub = await run(["bash", "-c", `timeout 3 bash -c '</dev/tcp/${h2.publicIp}/15432' 2>&1 && echo OPEN || echo CLOSED`]);
    assert.match(pub.stdout, /CLOSED/, "not reachable on the public address from the root namespace");
    const priv = await run(["bash", "-c", `timeout 3 bash -c '</dev/tcp/${h2.privateIp}/15432' 2>&1 && echo OPEN || echo CLOSED`]);
    assert.match(priv.stdout, /CLOSED/, "the private network is not routed to the root namespace");
  } finally {
    await h2.tool(["accessory", "remove", "--service", svc, "--name", name, "--purge"]);
  }
});

test("remove keeps the data volume; --purge removes it", async () => {
  await must(t.tool(["accessory", "remove", "--service", svc, "--name", "redis"]), "remove");
  assert.equal((await t.sh(`docker volume inspect ${svc}-redis-data >/dev/null && echo kept`)).stdout.trim(), "kept");
  await must(bootRedis(t.image("redis")), "boot again on the kept volume");
  assert.equal(await redisGet(), 3, "the data was on the kept volume");
  const purged = await must(t.tool(["accessory", "remove", "--service", svc, "--name", "redis", "--purge"]), "purge");
  assert.match(purged.stdout, /purged volume/);
  assert.notEqual((await t.sh(`docker volume inspect ${svc}-redis-data`)).code, 0);
});

test("usage errors exit 2 with help", async () => {
  const r = await t.tool(["accessory", "boot", "--service", svc]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /ERROR usage: accessory boot needs --service, --name and --image/);
  assert.match((await t.tool(["accessory", "boot", "--help"])).stdout, /Usage: railhead-host accessory boot/);
  assert.equal((await t.tool(["accessory", "--help"])).code, 0);
});
