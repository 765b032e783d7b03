// The words a host will run, read straight from the pure builders (Kamal's command objects style),
// and the env file sent on stdin.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import { envFile, mergeEnv, migrateArgv, releaseArgv, roleRemoveArgv, waitAfterArgv, type ReleaseSpec } from "../../components/release";
import { proxyBootArgv, proxyServiceAddArgv } from "../../components/proxy";
import { planDeploy } from "../../components/program";
import { ConfigError, loadConfig, type ProxySettings, type RoleConfig } from "../../components/config";
import { loadStackFile } from "../support/stack-config";

const settings: ProxySettings = {
  healthcheck: { path: "/up", interval: 1, timeout: 5 },
  responseTimeout: 30,
  deployTimeout: 60,
  drainTimeout: 20,
  httpPort: 80,
  httpsPort: 443,
  bindIps: ["203.0.113.7"],
  image: "haproxy:2.6-bookworm",
  tlsImage: "caddy:2.10-alpine",
};
const web: RoleConfig = { name: "web", hosts: ["web-1"], options: { memory: "1g", cpus: "2" }, env: { clear: {}, secret: [] }, proxy: { domains: ["demo.example.com"], ssl: true, appPort: 3000 }, stopTimeout: 10 };
const job: RoleConfig = { name: "job", hosts: ["job-1"], cmd: "bin/jobs --queue default", options: {}, env: { clear: {}, secret: [] }, stopTimeout: 30 };
const spec = (role: RoleConfig): ReleaseSpec => ({ service: "demo", image: "ghcr.io/acme/demo:1.2.3", version: "1.2.3", retain: 5, readinessDelay: 7, role, web: role.proxy ? settings : undefined });

test("release argv of a web role: proxied cutover settings, sorted options", () => {
  assert.deepEqual(releaseArgv(spec(web)), [
    "release", "--service", "demo", "--role", "web", "--version", "1.2.3", "--image", "ghcr.io/acme/demo:1.2.3",
    "--web", "--app-port", "3000", "--health-path", "/up", "--health-interval", "1", "--health-timeout", "5", "--deploy-timeout", "60", "--drain-timeout", "20",
    "--stop-timeout", "10", "--retain", "5", "--option", "cpus=2", "--option", "memory=1g", "--readiness-delay", "7",
  ]);
});

test("release argv of a job role: no --web, the command as one argument", () => {
  assert.deepEqual(releaseArgv(spec(job)), [
    "release", "--service", "demo", "--role", "job", "--version", "1.2.3", "--image", "ghcr.io/acme/demo:1.2.3",
    "--stop-timeout", "30", "--retain", "5", "--cmd", "bin/jobs --queue default", "--readiness-delay", "7",
  ]);
});

test("release argv with volumes: one --volume per volume, before --readiness-delay", () => {
  assert.deepEqual(releaseArgv({ ...spec(job), volumes: ["demo-storage:/rails/storage", "uploads:/rails/public/uploads:ro"] }), [
    "release", "--service", "demo", "--role", "job", "--version", "1.2.3", "--image", "ghcr.io/acme/demo:1.2.3",
    "--stop-timeout", "30", "--retain", "5", "--cmd", "bin/jobs --queue default",
    "--volume", "demo-storage:/rails/storage", "--volume", "uploads:/rails/public/uploads:ro", "--readiness-delay", "7",
  ]);
  assert.deepEqual(releaseArgv({ ...spec(job), volumes: [] }), releaseArgv(spec(job)), "no volumes: no --volume");
});

test("migrate argv with the primary role's volumes", () => {
  assert.deepEqual(migrateArgv("demo", "1.2.3", "img:1", "bin/rails db:prepare", ["demo-storage:/rails/storage"]), [
    "migrate", "--service", "demo", "--version", "1.2.3", "--image", "img:1", "--volume", "demo-storage:/rails/storage", "--cmd", "bin/rails db:prepare",
  ]);
});

test("boot.wait: --wait-after for every group but the last, only when boot.wait > 0", () => {
  assert.deepEqual([0, 1, 2].map((i) => waitAfterArgv(i, 3, 5)), [["--wait-after", "5"], ["--wait-after", "5"], []]);
  assert.deepEqual(waitAfterArgv(0, 1, 5), [], "a single group never waits");
  assert.deepEqual([0, 1].map((i) => waitAfterArgv(i, 2, 0)), [[], []]);
  assert.deepEqual(waitAfterArgv(0, 2, undefined), []);
});

test("migrate and role remove argv", () => {
  assert.deepEqual(migrateArgv("demo", "1.2.3", "img:1", "bin/rails db:prepare"), ["migrate", "--service", "demo", "--version", "1.2.3", "--image", "img:1", "--cmd", "bin/rails db:prepare"]);
  assert.deepEqual(roleRemoveArgv("demo", "job"), ["role", "remove", "--service", "demo", "--role", "job"]);
});

test("proxy argv: boot with bind IPs, service with domains and ssl", () => {
  assert.deepEqual(proxyBootArgv(settings), ["proxy", "boot", "--image", "haproxy:2.6-bookworm", "--http-port", "80", "--https-port", "443", "--bind-ip", "203.0.113.7", "--tls-image", "caddy:2.10-alpine"]);
  assert.deepEqual(proxyServiceAddArgv({ name: "demo", role: "web", primary: true, appPort: 3000, domains: ["a.example.com", "b.example.com"], ssl: true }, settings), [
    "proxy", "service", "add", "demo", "--app-port", "3000", "--domain", "a.example.com", "--domain", "b.example.com", "--ssl", "--health-path", "/up", "--response-timeout", "30",
  ]);
});

test("env: a role's values win, a role secret replaces a clear value", () => {
  const merged = mergeEnv({ clear: { A: "1", B: "2" }, secret: ["S"] }, { clear: { B: "3" }, secret: ["A"] });
  assert.deepEqual(merged, { clear: { B: "3" }, secret: ["S", "A"] });
});

test("env file: sorted KEY=VALUE lines, always secret", async () => {
  const out = envFile({ clear: { Z: "last", A: "first=with=equals" }, secret: ["S"] }, { S: pulumi.secret("s3cret") });
  assert.equal(await pulumi.isSecret(out), true);
  const text = await new Promise<string>((resolve) => out.apply(resolve));
  assert.equal(text, "A=first=with=equals\nS=s3cret\nZ=last\n");
  const noSecrets = envFile({ clear: { A: "1" }, secret: [] }, {});
  assert.equal(await pulumi.isSecret(noSecrets), true, "secret even when it holds no secret, so state never shows the file");
});

test("env file: derived values (an accessory's DATABASE_URL) give way to the config's own", async () => {
  const out = envFile({ clear: { DATABASE_URL: "postgres://mine" }, secret: [] }, {}, { DATABASE_URL: pulumi.secret("postgres://derived"), REDIS_URL: pulumi.secret("redis://r") });
  assert.equal(await pulumi.isSecret(out), true);
  assert.equal(await new Promise<string>((resolve) => out.apply(resolve)), "DATABASE_URL=postgres://mine\nREDIS_URL=redis://r\n");
});

test("env file: a line break is refused, naming the key only", () => {
  assert.throws(() => envFile({ clear: { A: "x\ny" }, secret: [] }, {}), /env value A contains a line break/);
  assert.throws(() => envFile({ clear: {}, secret: ["MISSING"] }, {}), /MISSING/);
});

test("planning refuses role/host names that would give two releases one resource name", () => {
  const fx = loadStackFile("local", {
    override: {
      "railhead:hosts": { "a-1": { local: {} }, "1": { local: {} } },
      "railhead:servers": { web: ["a-1"], "web-a": { hosts: ["1"], proxy: { hosts: ["other.example.com"] } } },
      "railhead:accessories": {},
      "railhead:litestream": undefined,
    },
  });
  const { config } = loadConfig(fx.raw);
  assert.throws(() => planDeploy(config), (e: unknown) => e instanceof ConfigError && /share the resource name "web-a-1\/release"/.test(e.message));
});

test("argv builders pass an Output image and version (a build's digest) through to the command", async () => {
  const image = pulumi.output(`ghcr.io/acme/demo@sha256:${"ab".repeat(32)}`);
  const version = pulumi.output("abababababab");
  const words = (argv: pulumi.Input<string>[]) => new Promise<string[]>((resolve) => pulumi.all(argv).apply(resolve));
  const rel = await words(releaseArgv({ ...spec(job), image, version }));
  assert.deepEqual(rel.slice(0, 9), ["release", "--service", "demo", "--role", "job", "--version", "abababababab", "--image", `ghcr.io/acme/demo@sha256:${"ab".repeat(32)}`]);
  assert.deepEqual(await words(migrateArgv("demo", version, image, "bin/migrate")), ["migrate", "--service", "demo", "--version", "abababababab", "--image", `ghcr.io/acme/demo@sha256:${"ab".repeat(32)}`, "--cmd", "bin/migrate"]);
});

test("what the image plan refuses (builder.secrets) is a config problem, before any resource", () => {
  const fx = loadStackFile("local", { override: { "railhead:builder": { context: "demo", secrets: ["RAILS_MASTER_KEY"] } } });
  // The config refuses it; planDeploy keeps its own check for a config built another way.
  assert.throws(() => loadConfig(fx.raw), (e: unknown) => e instanceof ConfigError && /railhead:builder\.secrets[\s\S]*not supported/.test(e.message));
  const { config } = loadConfig(loadStackFile("local").raw);
  const withSecrets = { ...config, builder: { ...(config.builder as NonNullable<typeof config.builder>), secrets: ["RAILS_MASTER_KEY"] } };
  assert.throws(() => planDeploy(withSecrets), (e: unknown) => e instanceof ConfigError && /railhead:builder\.secrets[\s\S]*not supported/.test(e.message));
});

test("planning lays out one backend per proxied role per host and marks hosts DNS points at", () => {
  const { config } = loadConfig(loadStackFile("production").raw);
  const plan = planDeploy(config);
  assert.equal(plan.hcloudPrefix, "demo-production");
  assert.deepEqual([...plan.proxyServices.keys()].sort(), ["web-1", "web-2"]);
  assert.deepEqual(plan.proxyServices.get("web-1"), [{ name: "demo", role: "web", primary: true, appPort: 80, domains: ["demo.example.com"], ssl: true }]);
  assert.deepEqual([...plan.dnsHosts].sort(), ["web-1", "web-2"]);
});

test("boolean options render as a flag (docker would read `--init true` as the image), false ones not at all", () => {
  const { config } = loadConfig(
    loadStackFile("production", { override: { "railhead:servers": { web: { hosts: ["web-1", "web-2"], options: { init: true, tty: false, memory: "1g" } }, job: { hosts: ["job-1"], cmd: "bin/jobs" } } } }).raw,
  );
  const web = config.roles.find((r) => r.name === "web") as RoleConfig;
  const argv = releaseArgv(spec(web)).map(String);
  const opts = argv.flatMap((w, i) => (w === "--option" ? [argv[i + 1]] : []));
  assert.deepEqual(opts, ["init", "memory=1g"]);
});
