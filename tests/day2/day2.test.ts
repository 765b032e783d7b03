// Every day-2 command against a real rig host (h3): the bundled tool is uploaded, a release is set
// up with the tool itself (proxy, web v1 -> v2, a job role, an accessory), then
// `bin/railhead.ts` runs with --outputs/--config files as a person would after `pulumi up`.
// Test equipment: nothing here runs Pulumi; rollback's `pulumi` calls go to a stand-in CLI, and the
// release `pulumi up` would run is then run with the tool to prove it reuses the retained container.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { loadRig, rigImage, httpGet, waitFor, type Rig, type RunResult } from "../rig/rig";
import { bootProxy, describeResult, FAST, prepareHost, resetHost, webRelease, type ToolHost } from "../host-tool/helpers";

const ROOT = join(__dirname, "..", "..");
const CLI = join(ROOT, "bin", "railhead.ts");
const HOST = "h3";
const SERVICE = "d2";
const DOMAIN = "d2.day2.test";
const ENV = "GREETING=hello from env\nSECRET_TOKEN=day2-canary-5e1f\n";

let rig: Rig;
let h: ToolHost;
let dir: string;
let files: { config: string; outputs: string };

function writeStack(outputs: unknown, hostAddress?: string): { config: string; outputs: string } {
  const host = h.host;
  const config = {
    config: {
      "railhead:service": SERVICE,
      "railhead:image": rigImage("app:v2"),
      "railhead:hosts": { [HOST]: { ssh: { address: hostAddress ?? host.publicIp, user: rig.sshUser, port: host.sshPort, hostKey: host.hostKey } } },
      "railhead:servers": { web: [HOST], job: { hosts: [HOST], cmd: "python3 /rails/app.py" } },
      "railhead:accessories": { cache: { preset: "redis", image: rigImage("redis:7"), host: HOST } },
    },
  };
  const d = mkdtempSync(join(dir, "stack-"));
  writeFileSync(join(d, "Pulumi.day2.yaml"), stringify(config));
  writeFileSync(join(d, "outputs.json"), JSON.stringify(outputs));
  return { config: join(d, "Pulumi.day2.yaml"), outputs: join(d, "outputs.json") };
}

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

function railhead(args: string[], opts: { env?: NodeJS.ProcessEnv; f?: { config: string; outputs: string } } = {}): CliResult {
  const f = opts.f ?? files;
    // Options first: everything after `--` belongs to exec's command.
  const r = spawnSync(process.execPath, ["--import", "tsx", CLI, "--stack", "day2", "--config", f.config, "--outputs", f.outputs, "--identity", rig.sshKey, ...args], {
    cwd: ROOT,
    encoding: "utf8",
    env: { ...process.env, ...opts.env },
    timeout: 120_000,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
const show = (r: CliResult) => `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

async function must(p: Promise<RunResult>, what: string): Promise<void> {
  const r = await p;
  assert.equal(r.code, 0, `${what}: ${describeResult(r)}`);
}

before(async () => {
  rig = loadRig();
  dir = mkdtempSync(join(tmpdir(), "railhead-day2-"));
  h = await prepareHost(HOST);
  // Other suites may use h3 and its proxy at the same time: only our service is reset, and it is
  // routed by its own domain rather than as the catch-all.
  await resetHost(h, [SERVICE]);
  await bootProxy(h);
  await must(h.tool(["proxy", "service", "add", SERVICE, "--app-port", "3000", "--domain", DOMAIN]), "proxy service add");
  await must(h.tool(webRelease(SERVICE, "v1", rigImage("app:v1")), ENV, 120_000), "web v1");
  await must(h.tool(webRelease(SERVICE, "v2", rigImage("app:v2")), ENV, 120_000), "web v2");
  await must(h.tool(["release", "--service", SERVICE, "--role", "job", "--version", "v1", "--image", rigImage("app:v1"), "--readiness-delay", "1", ...FAST], ENV, 120_000), "job v1");
  await must(
    h.tool(["accessory", "boot", "--service", SERVICE, "--name", "cache", "--image", rigImage("redis:7"), "--health-cmd", "redis-cli ping", "--health-timeout", "60"], "", 120_000),
    "accessory cache",
  );
  files = writeStack({ service: SERVICE, stack: "day2", image: rigImage("app:v2"), version: "v2", hosts: { [HOST]: { kind: "ssh", address: h.host.publicIp } } });
});

after(async () => {
  if (h) await resetHost(h, [SERVICE]).catch(() => undefined);
});

test("details: releases per role with health and slot, the retained release, the accessory, the proxy", () => {
  const r = railhead(["details"]);
  assert.equal(r.code, 0, show(r));
  assert.match(r.stdout, new RegExp(`== ${HOST} \\(ssh, ${h.host.publicIp.replace(/\./g, "\\.")}\\) roles: web, job ==`));
  assert.match(r.stdout, /release +web +v2 +running +live\(slot [ab]\) \/up=200/);
  assert.match(r.stdout, /release +web +v1 +exited +retained/);
  assert.match(r.stdout, /release +job +v1 +running/);
  assert.match(r.stdout, /accessory cache +running +(healthy|starting)/);
  assert.match(r.stdout, /proxy +d2 +live=[ab] +maintenance=off role=web domains=d2\.day2\.test/);
  assert.match(r.stderr, /\[railhead\] h3 |^$/m);
});

test("logs: a role's running release, --grep, --lines, an accessory; unknown names are explained", () => {
  const web = railhead(["logs", "web", "--grep", "listening"]);
  assert.equal(web.code, 0, show(web));
  assert.match(web.stdout, /listening on 0\.0\.0\.0:3000 \(version v2/);
  assert.doesNotMatch(web.stdout, /version v1/, "the running release, not the retained one");
  assert.match(web.stderr, /\[railhead\] h3 logs: d2-web-v2 \(running, version v2\)/);
  const old = railhead(["logs", "web", "--version", "v1", "--grep", "listening"]);
  assert.match(old.stdout, /version v1/);
  const none = railhead(["logs", "web", "--grep", "no-such-line-anywhere"]);
  assert.equal(none.code, 0, "no match is not an error");
  assert.equal(none.stdout, "");
  const cache = railhead(["logs", "cache", "--lines", "50"]);
  assert.equal(cache.code, 0, show(cache));
  assert.match(cache.stdout, /Ready to accept connections/i);
  const bad = railhead(["logs", "worker"]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /"worker" is neither a role nor an accessory of stack day2\. Next: roles: web, job; accessories: cache/);
});

test("logs --follow streams until stopped", async () => {
  const child = spawn(process.execPath, ["--import", "tsx", CLI, "logs", "job", "--follow", "--lines", "1", "--stack", "day2", "--config", files.config, "--outputs", files.outputs, "--identity", rig.sshKey], { cwd: ROOT });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  try {
    await waitFor("a followed log line", async () => out.length > 0, 30_000);
    assert.equal(child.exitCode, null, "still following");
  } finally {
    child.kill("SIGTERM");
  }
});

test("exec: a one-off container with the release's image and env; --reuse enters the running one; exit codes pass through", async () => {
  const env = railhead(["exec", "web", "--", "sh", "-c", 'echo "$GREETING|$RAILHEAD_VERSION|$RAILHEAD_ROLE"; echo "$APP_VERSION"']);
  assert.equal(env.code, 0, show(env));
  assert.match(env.stdout, /^hello from env\|v2\|web\nv2\n$/);
  assert.match(env.stderr, /exec: running 'sh -c .*' in one-off d2-web-exec-[0-9a-f]{8} \(image .*app:v2, version v2\)/);
  assert.doesNotMatch(env.stderr + env.stdout, /day2-canary-5e1f/, "the secret is in the container's env, never printed by the tool");
  const left = await h.sh("docker ps -aq --filter label=railhead.exec=web | wc -l");
  assert.equal(left.stdout.trim(), "0", "the one-off container is removed");

  const running = (await h.sh("docker inspect --format '{{.Config.Hostname}}' d2-web-v2")).stdout.trim();
  const reuse = railhead(["exec", "web", "--reuse", "--", "hostname"]);
  assert.equal(reuse.code, 0, show(reuse));
  assert.equal(reuse.stdout.trim(), running, "ran inside the running container");

  const failing = railhead(["exec", "job", "--", "sh", "-c", "exit 7"]);
  assert.equal(failing.code, 7, show(failing));
  const usage = railhead(["exec", "web"]);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /exec needs a command after --/);
});

test("console: bin/rails console in the running web container, stdin passed through", async () => {
  // The rig's test app has no bin/rails; give the running container one that answers like a console.
  await must(
    h.sh(`docker exec -u 0 d2-web-v2 sh -c 'printf "%s\\n" "#!/bin/sh" "echo console of \\$RAILHEAD_VERSION" "cat" > /usr/local/bin/rails-console-stub && chmod 0755 /usr/local/bin/rails-console-stub && mkdir -p /rails/bin && ln -sf /usr/local/bin/rails-console-stub /rails/bin/rails'`),
    "stub console",
  );
  const r = railhead(["console"]);
  assert.equal(r.code, 0, show(r));
  assert.match(r.stdout, /console of v2/);
  assert.match(r.stderr, /exec: running 'bin\/rails console' in d2-web-v2/);
});

test("maintenance on serves 503 with the message, details shows it, off serves the app again", async () => {
  const on = railhead(["maintenance", "on", "--message", "Back at 10:00 UTC"]);
  assert.equal(on.code, 0, show(on));
  const down = await waitFor("503", async () => {
    const res = await httpGet(`${h.baseUrl}/`, { host: DOMAIN });
    return res.status === 503 ? res : undefined;
  });
  assert.match(down.body, /Back at 10:00 UTC/);
  assert.match(railhead(["details"]).stdout, /proxy +d2 +live=[ab] +maintenance=on/);
  const off = railhead(["maintenance", "off"]);
  assert.equal(off.code, 0, show(off));
  await waitFor("200", async () => (await httpGet(`${h.baseUrl}/up`, { host: DOMAIN })).status === 200);
  assert.equal(railhead(["maintenance", "sideways"]).code, 2);
});

test("rollback: lists retained versions, refuses an incomplete one, sets the config and runs pulumi up; the release then reuses the retained container", async () => {
  const list = railhead(["rollback"]);
  assert.equal(list.code, 0, show(list));
  assert.match(list.stdout, /v2 +running +missing job@h3/);
  assert.match(list.stdout, /v1 +running +on every host/, "v1: web retained, job running");

  const missing = railhead(["rollback", "v9"]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /version v9 is not retained on any host\. Next: pick one of: /);
  const partial = railhead(["rollback", "v2"]);
  assert.match(partial.stderr, /version v2 is not retained everywhere \(missing job@h3\)/);

  // A stand-in `pulumi` records what rollback asks of the CLI.
  const fake = join(dir, "pulumi");
  writeFileSync(fake, `#!/bin/sh\necho "$*" >> ${join(dir, "pulumi.log")}\n`);
  chmodSync(fake, 0o755);
  const r = railhead(["rollback", "v1", "--yes"], { env: { PULUMI: fake } });
  assert.equal(r.code, 0, show(r));
  assert.deepEqual(readFileSync(join(dir, "pulumi.log"), "utf8").trim().split("\n"), [
    "config set railhead:version v1 --stack day2",
    `config set railhead:image ${rigImage("app:v1")} --stack day2`,
    "up --yes --stack day2",
  ]);

  // What that `pulumi up` runs on the host: the web release of v1 with the same image and env.
  const rel = await h.tool(webRelease(SERVICE, "v1", rigImage("app:v1")), ENV, 120_000);
  assert.equal(rel.code, 0, describeResult(rel));
  assert.match(rel.stdout, /started the retained container d2-web-v1 \(no pull\)/);
  const version = await httpGet(`${h.baseUrl}/version`, { host: DOMAIN });
  assert.match(version.body, /v1/);
});

test("drill: none scheduled is explained; a scheduled drill runs now and its failure names the host and what to try", async () => {
  const none = railhead(["drill"]);
  assert.equal(none.code, 1, show(none));
  assert.match(none.stderr, /no backup drill is scheduled on any host\. Next: enable railhead:litestream\.drill/);

  const hasCron = (await h.sh("command -v crontab")).code === 0;
  if (!hasCron) return; // the rig host has no cron: drill-now's own error path is covered above
  // A drill that must fail (no such volume): scheduled with the tool as a deploy would.
  await must(h.tool(["drill", "schedule", "--service", SERVICE, "--kind", "sqlite", "--cron", "0 3 * * *", "--", "--service", SERVICE, "--volume", "d2-missing", "--image", rigImage("litestream:0.3.13"), "--sqlite-image", rigImage("app:v1")]), "drill schedule");
  try {
    const r = railhead(["drill"]);
    assert.equal(r.code, 1, show(r));
    assert.match(r.stderr, /\[railhead\] h3 ERROR drill: sqlite failed after [\d.]+s\. Next: read the report above/);
  } finally {
    await h.tool(["drill", "unschedule", "--service", SERVICE, "--kind", "sqlite"]);
  }
});

test("an unreachable host is named with what to check", () => {
  const f = writeStack({ service: SERVICE, hosts: { [HOST]: { kind: "ssh", address: "10.77.0.250" } } }, "10.77.0.250");
  const r = railhead(["details"], { f });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /\[railhead\] h3 ERROR ssh: could not reach .*@10\.77\.0\.250:\d+\. Next: check the address/);
});
