// e2e: Kamal's main scenarios (research/kamal.md §5: #1 deploy/redeploy/rollback/audit, #2 roles,
// #10 maintenance/live, #15 broken deploy) plus Railhead's own: idempotent up, role removal, a
// rebuilt server. One stack (e2e-app) on rig hosts h1..h3, steps in order, each able to fail.
// The program runs under the apply harness (test equipment): no `pulumi up` runs here.
import { test } from "node:test";
import assert from "node:assert/strict";
import { scenario } from "../summary";
import { audit, containerIds, containers, e2eStack, harness, hcloudHost, httpGet, IMAGE, ip, Load, mustSucceed, served, slot, tool, up } from "../support";
import type { UpResult } from "../harness";

const STACK = "e2e-app";
const [H1, H2, H3] = [slot(0), slot(1), slot(2)];
const HOSTS = { "web-1": H1, "web-2": H2, "job-1": H3 };
const hostsConfig = (web2Image = "ubuntu-24.04") => ({ "web-1": hcloudHost(H1), "web-2": hcloudHost(H2, "nbg1", web2Image), "job-1": hcloudHost(H3) });
const spec = (extra: Record<string, unknown> = {}) => e2eStack(STACK, HOSTS, { hosts: hostsConfig(), ...extra }, "e2e-app.yaml");
const at = (tag: string, extra: Record<string, unknown> = {}) => spec({ image: IMAGE(tag), ...extra });

/** Start/end of the named resource's command actions in an up. */
function span(r: UpResult, name: string): { start: number; end: number } {
  const a = r.actions.filter((x) => x.name === name && x.kind === "command");
  assert.ok(a.length > 0, `${name} ran (ran: ${r.actions.map((x) => x.name).join(", ")})`);
  return { start: Math.min(...a.map((x) => x.start)), end: Math.max(...a.map((x) => x.end)) };
}

/** Versions released OK, in audit order. */
async function releasedVersions(rigName: string, role: string): Promise<string[]> {
  // `<time> <host> role=R version=V result=ok|failed:<step> seconds=S` (host tool `audit`)
  const lines = await audit(rigName, "e2eapp");
  return lines.flatMap((l) => {
    const m = /\brole=(\S+) version=(\S+) result=(\S+)/.exec(l);
    return m && m[1] === role && m[3] === "ok" ? [m[2]] : [];
  });
}

test("e2e-app: deploy, idempotence, redeploy, broken release, rollback, maintenance, role removal, rebuilt server", { concurrency: false }, async (t) => {
  harness.forget(STACK);

  await t.test("deploy v1: web on two hosts in boot groups, job on a third after the first web group", async () => {
    await scenario("deploy (roles, boot groups)", async () => {
      const r = await up(at("v1"));
      mustSucceed(r);
      assert.equal(await served(ip(H1)), "v1");
      assert.equal(await served(ip(H2)), "v1");
      assert.ok((await containers(H3)).includes("e2eapp-job-v1"), `job container on h3: ${(await containers(H3)).join(", ")}`);
      assert.ok(!(await containers(H3)).some((c) => c.startsWith("e2eapp-web")), "no web container on the job host");
      // boot groups (limit 1): web-2 starts after web-1 finished; the job waits for the first group
      const w1 = span(r, "web-web-1/release");
      const w2 = span(r, "web-web-2/release");
      const j = span(r, "job-job-1/release");
      assert.ok(w1.end <= w2.start, `web-1 ${JSON.stringify(w1)} before web-2 ${JSON.stringify(w2)}`);
      assert.ok(w1.end <= j.start, `web-1 before job ${JSON.stringify(j)}`);
      const m = span(r, "migrate/run");
      assert.ok(m.end <= w1.start, "migration before the first web release");
      assert.deepEqual(await releasedVersions(H1, "web"), ["v1"]);
    });
  });

  await t.test("a second up with no change runs nothing", async () => {
    await scenario("idempotent up (zero commands)", async () => {
      const r = await up(at("v1"));
      mustSucceed(r);
      // (a host tool edited between the two ups changes every command: that is a real change)
      const changed = r.steps.filter((x) => x.op !== "same").map((x) => `${x.op} ${x.name} [${(x.changed ?? []).join(",")}]`);
      assert.equal(r.executed, 0, `ran: ${changed.join("; ")}`);
    });
  });

  await t.test("redeploy v2 serves v2; audit lists v1 then v2", async () => {
    await scenario("redeploy", async () => {
      const load = new Load(ip(H1));
      const r = await up(at("v2"));
      const l = await load.stop();
      mustSucceed(r);
      assert.equal(await served(ip(H1)), "v2");
      assert.equal(await served(ip(H2)), "v2");
      assert.equal(l.failed, 0, `failed requests during the redeploy: ${l.failures.join("; ")}`);
      assert.ok((await containers(H3)).includes("e2eapp-job-v2"));
      assert.deepEqual(await releasedVersions(H1, "web"), ["v1", "v2"]);
    });
  });

  await t.test("a broken release fails the up with the container's logs; v2 keeps serving with 0 failed requests; no broken job runs", async () => {
    await scenario("broken release (health fails)", async () => {
      const load = new Load(ip(H1));
      const r = await up(at("v3-broken"));
      const l = await load.stop();
      assert.equal(r.ok, false, "the up must fail");
      assert.match(r.error ?? "", /\[app v3-broken\]/, `the error shows the new container's logs:\n${r.error}`);
      assert.equal(l.failed, 0, `failed requests: ${l.failures.join("; ")}`);
      assert.ok(l.ok > 0);
      assert.deepEqual([...l.versions.keys()], ["v2"]);
      assert.equal(await served(ip(H2)), "v2");
      assert.ok(!(await containers(H3, true)).some((c) => c.includes("v3-broken")), "no job container of the broken version");
      assert.ok(!r.actions.some((a) => a.name === "web-web-2/release"), "the second boot group never ran");
    });
  });

  await t.test("rollback to v1 serves v1; audit lists v1, v2, v1 in order", async () => {
    await scenario("rollback", async () => {
      const r = await up(at("v1"));
      mustSucceed(r);
      assert.equal(await served(ip(H1)), "v1");
      assert.equal(await served(ip(H2)), "v1");
      assert.deepEqual(await releasedVersions(H1, "web"), ["v1", "v2", "v1"]);
      assert.deepEqual(await releasedVersions(H2, "web"), ["v1", "v2", "v1"]);
    });
  });

  await t.test("maintenance serves 503 with a page; live restores (host tool, as `kamal app maintenance`)", async () => {
    await scenario("maintenance / live", async () => {
      await tool(H1, "proxy maintenance e2eapp on", "Back in five minutes");
      const m = await httpGet(ip(H1), "/version");
      assert.equal(m.status, 503);
      assert.match(m.body, /Back in five minutes/);
      await tool(H1, "proxy maintenance e2eapp off");
      assert.equal(await served(ip(H1)), "v1");
    });
  });

  await t.test("removing the job role removes its containers and nothing else", async () => {
    await scenario("remove a role", async () => {
      const web1 = await containerIds(H1, "e2eapp");
      const web2 = await containerIds(H2, "e2eapp");
      const r = await up(at("v1", { servers: { web: { hosts: ["web-1", "web-2"] } } }));
      mustSucceed(r);
      assert.ok(!(await containers(H3, true)).some((c) => c.startsWith("e2eapp-job")), `job containers left: ${(await containers(H3, true)).join(", ")}`);
      assert.deepEqual(await containerIds(H1, "e2eapp"), web1, "h1 untouched");
      assert.deepEqual(await containerIds(H2, "e2eapp"), web2, "h2 untouched");
      assert.equal(await served(ip(H1)), "v1");
      assert.ok(r.steps.some((s) => s.op === "delete" && s.name === "job-job-1/release"), "the job release's delete ran");
    });
  });

  await t.test("a rebuilt server (new server identity) receives its containers again; other hosts untouched", async () => {
    await scenario("rebuilt server", async () => {
      const before = harness.state(STACK).resources.find((x) => x.name === "host-web-2/server")?.id;
      const web1 = await containerIds(H1, "e2eapp");
      const r = await up(at("v1", { hosts: hostsConfig("ubuntu-22.04"), servers: { web: { hosts: ["web-1", "web-2"] } } }));
      mustSucceed(r);
      const after = harness.state(STACK).resources.find((x) => x.name === "host-web-2/server")?.id;
      assert.ok(before && after && before !== after, `server id changed (${before} -> ${after})`);
      assert.equal(await served(ip(H2)), "v1");
      assert.deepEqual(await releasedVersions(H2, "web"), ["v1"], "h2 is a new machine: its audit starts again");
      assert.deepEqual(await containerIds(H1, "e2eapp"), web1, "h1 untouched");
      const elsewhere = r.actions.filter((a) => a.kind === "command" && a.target && !a.target.endsWith(ip(H2)));
      const why = (n: string) => r.steps.find((x) => x.name === n)?.changed?.join(",") ?? "?";
      assert.deepEqual(elsewhere.map((a) => `${a.name} [${why(a.name)}]`), [], "commands ran only on the rebuilt host");
    });
  });
});
