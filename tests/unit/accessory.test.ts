// Accessories under the mock runtime (stack "production"): bindings, secrets, protection, URLs,
// and the config checks of components/accessory-config.ts.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { canary, loadStackFile } from "../support/stack-config";
import { isSecretWire, plainStrings, setupMocks, settle, unwrap, type Recorder, type Registration } from "../support/mocks";
import { fakeHosts, recordRetainOnDelete } from "../data/unit-support";
import * as pulumi from "@pulumi/pulumi";
import { accessorySpec, bootArgv, portBinds } from "../../components/accessory";
import { validateAccessories } from "../../components/accessory-config";
import type { LitestreamConfig } from "../../components/litestream-config";
import { ConfigError, loadConfig } from "../../components/config";
import type { DataPath } from "../../components/data-path";

const fx = loadStackFile("production");
let rec: Recorder;
let dp: DataPath;
/** A second stack in the same runtime (service "pgb"): Postgres backup to the Litestream S3 bucket. */
const bx = loadStackFile("production", {
  override: {
    "railhead:service": "pgb",
    "railhead:litestream": {
      storage: "/rails/storage",
      databases: ["production.sqlite3"],
      roles: ["job"],
      replica: { type: "s3", bucket: "pgb-backups", createBucket: false, region: "fsn1", endpoint: "https://fsn1.your-objectstorage.com", accessKeyId: ["LITESTREAM_ACCESS_KEY_ID"], secretAccessKey: ["LITESTREAM_SECRET_ACCESS_KEY"] },
    },
    "railhead:accessories": { db: { preset: "postgres", host: "db-1", port: 5432, password: ["POSTGRES_PASSWORD"], backup: { schedule: "daily" } } },
  },
});
const boots = (): Registration[] => rec.registrations.filter((r) => r.type.startsWith("command:") && r.name.startsWith("demo-") && r.name.endsWith("/boot"));
const one = (name: string): Registration => {
  const found = rec.registrations.filter((r) => r.name === name);
  assert.equal(found.length, 1, `one registration named ${name}`);
  return found[0];
};

before(async () => {
  rec = await setupMocks("production", fx);
  recordRetainOnDelete();
  const { dataPath } = await import("../../components/data-path");
  const { config, secrets } = loadConfig(fx.raw);
  dp = dataPath({ config, hosts: fakeHosts(config.hosts), secrets, appImage: config.image });
  const b = loadConfig(bx.raw);
  dataPath({ config: b.config, hosts: fakeHosts(b.config.hosts), secrets: b.secrets, appImage: b.config.image });
  await settle();
});

test("presets are data: postgres and redis fill image, port, volume, health and env", () => {
  const pg = accessorySpec("demo", "db", { preset: "postgres", host: "db-1", password: "PG", publicBind: false, env: { clear: {}, secret: [] }, volumes: [], options: {}, purgeOnDelete: false, appendonly: true });
  assert.equal(pg.image, "postgres:16.4");
  assert.deepEqual(pg.volumes, ["demo-db-data:/var/lib/postgresql/data"]);
  assert.match(pg.healthCmd ?? "", /pg_isready/);
  assert.deepEqual(pg.clearEnv, { POSTGRES_USER: "demo", POSTGRES_DB: "demo_production" });
  assert.deepEqual(pg.secretEnv, { POSTGRES_PASSWORD: "PG" });
  assert.equal(pg.urlEnv, "DATABASE_URL");
  assert.equal(pg.hostPort, undefined, "no port in config: nothing published");
  const redis = accessorySpec("demo", "cache", { preset: "redis", host: "db-1", port: "16379:6379", maxmemory: "64mb", publicBind: false, env: { clear: {}, secret: [] }, volumes: [], options: {}, purgeOnDelete: false, appendonly: true });
  assert.equal(redis.cmd, "redis-server --protected-mode no --appendonly yes --maxmemory 64mb");
  assert.equal(redis.hostPort, 16379);
  assert.equal(redis.containerPort, 6379);
  assert.match(redis.healthCmd ?? "", /redis-cli ping/);
  assert.deepEqual(redis.volumes, ["demo-cache-data:/data"]);
});

test("ports bind loopback and the private IP, never all interfaces unless publicBind", () => {
  const base = accessorySpec("demo", "db", { preset: "postgres", host: "db-1", port: 5432, password: "PG", publicBind: false, env: { clear: {}, secret: [] }, volumes: [], options: {}, purgeOnDelete: false, appendonly: true });
  assert.deepEqual(portBinds(base, "10.0.1.31"), ["127.0.0.1:5432:5432", "10.0.1.31:5432:5432"]);
  assert.deepEqual(portBinds(base, undefined), ["127.0.0.1:5432:5432"]);
  const pub = { ...base, publicBind: true };
  assert.deepEqual(portBinds(pub, "10.0.1.31"), ["0.0.0.0:5432:5432"]);
  const argv = bootArgv("demo", "db", pub, "10.0.1.31", "railhead", "id").map(String);
  assert.ok(argv.includes("--allow-public"), "a public bind is an explicit opt-in the tool sees");
});

test("production accessories publish on loopback and the private network only", () => {
  const db = one("demo-db/boot");
  const create = String(db.inputs.create);
  assert.match(create, /--port 127\.0\.0\.1:5432:5432 --port 10\.0\.1\.31:5432:5432/);
  assert.doesNotMatch(create, /0\.0\.0\.0|--allow-public/);
  assert.match(create, /--volume demo-db-data:\/var\/lib\/postgresql\/data/);
  assert.match(create, /--health-cmd/);
  const redis = String(one("demo-redis/boot").inputs.create);
  assert.match(redis, /--port 127\.0\.0\.1:6379:6379 --port 10\.0\.1\.31:6379:6379/);
  assert.match(redis, /--maxmemory 256mb --maxmemory-policy allkeys-lru/);
  for (const b of boots()) assert.doesNotMatch(String(b.inputs.create), /(^|\s)--port (\d+:)?\d+(\s|$)/, "no --port without a bind address");
});

test("secrets stay secret: the password travels only in stdin, which is secret", () => {
  const pw = canary("POSTGRES_PASSWORD");
  const db = one("demo-db/boot");
  assert.ok(isSecretWire(db.wire.stdin), "stdin is a secret");
  assert.match(String(db.inputs.stdin), new RegExp(`POSTGRES_PASSWORD=${pw}`));
  assert.match(String(db.inputs.stdin), /POSTGRES_USER=demo\nPOSTGRES_DB=demo_production/);
  for (const r of rec.registrations) {
    for (const s of plainStrings(r.wire)) assert.ok(!s.value.includes("CANARY-"), `${r.name}.${s.path} holds a secret in plain text`);
  }
  assert.ok(db.additionalSecretOutputs.includes("stdout") && db.additionalSecretOutputs.includes("stderr"), "command output is secret in state");
});

test("roles get DATABASE_URL / REDIS_URL as secret Outputs, through the private network across hosts", async () => {
  const web = dp.roleEnv.web;
  assert.deepEqual(Object.keys(web).sort(), ["DATABASE_URL", "REDIS_URL"]);
  assert.equal(await pulumi.isSecret(web.DATABASE_URL), true);
  assert.equal(await pulumi.isSecret(web.REDIS_URL), true);
  assert.equal(await unwrap(web.DATABASE_URL), `postgres://demo:${canary("POSTGRES_PASSWORD")}@10.0.1.31:5432/demo_production`);
  assert.equal(await unwrap(web.REDIS_URL), "redis://10.0.1.31:6379/0");
  assert.ok(dp.roleEnv.job.DATABASE_URL, "job role too (roles default: all)");
  assert.deepEqual(dp.roleVolumes.web, [], "no SQLite on production: no volumes");
});

test("data is protected on production and volumes survive a delete", async () => {
  for (const b of boots()) {
    assert.equal(b.protect, true, `${b.name} is protected on production`);
    assert.doesNotMatch(String(b.inputs.delete), /--purge/, `${b.name}: delete keeps the volumes`);
    assert.match(String(b.inputs.delete), /accessory remove --service demo --name/);
  }
  assert.equal(dp.protect, true);
  assert.ok(dp.ready.length >= 2);
});

test("config: every accessory problem is reported at once with key path and example", () => {
  const bad = loadStackFile("production", {
    override: {
      "railhead:accessories": {
        db: { preset: "postgres", host: "db-9" },
        cache: { preset: "redis", host: "db-1", password: ["NOPE"] },
        search: { host: "db-1", env: { secret: ["MISSING_KEY"] } },
        queue: { preset: "redis", host: "db-1", roles: ["nope"] },
      },
    },
  });
  let err: ConfigError | undefined;
  try {
    loadConfig(bad.raw);
  } catch (e) {
    err = e as ConfigError;
  }
  assert.ok(err instanceof ConfigError, "config is rejected");
  const paths = err.problems.map((p) => `${p.path}: ${p.message}`).join("\n");
  assert.match(paths, /railhead:accessories\.db\.host: unknown host "db-9"/);
  assert.match(paths, /railhead:accessories\.db\.password: required for the postgres preset/);
  assert.match(paths, /railhead:accessories\.cache\.password: only applies to preset: postgres/);
  assert.match(paths, /railhead:accessories\.search\.image: required without a preset/);
  for (const p of err.problems.filter((x) => x.path.startsWith("railhead:accessories"))) assert.ok(p.example, `${p.path} has an example`);
});

test("config: secrets named must exist; a role on another host needs the accessory on the private network", () => {
  const problems: Array<{ path: string; message: string }> = [];
  validateAccessories(
    { db: { preset: "postgres", host: "db-1", password: "PG", env: { clear: {}, secret: ["MISSING_KEY"] }, publicBind: false, volumes: [], options: {}, purgeOnDelete: false, appendonly: true } },
    ["web-1", "db-1"],
    new Set(["PG"]),
    problems,
    (p) => `railhead:${p.join(".")}`,
    { roles: [{ name: "web", hosts: ["web-1"], options: {}, env: { clear: {}, secret: [] }, stopTimeout: 10 }] },
  );
  assert.equal(problems.length, 2);
  assert.deepEqual(problems[0], { path: "railhead:accessories.db.env.secret.0", message: 'names secret "MISSING_KEY", which is not set', example: "pulumi config set --secret --path 'railhead:secrets.MISSING_KEY' <value>" });
  assert.equal(problems[1].path, "railhead:accessories.db.port");
  assert.match(problems[1].message, /roles web run on other hosts than "db-1"/);
});

test("config: a Postgres backup needs a Litestream replica, file or S3; roles named must exist", () => {
  const problems: Array<{ path: string; message: string }> = [];
  const roles = [{ name: "web", hosts: ["db-1"], options: {}, env: { clear: {}, secret: [] }, stopTimeout: 10 }];
  const db = { preset: "postgres" as const, host: "db-1", password: "PG", roles: ["web", "worker"], backup: { schedule: "daily" }, publicBind: false, env: { clear: {}, secret: [] }, volumes: [], options: {}, purgeOnDelete: false, appendonly: true };
  validateAccessories({ db }, ["db-1"], new Set(["PG"]), problems, (p) => `railhead:${p.join(".")}`, { roles, litestream: undefined });
  assert.deepEqual(
    problems.map((p) => p.path),
    ["railhead:accessories.db.backup", "railhead:accessories.db.roles.1"],
  );
  assert.match(problems[0].message, /no Litestream replica/);
  assert.match(problems[1].message, /unknown role "worker"/);
  const disabled = { enabled: false, replica: { type: "file" as const, path: "/var/lib/railhead-replicas" } } as unknown as LitestreamConfig;
  const off: typeof problems = [];
  validateAccessories({ db: { ...db, roles: ["web"] } }, ["db-1"], new Set(["PG"]), off, (p) => `railhead:${p.join(".")}`, { roles, litestream: disabled });
  assert.deepEqual(off.map((p) => p.path), ["railhead:accessories.db.backup"], "a disabled Litestream is no target");
  for (const replica of [{ type: "file", path: "/var/lib/railhead-replicas" }, { type: "s3", bucket: "b", region: "fsn1", endpoint: "https://fsn1.your-objectstorage.com" }]) {
    const ok: typeof problems = [];
    const litestream = { enabled: true, replica } as unknown as LitestreamConfig;
    validateAccessories({ db: { ...db, roles: ["web"] } }, ["db-1"], new Set(["PG"]), ok, (p) => `railhead:${p.join(".")}`, { roles, litestream });
    assert.deepEqual(ok, [], `backup works with a ${replica.type} replica`);
  }
});

test("backup to S3: the schedule runs pg-dump/drill --s3; the bucket config and credentials go on stdin only", () => {
  const backup = one("pgb-db/backup");
  const create = String(backup.inputs.create);
  assert.match(create, / drill schedule --service pgb --kind postgres --id db --cron '\d+ \d+ \* \* \*' -- --service pgb --name db --s3 --prefix pgb\/production --dump$/);
  assert.doesNotMatch(create, /--target/);
  assert.match(String(backup.inputs.delete), / drill unschedule --service pgb --kind postgres --id db$/);
  assert.ok(isSecretWire(backup.wire.stdin), "stdin is a secret");
  const stdin = String(backup.inputs.stdin);
  // The same document as `litestream replicate`: YAML (bucket, prefix, endpoint), separator, credentials env.
  const replicate = rec.registrations.find((r) => r.name === "pgb-litestream/replicate");
  assert.ok(replicate, "the replicator is registered");
  assert.equal(stdin, String(replicate.inputs.stdin), "the schedule gets the replicator's stdin document");
  assert.match(stdin, /type: s3\n {8}bucket: "pgb-backups"\n {8}path: "pgb\/production\/production\.sqlite3"/);
  assert.match(stdin, /endpoint: "https:\/\/fsn1\.your-objectstorage\.com"\n {8}force-path-style: true/);
  assert.match(stdin, new RegExp(`### railhead:env ###\nLITESTREAM_ACCESS_KEY_ID=${canary("LITESTREAM_ACCESS_KEY_ID")}\nLITESTREAM_SECRET_ACCESS_KEY=${canary("LITESTREAM_SECRET_ACCESS_KEY")}\n$`));
  for (const k of ["create", "delete"]) assert.doesNotMatch(JSON.stringify(backup.wire[k]), /CANARY-/, `no secret in ${k}`);
});

test("backup to a file replica: the schedule runs pg-dump/drill --target DIR, no stdin", async () => {
  const { backupDrillArgs } = await import("../../components/data-path");
  const ls = { replica: { type: "file", path: "/var/lib/railhead-replicas" } } as unknown as Parameters<typeof backupDrillArgs>[2];
  assert.deepEqual(backupDrillArgs("demo", "db", ls, "demo/production"), ["--service", "demo", "--name", "db", "--target", "/var/lib/railhead-replicas", "--prefix", "demo/production", "--dump"]);
});
