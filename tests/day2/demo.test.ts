// demo/: the app the local stack builds. Built here from the rig's Debian base image (no Docker Hub
// here; users build FROM ruby:3.3-slim), then run on this machine's engine: /up, /version, the
// SQLite counter, bin/migrate twice, bin/jobs, bin/rails console, keep-alive, and a graceful stop.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { request, Agent } from "node:http";

const ROOT = join(__dirname, "..", "..");
const IMAGE = "railhead-day2/demo:test";
const NAME = "railhead-day2-demo";
const BASE = process.env.DEMO_BASE_IMAGE ?? "railhead-test/base:bookworm";
let ip = "";

function docker(args: string[], input?: string): { code: number; out: string; err: string } {
  const r = spawnSync("docker", args, { encoding: "utf8", input, timeout: 600_000 });
  return { code: r.status ?? -1, out: r.stdout.trim(), err: r.stderr.trim() };
}

function get(path: string, agent?: Agent): Promise<{ status: number; body: string; socket: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: ip, port: 3000, path, agent, timeout: 5000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body, socket: req.socket }));
    });
    req.on("error", reject);
    req.end();
  });
}

before(() => {
  const b = docker(["build", "-q", "--network", "host", "--build-arg", `RUBY_IMAGE=${BASE}`, "--build-arg", "APP_VERSION=baked-1", "-t", IMAGE, join(ROOT, "demo")]);
  assert.equal(b.code, 0, `demo build from ${BASE} failed: ${b.err}`);
  docker(["rm", "-f", NAME]);
  const r = docker(["run", "-d", "--name", NAME, "-e", "RAILHEAD_VERSION=rel-7", IMAGE]);
  assert.equal(r.code, 0, r.err);
  ip = docker(["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", NAME]).out;
});

after(() => {
  docker(["rm", "-f", NAME]);
});

async function waitUp(): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      if ((await get("/up")).status === 200) return;
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`demo did not answer /up: ${docker(["logs", NAME]).err}`);
}

test("/up answers before and after bin/migrate; /version is the release version", async () => {
  await waitUp();
  assert.equal((await get("/version")).body, "rel-7\n");
  const m1 = docker(["exec", NAME, "bin/migrate"]);
  const m2 = docker(["exec", NAME, "bin/rails", "db:prepare"]);
  assert.equal(m1.code, 0, m1.err);
  assert.equal(m2.code, 0, "migrating twice changes nothing");
});

test("the page counts visits in SQLite over one keep-alive connection", async () => {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const a = await get("/", agent);
  const b = await get("/", agent);
  assert.equal(a.status, 200);
  const n = (s: string) => Number(/id="visits">(\d+)</.exec(s)?.[1]);
  assert.equal(n(b.body), n(a.body) + 1);
  assert.equal(a.socket, b.socket, "the connection was reused");
  assert.match(a.body, /Version <code>rel-7<\/code>/);
  agent.destroy();
  assert.equal((await get("/nope")).status, 404);
});

test("bin/jobs ticks and bin/rails console evaluates", () => {
  const j = docker(["exec", "-e", "JOB_INTERVAL=0.2", NAME, "timeout", "-s", "TERM", "2", "bin/jobs"]);
  assert.match(j.out, /tick \d+/);
  assert.match(j.out, /jobs stopped/);
  const c = docker(["exec", "-i", NAME, "bin/rails", "console"], 'puts "ticks=#{DemoApp.counter(%q(job_ticks))}"\n');
  assert.match(c.out + c.err, /ticks=\d+/);
});

test("SIGTERM stops it gracefully: exit 0, well within the stop timeout", () => {
  const t0 = Date.now();
  docker(["stop", "-t", "20", NAME]);
  assert.ok(Date.now() - t0 < 10_000, "stopped on SIGTERM, not killed at the timeout");
  assert.equal(docker(["inspect", "-f", "{{.State.ExitCode}}", NAME]).out, "0");
  assert.match(docker(["logs", NAME]).out, /SIGTERM: stopping[\s\S]*stopped/);
});
