// Host tool on a real rig host (h3): job roles (no proxy), migrate, role remove, usage errors.
import { strict as assert } from "node:assert";
import { before, describe, test } from "node:test";
import { rigImage } from "../rig/rig";
import { describeResult, prepareHost, resetHost, type ToolHost } from "./helpers";

let h: ToolHost;

function jobRelease(role: string, version: string, extra: string[] = []): string[] {
  return ["release", "--service", "app", "--role", role, "--version", version, "--image", rigImage("app:v1"),
    "--readiness-delay", "2", "--stop-timeout", "3", ...extra];
}

async function inspect(name: string, format: string): Promise<string> {
  const r = await h.sh(`docker inspect -f '${format}' ${name}`);
  assert.equal(r.code, 0, describeResult(r));
  return r.stdout.trim();
}

describe("host tool roles on h3", () => {
  before(async () => {
    h = await prepareHost("h3");
    await resetHost(h, ["app"]);
    const net = await h.tool(["network", "ensure", "railhead"]);
    assert.equal(net.code, 0, describeResult(net));
  });

  test("--help works for the tool and every subcommand; bad usage exits 2", async () => {
    for (const args of [["--help"], ["release", "--help"], ["proxy", "--help"], ["proxy", "service", "--help"], ["migrate", "--help"],
      ["role", "--help"], ["network", "--help"], ["audit", "--help"], ["containers", "--help"], ["registry", "login", "--help"], ["check", "--help"], ["version", "--help"]]) {
      const r = await h.tool(args);
      assert.equal(r.code, 0, `${args.join(" ")}: ${describeResult(r)}`);
      assert.match(r.stdout, /Usage/);
    }
    const bad = await h.tool(["release", "--service", "app"]);
    assert.equal(bad.code, 2, describeResult(bad));
    const unknown = await h.tool(["frobnicate"]);
    assert.equal(unknown.code, 2);
  });

  test("a job role release starts the new container, waits for readiness, then stops the old one", async () => {
    const first = await h.tool(jobRelease("jobs", "j1", ["--cmd", "python3 /rails/app.py"]), "A=1\n");
    assert.equal(first.code, 0, describeResult(first));
    const second = await h.tool(jobRelease("jobs", "j2", ["--cmd", "python3 /rails/app.py"]), "A=1\n");
    assert.equal(second.code, 0, describeResult(second));
    assert.match(second.stdout, /app-jobs-j2 ready after [0-9.]+s/);
    assert.equal(await inspect("app-jobs-j2", "{{.State.Status}}"), "running");
    assert.equal(await inspect("app-jobs-j1", "{{.State.Status}}"), "exited");
    const started = Date.parse(await inspect("app-jobs-j2", "{{.State.StartedAt}}"));
    const oldStopped = Date.parse(await inspect("app-jobs-j1", "{{.State.FinishedAt}}"));
    assert.ok(oldStopped - started >= 1900, `old stopped ${oldStopped - started} ms after the new one started (readiness delay 2 s)`);
    const again = await h.tool(jobRelease("jobs", "j2", ["--cmd", "python3 /rails/app.py"]), "A=1\n");
    assert.match(again.stdout, /already current/);
  });

  test("a job that exits during readiness fails the release and the old one keeps running", async () => {
    const r = await h.tool(jobRelease("jobs", "j3", ["--cmd", "sh -c 'echo job-crashing; exit 3'"]), "A=1\n");
    assert.equal(r.code, 1, describeResult(r));
    assert.match(r.stderr, /job-crashing/);
    assert.equal(await inspect("app-jobs-j2", "{{.State.Status}}"), "running");
  });

  test("migrate runs once with the release env and propagates its exit status", async () => {
    const ok = await h.tool(["migrate", "--service", "app", "--version", "v1", "--image", rigImage("app:v1"),
      "--cmd", "sh -c 'echo migrating $RAILHEAD_VERSION with ${DB_PASSWORD:+a password}'"], "DB_PASSWORD=hunter2-secret\n");
    assert.equal(ok.code, 0, describeResult(ok));
    assert.equal(ok.stdout.match(/migrating v1 with a password/g)?.length, 1, ok.stdout);
    assert.ok(!ok.stdout.includes("hunter2-secret"));
    const failed = await h.tool(["migrate", "--service", "app", "--version", "v1", "--image", rigImage("app:v1"), "--cmd", "sh -c 'exit 7'"], "");
    assert.equal(failed.code, 7, describeResult(failed));
    assert.match(failed.stderr, /exited with status 7/);
    const left = await h.sh("docker ps -aq --filter label=railhead.role=migrate");
    assert.equal(left.stdout.trim(), "", "one-off containers are removed");
    const audit = await h.tool(["audit", "--service", "app"]);
    assert.match(audit.stdout, /role=migrate version=v1 result=ok/);
    assert.match(audit.stdout, /role=migrate version=v1 result=failed:exit-7/);
  });

  test("role remove removes only that role's containers", async () => {
    const worker = await h.tool(jobRelease("worker", "w1", ["--cmd", "python3 /rails/app.py"]), "A=1\n");
    assert.equal(worker.code, 0, describeResult(worker));
    const rm = await h.tool(["role", "remove", "--service", "app", "--role", "jobs"]);
    assert.equal(rm.code, 0, describeResult(rm));
    const left = await h.sh("docker ps -a --filter label=railhead.service=app --format '{{.Names}}'");
    assert.equal(left.stdout.trim(), "app-worker-w1");
    const list = await h.tool(["containers", "--service", "app"]);
    assert.match(list.stdout, /app-worker-w1\tworker\tw1\trunning/);
    const env = await h.sh("test -e ~/.railhead/apps/app/env/jobs.env && echo present || echo gone");
    assert.equal(env.stdout.trim(), "gone");
  });

  test("registry login takes the password on stdin only", async () => {
    // The script names the password only in two halves: its own command line is visible to ps too.
    const r = await h.sh(
      `P1=pw-not-; P2=in-args; ( for i in $(seq 1 40); do ps -eo args; sleep 0.05; done > /tmp/rh-ps2.log & echo $! > /tmp/rh-ps2.pid ); ` +
        `${h.toolPath} registry login --server ${rigImage("app:v1").split("/")[0]} --username deploy; rc=$?; kill $(cat /tmp/rh-ps2.pid) 2>/dev/null; sleep 0.2; ` +
        `grep -q -- "$P1$P2" /tmp/rh-ps2.log && echo PW-IN-PS; exit $rc`,
      "pw-not-in-args\n",
    );
    assert.doesNotMatch(r.stdout, /PW-IN-PS/);
    assert.ok(!(r.stdout + r.stderr).includes("pw-not-in-args"));
    assert.ok(r.code === 0 || r.code === 1, describeResult(r));
  });
});
