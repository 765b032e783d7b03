// Host tool on a real rig host (h2): two services routed by domain, catch-all rules, maintenance
// (surviving a proxy restart), service removal, and the Caddy TLS front. Needs the rig.
import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import path from "node:path";
import { before, describe, test } from "node:test";
import { httpGet, rigImage, waitFor } from "../rig/rig";
import { bootProxy, describeResult, getDomain, mustSucceed, foreignCatchAll, prepareHost, resetHost, webRelease, type ToolHost } from "./helpers";

const MINE = ["one", "two", "three", "secure", "plain", "catchall", "catchall2"];

let h: ToolHost;

const get = (domain: string) => getDomain(h, domain);

const ok = mustSucceed;

describe("host tool proxy on h2", () => {
  before(async () => {
    h = await prepareHost("h2");
    await resetHost(h, MINE);
    await bootProxy(h, ["--tls-image", rigImage("caddy:2.6"), "--tls-internal"]);
  });

  test("two services on one host are routed by domain", async () => {
    await ok(h.tool(["proxy", "service", "add", "one", "--app-port", "3000", "--domain", "one.test", "--domain", "www.one.test"]));
    await ok(h.tool(["proxy", "service", "add", "two", "--app-port", "3000", "--domain", "two.test"]));
    await ok(h.tool(webRelease("one", "v1", rigImage("app:v1")), "A=1\n"));
    await ok(h.tool(webRelease("two", "v2", rigImage("app:v2")), "A=2\n"));
    assert.equal((await get("one.test")).version, "v1");
    assert.equal((await get("WWW.One.Test:80")).version, "v1", "Host matching ignores case and port");
    assert.equal((await get("two.test")).version, "v2");
    if (!(await foreignCatchAll(h, MINE))) {
      assert.equal((await get("other.test")).status, 404, "an unknown host gets a 404 when there is no catch-all");
    }
  });

  test("the live slot keeps serving while the host's Docker engine does not answer DNS for 5 s", async () => {
    // The slots are found through Docker's embedded DNS. A stalled engine (SIGSTOP here; busy or
    // hung in production) must not take the live release out of rotation: with 1 s holds on
    // failed answers this gave dozens of 503s within 3 s.
    const pidFile = path.join(path.dirname(new URL(h.host.dockerHost).pathname), "docker.pid");
    const pid = Number(readFileSync(pidFile, "utf8").trim());
    assert.ok(pid > 1, `no dockerd pid in ${pidFile}`);
    assert.equal((await get("one.test")).version, "v1");
    const failures: string[] = [];
    let requests = 0;
    const started = Date.now();
    process.kill(pid, "SIGSTOP");
    try {
      while (Date.now() - started < 6500) {
        const r = await get("one.test").catch((e: unknown) => ({ status: 0, body: String(e), version: "" }));
        requests++;
        if (r.status !== 200 || r.version !== "v1") failures.push(`${Date.now() - started} ms: ${r.status} ${r.body.slice(0, 80)}`);
        if (Date.now() - started > 5000) process.kill(pid, "SIGCONT");
        await new Promise((res) => setTimeout(res, 50));
      }
    } finally {
      process.kill(pid, "SIGCONT");
    }
    assert.ok(requests > 40, `only ${requests} requests`);
    assert.deepEqual(failures, [], `${failures.length} of ${requests} requests failed while the engine was stopped`);
  });

  test("one catch-all per host; a domain belongs to one service", async () => {
    // Another suite sharing the rig host may own the catch-all; then ours must be refused.
    const foreign = await foreignCatchAll(h, MINE);
    const first = await h.tool(["proxy", "service", "add", "catchall", "--app-port", "3000"]);
    if (foreign) {
      assert.equal(first.code, 1, describeResult(first));
      assert.match(first.stderr, new RegExp(`service ${foreign} is already this host's catch-all`));
    } else {
      assert.equal(first.code, 0, describeResult(first));
      const second = await h.tool(["proxy", "service", "add", "catchall2", "--app-port", "3000"]);
      assert.equal(second.code, 1, describeResult(second));
      assert.match(second.stderr, /service catchall is already this host's catch-all/);
      await ok(h.tool(["proxy", "service", "remove", "catchall"]));
      assert.equal((await get("other.test")).status, 404);
    }
    const taken = await h.tool(["proxy", "service", "add", "three", "--app-port", "3000", "--domain", "two.test"]);
    assert.equal(taken.code, 1, describeResult(taken));
    assert.match(taken.stderr, /domain two.test is already routed to service two/);
  });

  test("maintenance on answers 503 with the message, survives a proxy restart; off restores the live slot", async () => {
    await ok(h.tool(["proxy", "maintenance", "one", "on"], "Back at 5 <soon> & 'later'; promise\n"));
    let r = await get("one.test");
    assert.equal(r.status, 503);
    assert.match(r.body, /Back at 5 &lt;soon&gt; &amp; &#39;later&#39;; promise/);
    assert.equal((await get("two.test")).status, 200, "other services are not affected");
    await ok(h.sh("docker restart railhead-proxy >/dev/null"));
    r = await waitFor("the proxy after a restart", async () => {
      const x = await get("one.test").catch(() => undefined);
      return x && x.status === 503 ? x : undefined;
    }, 20_000);
    assert.match(r.body, /Back at 5/);
    await ok(h.tool(["proxy", "maintenance", "one", "off"]));
    assert.equal((await get("one.test")).version, "v1");
    await ok(h.tool(["proxy", "maintenance", "one", "on"], ""));
    assert.match((await get("one.test")).body, /Down for maintenance/);
    await ok(h.tool(["proxy", "maintenance", "one", "off"]));
    // A restart routes to the live slot too (the config records it).
    await ok(h.sh("docker restart railhead-proxy >/dev/null"));
    await waitFor("v1 after a restart", async () => (await get("one.test").catch(() => undefined))?.version === "v1", 20_000);
  });

  test("removing one service keeps the other serving", async () => {
    await ok(h.tool(["proxy", "service", "remove", "two"]));
    await ok(h.tool(["role", "remove", "--service", "two", "--role", "web"]));
    assert.equal((await get("one.test")).version, "v1");
    if (!(await foreignCatchAll(h, MINE))) assert.equal((await get("two.test")).status, 404);
    const left = await h.sh("docker ps -a --filter label=railhead.service=two -q");
    assert.equal(left.stdout.trim(), "");
  });

  test("TLS front: Caddy takes port 80, serves non-ssl sites over HTTP, config changes only with ssl domains", async () => {
    await ok(h.tool(["proxy", "service", "add", "secure", "--app-port", "3000", "--domain", "secure.test", "--ssl"]));
    await ok(h.tool(webRelease("secure", "v2", rigImage("app:v2")), "A=3\n"));
    const ports = await h.sh("docker port railhead-tls; echo ---; docker port railhead-proxy");
    assert.match(ports.stdout, /^80\/tcp -> /m);
    assert.match(ports.stdout, /^443\/tcp -> /m);
    assert.match(ports.stdout, /---\n$/, "HAProxy is no longer published once Caddy fronts it");
    const served = await waitFor("one.test through Caddy", async () => {
      const x = await get("one.test").catch(() => undefined);
      return x && x.status === 200 ? x : undefined;
    }, 20_000);
    assert.equal(served.version, "v1");
    const redirect = await httpGet(`${h.baseUrl}/`, { host: "secure.test" });
    assert.equal(redirect.status, 308, "an ssl domain is redirected to https");
    const caddyfile = () => h.sh("docker exec railhead-tls cat /etc/caddy/Caddyfile; docker inspect -f '{{.State.StartedAt}}' railhead-tls");
    const before = (await caddyfile()).stdout;
    assert.match(before, /https:\/\/secure\.test/);
    await ok(h.tool(webRelease("one", "v2", rigImage("app:v2")), "A=1\n"));
    const add = await ok(h.tool(["proxy", "service", "add", "plain", "--app-port", "3000", "--domain", "plain.test"]));
    assert.match(add, /domains unchanged: Caddy not reloaded/);
    assert.equal((await caddyfile()).stdout, before, "a release or a non-ssl service must not touch the Caddy config");
    await ok(h.tool(["proxy", "service", "add", "secure", "--app-port", "3000", "--domain", "secure.test", "--domain", "s2.test", "--ssl"]));
    assert.match((await caddyfile()).stdout, /s2\.test/);
    assert.equal((await get("one.test")).version, "v2");
    // Leave the host as other suites expect it: no TLS front, HAProxy published again.
    await resetHost(h, MINE);
    const after = await h.sh("docker port railhead-proxy; docker ps -aq --filter name=^railhead-tls$");
    assert.match(after.stdout, /^80\/tcp -> /m);
  });
});
