// Litestream under the mock runtime: the renderer, the replica commands, buckets and IAM, secrets,
// protection, and the config checks of components/litestream-config.ts.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import { canary, loadStackFile } from "../support/stack-config";
import { isSecretWire, plainStrings, setupMocks, settle, type Recorder, type Registration } from "../support/mocks";
import { fakeHosts, recordRetainOnDelete, retainOnDelete } from "../data/unit-support";
import { ConfigError, loadConfig, type ConfigProblem, type DeployConfig } from "../../components/config";
import { drillCron, renderCredentialsEnv, renderLitestreamStdin, renderLitestreamYml, replicaPath, STDIN_ENV_SEPARATOR } from "../../components/litestream-render";
import { prefixPolicy } from "../../components/buckets";
import type { DataPath } from "../../components/data-path";

const base = { storage: "/rails/storage", databases: ["production.sqlite3", "production_queue.sqlite3"], prefix: "demo/production", syncInterval: "1s", snapshotInterval: "1h", retention: "72h" };

test("renderer: S3 replica, absolute paths, one replica path per database, no credentials in YAML", () => {
  const yml = renderLitestreamYml({ ...base, replica: { type: "s3", bucket: "acme-backups", region: "fsn1", endpoint: "https://fsn1.your-objectstorage.com" }, validationInterval: "12h" });
  assert.equal(
    yml,
    [
      "# litestream 0.3.13 config rendered by Railhead (components/litestream-render.ts); do not edit on the host.",
      "# Credentials come from LITESTREAM_ACCESS_KEY_ID / LITESTREAM_SECRET_ACCESS_KEY in the environment.",
      "dbs:",
      '  - path: "/rails/storage/production.sqlite3"',
      "    replicas:",
      "      - name: s3",
      "        type: s3",
      '        bucket: "acme-backups"',
      '        path: "demo/production/production.sqlite3"',
      '        region: "fsn1"',
      '        endpoint: "https://fsn1.your-objectstorage.com"',
      "        force-path-style: true",
      "        sync-interval: 1s",
      "        snapshot-interval: 1h",
      "        retention: 72h",
      "        validation-interval: 12h",
      '  - path: "/rails/storage/production_queue.sqlite3"',
      "    replicas:",
      "      - name: s3",
      "        type: s3",
      '        bucket: "acme-backups"',
      '        path: "demo/production/production_queue.sqlite3"',
      '        region: "fsn1"',
      '        endpoint: "https://fsn1.your-objectstorage.com"',
      "        force-path-style: true",
      "        sync-interval: 1s",
      "        snapshot-interval: 1h",
      "        retention: 72h",
      "        validation-interval: 12h",
      "",
    ].join("\n"),
  );
  assert.doesNotMatch(yml, /^\s*(access-key-id|secret-access-key):/m, "no credential keys in the YAML");
});

test("renderer: AWS has no endpoint and no path style; file replicas are absolute under dir/prefix", () => {
  const aws = renderLitestreamYml({ ...base, replica: { type: "s3", bucket: "b", region: "eu-central-1" } });
  assert.doesNotMatch(aws, /endpoint/);
  assert.match(aws, /force-path-style: false/);
  assert.doesNotMatch(aws, /validation-interval/, "validation is optional");
  const file = renderLitestreamYml({ ...base, replica: { type: "file", dir: "/var/lib/railhead-replicas/" }, monitorInterval: "100ms" });
  assert.match(file, /type: file\n {8}path: "\/var\/lib\/railhead-replicas\/demo\/production\/production\.sqlite3"/);
  assert.match(file, /monitor-interval: 100ms/);
  assert.equal(replicaPath("/demo/staging/", "a.sqlite3"), "demo/staging/a.sqlite3");
});

test("renderer refuses what would lose data: duplicate databases, relative paths", () => {
  assert.throws(() => renderLitestreamYml({ ...base, databases: ["a.sqlite3", "a.sqlite3"], replica: { type: "file", dir: "/r" } }), /listed twice/);
  assert.throws(() => renderLitestreamYml({ ...base, storage: "storage", replica: { type: "file", dir: "/r" } }), /absolute/);
  assert.throws(() => renderLitestreamYml({ ...base, replica: { type: "file", dir: "replicas" } }), /absolute/);
});

test("credentials travel as env after the separator; the drill cron spreads hosts", () => {
  const env = renderCredentialsEnv({ accessKeyId: "AK", secretAccessKey: "SK" });
  assert.equal(env, "LITESTREAM_ACCESS_KEY_ID=AK\nLITESTREAM_SECRET_ACCESS_KEY=SK\n");
  assert.equal(renderCredentialsEnv(undefined), "");
  assert.throws(() => renderCredentialsEnv({ accessKeyId: "A\nB", secretAccessKey: "S" }), /single-line/);
  assert.equal(renderLitestreamStdin("dbs: []", env), `dbs: []\n${STDIN_ENV_SEPARATOR}\n${env}`);
  assert.match(drillCron("daily", "demo/production"), /^\d{1,2} [2-5] \* \* \*$/);
  assert.match(drillCron("hourly", "x"), /^\d{1,2} \* \* \* \*$/);
  assert.equal(drillCron("17 3 * * 1", "x"), "17 3 * * 1");
});

test("IAM policy reaches only the stack's prefix", () => {
  const p = prefixPolicy("acme-backups", "demo/production");
  assert.deepEqual(p.Statement[0], {
    Sid: "ListOwnPrefix",
    Effect: "Allow",
    Action: "s3:ListBucket",
    Resource: "arn:aws:s3:::acme-backups",
    Condition: { StringLike: { "s3:prefix": ["demo/production/*", "demo/production"] } },
  });
  assert.equal(p.Statement[1].Resource, "arn:aws:s3:::acme-backups/demo/production/*");
  assert.ok(!JSON.stringify(p).includes('"*"') && !JSON.stringify(p).includes("s3:*"), "no wildcard action or resource");
});

// ---- components under the mock runtime --------------------------------------------------------

let rec: Recorder;
const dps: Record<string, DataPath> = {};
const cfgs: Record<string, DeployConfig> = {};
const reg = (name: string): Registration => {
  const f = rec.registrations.filter((r) => r.name === name);
  assert.equal(f.length, 1, `one registration named ${name} (have: ${rec.registrations.map((r) => r.name).join(", ")})`);
  return f[0];
};

before(async () => {
  const staging = loadStackFile("staging");
  rec = await setupMocks("staging", staging);
  recordRetainOnDelete();
  const { dataPath } = await import("../../components/data-path");
  const build = (key: string, raw: ReturnType<typeof loadStackFile>["raw"]) => {
    const { config, secrets } = loadConfig(raw);
    cfgs[key] = config;
    dps[key] = dataPath({ config, hosts: fakeHosts(config.hosts), secrets, appImage: "ghcr.io/acme/demo:1.0.0" });
  };
  build("staging", staging.raw);
  // AWS, a bucket Railhead creates, IAM user; as the production stack.
  const awsProd = loadStackFile("staging", {
    override: {
      "railhead:service": "awsapp",
      "railhead:litestream": { databases: ["production.sqlite3"], replica: { type: "s3", region: "eu-central-1" } },
    },
  });
  build("aws", { ...awsProd.raw, stack: "production" });
  const local = loadStackFile("local", { override: { "railhead:service": "localapp" } });
  build("local", local.raw);
  await settle();
});

test("staging: restore, then replicate, then the drill schedule; releases wait for the restore", () => {
  const restore = reg("demo-staging-litestream/restore");
  const replicate = reg("demo-staging-litestream/replicate");
  const drill = reg("demo-staging-litestream/drill");
  assert.match(String(restore.inputs.create), /litestream restore --service demo-staging --volume demo-staging-storage --uid 1000 --image litestream\/litestream:0\.3\.13 --host-identity id-staging-1$/);
  assert.match(String(replicate.inputs.create), /litestream replicate --service demo-staging/);
  assert.match(String(replicate.inputs.delete), /litestream remove --service demo-staging$/);
  assert.ok(replicate.dependencies.includes(restore.urn), "replicate waits for restore");
  assert.ok(drill.dependencies.includes(replicate.urn), "drill waits for replicate");
  assert.match(String(drill.inputs.create), /drill schedule --service demo-staging --kind sqlite --cron '\d+ \d \* \* \*' -- --service demo-staging --volume demo-staging-storage .* --sqlite-image ghcr\.io\/acme\/demo:1\.0\.0 --tables 3 --tolerance 1$/);
  const dp = dps.staging;
  assert.ok(dp.litestream && dp.ready.includes(dp.litestream.restore), "ready holds the restore");
  assert.deepEqual(dp.roleVolumes, { web: ["demo-staging-storage:/rails/storage"], job: ["demo-staging-storage:/rails/storage"] });
});

test("staging: the config and credentials travel in secret stdin; the YAML holds no secret", () => {
  const restore = reg("demo-staging-litestream/restore");
  assert.ok(isSecretWire(restore.wire.stdin));
  const [yml, env] = String(restore.inputs.stdin).split(`${STDIN_ENV_SEPARATOR}\n`);
  assert.match(yml, /bucket: "acme-demo-litestream"\n {8}path: "demo-staging\/staging\/production\.sqlite3"\n {8}region: "fsn1"\n {8}endpoint: "https:\/\/fsn1\.your-objectstorage\.com"\n {8}force-path-style: true/);
  assert.doesNotMatch(yml, /CANARY/);
  assert.equal(env, `LITESTREAM_ACCESS_KEY_ID=${canary("LITESTREAM_ACCESS_KEY_ID")}\nLITESTREAM_SECRET_ACCESS_KEY=${canary("LITESTREAM_SECRET_ACCESS_KEY")}\n`);
  for (const r of rec.registrations) {
    for (const s of plainStrings(r.wire)) assert.ok(!s.value.includes("CANARY-"), `${r.name}.${s.path} holds a secret in plain text`);
  }
  // An existing bucket with given keys: no bucket, no IAM, no provider.
  assert.equal(rec.registrations.filter((r) => r.name.startsWith("demo-staging-replicas/") && r.custom).length, 0);
});

test("AWS: bucket with versioning, encryption, public access block, lifecycle under the prefix; retained and protected", () => {
  const bucket = reg("awsapp-replicas/bucket");
  assert.equal(bucket.type, "aws:s3/bucket:Bucket");
  assert.equal(bucket.inputs.bucket, "awsapp-production-litestream");
  assert.equal(bucket.inputs.forceDestroy, false);
  assert.equal(bucket.protect, true, "production protects the bucket");
  assert.equal(retainOnDelete.get("awsapp-replicas/bucket"), true);
  assert.deepEqual(reg("awsapp-replicas/versioning").inputs.versioningConfiguration, { status: "Enabled" });
  assert.deepEqual(reg("awsapp-replicas/encryption").inputs.rules, [{ applyServerSideEncryptionByDefault: { sseAlgorithm: "AES256" }, bucketKeyEnabled: true }]);
  const pab = reg("awsapp-replicas/public-access-block").inputs;
  for (const k of ["blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"]) assert.equal(pab[k], true, k);
  const rules = reg("awsapp-replicas/lifecycle").inputs.rules as Array<Record<string, unknown>>;
  assert.deepEqual(rules, [
    { id: "railhead-backups", status: "Enabled", filter: { prefix: "awsapp/production/" }, noncurrentVersionExpiration: { noncurrentDays: 30 }, abortIncompleteMultipartUpload: { daysAfterInitiation: 1 } },
  ]);
  for (const n of ["versioning", "encryption", "public-access-block", "lifecycle"]) {
    assert.equal(reg(`awsapp-replicas/${n}`).protect, true, `${n} protected`);
    assert.equal(retainOnDelete.get(`awsapp-replicas/${n}`), true, `${n} retained`);
  }
});

test("AWS: an IAM user whose policy reaches only the stack's prefix; its key is secret", async () => {
  const policy = JSON.parse(String(reg("awsapp-replicas/policy").inputs.policy)) as ReturnType<typeof prefixPolicy>;
  assert.deepEqual(policy, prefixPolicy("awsapp-production-litestream", "awsapp/production"));
  const key = reg("awsapp-replicas/key");
  assert.ok(key.additionalSecretOutputs.includes("secret"));
  const bucket = dps.aws.bucket;
  assert.ok(bucket);
  assert.equal(await pulumi.isSecret(bucket.secretAccessKey), true);
  assert.equal(await pulumi.isSecret(bucket.accessKeyId), true);
  const restore = reg("awsapp-litestream/restore");
  assert.ok(isSecretWire(restore.wire.stdin));
  assert.ok(restore.dependencies.includes(reg("awsapp-replicas/key").urn), "the restore waits for the key");
  assert.doesNotMatch(String(restore.inputs.stdin).split(STDIN_ENV_SEPARATOR)[0], /endpoint/);
});

test("local: a file replica on the host, nothing in the cloud, not protected", () => {
  const restore = reg("localapp-litestream/restore");
  assert.match(String(restore.inputs.stdin), /type: file\n {8}path: "\/var\/lib\/railhead-replicas\/localapp\/local\/production\.sqlite3"/);
  assert.equal(rec.registrations.filter((r) => r.name.startsWith("localapp-replicas")).length, 0);
  assert.equal(reg("localapp-db/boot").protect, false);
  assert.doesNotMatch(String(reg("localapp-db/boot").inputs.create), /--port/, "no port in config: nothing published");
  assert.equal(dps.local.protect, false);
});

// ---- validation -------------------------------------------------------------------------------

function problemsOf(override: Record<string, unknown>, stack = "staging"): ConfigProblem[] {
  try {
    loadConfig(loadStackFile(stack, { override }).raw);
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  return [];
}

test("config: SQLite roles must share one host; two replicators for one path cannot be configured", () => {
  const p = problemsOf({
    "railhead:hosts": { "staging-1": { hcloud: { serverType: "cx23", location: "fsn1" } }, "staging-2": { hcloud: { serverType: "cx23", location: "fsn1" } } },
    "railhead:servers": { web: ["staging-1"], job: { hosts: ["staging-2"], cmd: "bin/jobs" } },
  });
  const msg = p.find((x) => x.path === "railhead:litestream.roles");
  assert.ok(msg, "reported at litestream.roles");
  assert.match(msg.message, /run on 2 hosts \(staging-1, staging-2\)/);
  assert.ok(msg.example);
  const dup = problemsOf({ "railhead:litestream": { databases: ["a.sqlite3", "a.sqlite3"] } });
  assert.match(dup.map((x) => `${x.path}: ${x.message}`).join("\n"), /railhead:litestream\.databases: "a\.sqlite3" is listed twice/);
});

test("config: every litestream problem at once, with key path and example", () => {
  const p = problemsOf({
    "railhead:litestream": {
      roles: ["worker"],
      syncInterval: "1 second",
      drill: { schedule: "often" },
      replica: { type: "s3", createBucket: false, endpoint: "http://203.0.113.9:9000", accessKeyId: ["LITESTREAM_ACCESS_KEY_ID"] },
    },
  });
  const text = p.map((x) => `${x.path}: ${x.message}`).join("\n");
  assert.match(text, /railhead:litestream\.syncInterval: "1 second" is not a Go duration/);
  // The section failed its schema, so the cross-checks ran on the default: fix the schema error first.
  const p2 = problemsOf({
    "railhead:litestream": { roles: ["worker"], drill: { schedule: "often" }, replica: { type: "s3", createBucket: false, endpoint: "http://203.0.113.9:9000", accessKeyId: ["LITESTREAM_ACCESS_KEY_ID"] } },
  });
  const t2 = p2.map((x) => `${x.path}: ${x.message}`).join("\n");
  assert.match(t2, /railhead:litestream\.roles\[0\]: unknown role "worker"/);
  assert.match(t2, /railhead:litestream\.drill\.schedule: "often" is neither/);
  assert.match(t2, /railhead:litestream\.replica\.endpoint: must be https:\/\//);
  assert.match(t2, /railhead:litestream\.replica\.bucket: required when createBucket is false/);
  assert.match(t2, /railhead:litestream\.replica\.secretAccessKey: accessKeyId and secretAccessKey go together/);
  for (const x of p2.filter((y) => y.path.startsWith("railhead:litestream"))) assert.ok(x.example, `${x.path} has an example`);
});
