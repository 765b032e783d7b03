// Host tool on a real rig host (h1): proxy boot, web releases with zero downtime, a failing
// release, rollback without a pull, retain, idempotency, secrets. Needs the rig (tests/rig).
import { strict as assert } from "node:assert";
import { before, describe, test } from "node:test";
import { httpGet, rigImage, waitFor } from "../rig/rig";
import { assertNoFailures, bootProxy, describeResult, prepareHost, resetHost, underLoad as underLoadOn, webRelease, type ToolHost } from "./helpers";

const DOMAIN = "app.test";
let h: ToolHost;

async function version(): Promise<string> {
  const r = await httpGet(`${h.baseUrl}/`, { host: DOMAIN, timeoutMs: 5000 });
  assert.equal(r.status, 200, `GET / -> ${r.status} ${r.body}`);
  return String(r.headers["x-app-version"] ?? r.body.trim());
}

const underLoad = <T>(fn: () => Promise<T>) => underLoadOn(h, DOMAIN, fn);

async function containerIds(): Promise<string> {
  const r = await h.sh("docker ps -aq --no-trunc --filter label=railhead.service=app | sort");
  return r.stdout;
}

describe("host tool release on h1", () => {
  before(async () => {
    h = await prepareHost("h1");
    await resetHost(h, ["app"]);
  });

  test("check, network ensure and proxy boot are idempotent", async () => {
    const check = await h.tool(["check"]);
    assert.equal(check.code, 0, describeResult(check));
    assert.match(check.stdout, /\[railhead\] h1 check: docker /);
    await bootProxy(h);
    const id1 = await h.sh("docker inspect -f '{{.Id}}' railhead-proxy");
    await bootProxy(h);
    const id2 = await h.sh("docker inspect -f '{{.Id}}' railhead-proxy");
    assert.equal(id2.stdout, id1.stdout, "a second identical proxy boot must not replace the container");
    const add = await h.tool(["proxy", "service", "add", "app", "--app-port", "3000", "--domain", DOMAIN]);
    assert.equal(add.code, 0, describeResult(add));
    const again = await h.tool(["proxy", "service", "add", "app", "--app-port", "3000", "--domain", DOMAIN]);
    assert.equal(again.code, 0, describeResult(again));
    assert.match(again.stdout, /no reload/);
  });

  test("first deploy serves v1 through the proxy", async () => {
    const r = await h.tool(webRelease("app", "v1", rigImage("app:v1")), "SECRET_KEY_BASE=first\n");
    assert.equal(r.code, 0, describeResult(r));
    assert.match(r.stdout, /released v1 as app-web-v1 in [0-9.]+s/);
    assert.equal(await version(), "v1");
  });

  test("v2 under keep-alive and close load: 0 failed requests, both versions seen", async () => {
    const { value: r, ka, close } = await underLoad(() => h.tool(webRelease("app", "v2", rigImage("app:v2")), "SECRET_KEY_BASE=first\n"));
    assert.equal(r.code, 0, describeResult(r));
    assertNoFailures("keep-alive", ka);
    assertNoFailures("close", close);
    for (const l of [ka, close]) {
      assert.ok((l.versions.v1 ?? 0) > 0 && (l.versions.v2 ?? 0) > 0, `versions seen: ${JSON.stringify(l.versions)}`);
    }
    assert.equal(await version(), "v2");
    const state = await h.sh("docker inspect -f '{{.State.Status}}' app-web-v1");
    assert.equal(state.stdout.trim(), "exited", "the old container is stopped, not removed");
  });

  test("v3-broken fails with the container's log, v2 keeps serving with 0 failed requests", async () => {
    const { value: r, ka, close } = await underLoad(() =>
      h.tool(webRelease("app", "v3-broken", rigImage("app:v3-broken"), ["--deploy-timeout", "4"]), "SECRET_KEY_BASE=first\n"),
    );
    assert.notEqual(r.code, 0, describeResult(r));
    const out = r.stdout + r.stderr;
    assert.match(out, /ERROR health: app-web-v3-broken did not answer 2xx/);
    assert.match(out, /logs of app-web-v3-broken/);
    assert.match(out, /\[app-web-v3-broken\] .*v3-broken/, "the container's own log lines are printed");
    assertNoFailures("keep-alive", ka);
    assertNoFailures("close", close);
    assert.deepEqual(Object.keys(ka.versions), ["v2"]);
    assert.equal(await version(), "v2");
    const state = await h.sh("docker inspect -f '{{.State.Status}}' app-web-v3-broken");
    assert.equal(state.stdout.trim(), "exited");
  });

  test("rollback to v1 starts the retained container without pulling", async () => {
    // Untag v1 on the host (running it from the tag would need a pull), and run the tool with a
    // `docker` shim on PATH that logs every docker command the tool runs: no `pull` may appear.
    // (Host-wide `docker events` would also see pulls by other suites sharing the rig host.)
    const untag = await h.sh(`docker rmi ${rigImage("app:v1")} >/dev/null 2>&1 || docker rmi -f ${rigImage("app:v1")} >/dev/null`);
    assert.equal(untag.code, 0, describeResult(untag));
    const args = webRelease("app", "v1", rigImage("app:v1")).join(" ");
    const r = await h.sh(
      `real=$(command -v docker); shim=$(mktemp -d); printf '#!/bin/sh\necho "$*" >> %s/log\nexec %s "$@"\n' "$shim" "$real" > "$shim/docker"; ` +
        `chmod +x "$shim/docker"; PATH="$shim:$PATH" ${h.toolPath} --host-label h1 ${args}; rc=$?; ` +
        `echo "--- docker commands:"; cut -d' ' -f1-2 "$shim/log" | sort | uniq -c; rm -rf "$shim"; exit $rc`,
      "SECRET_KEY_BASE=first\n",
    );
    assert.equal(r.code, 0, describeResult(r));
    assert.match(r.stdout, /started the retained container app-web-v1 \(no pull\)/);
    const commands = r.stdout.split("--- docker commands:")[1] ?? "";
    assert.match(commands, / start /, "the shim saw the tool's docker commands");
    assert.doesNotMatch(commands, /\bpull\b/, `docker commands run: ${commands}`);
    assert.equal(await version(), "v1");
  });

  test("re-running the same release prints 'already current' and changes nothing", async () => {
    const before = await containerIds();
    const r = await h.tool(webRelease("app", "v1", rigImage("app:v1")), "SECRET_KEY_BASE=first\n");
    assert.equal(r.code, 0, describeResult(r));
    assert.match(r.stdout, /app-web-v1 already current/);
    assert.equal(await containerIds(), before);
    const running = await h.sh("docker ps --filter label=railhead.service=app --format '{{.Names}}'");
    assert.equal(running.stdout.trim(), "app-web-v1");
  });

  test("without the Engine API (RAILHEAD_DOCKER_API=off: docker CLI only) a release works the same", async () => {
    const live = (await h.sh("docker ps --filter label=railhead.service=app --format '{{.Names}}'")).stdout.trim();
    assert.match(live, /^app-web-\S+$/, "one live release before");
    const line = webRelease("app", "cli1", rigImage("app:v2")).join(" ");
    const r = await h.sh(`RAILHEAD_DOCKER_API=off ${h.toolPath} --host-label h1 ${line}`, "SECRET_KEY_BASE=first\n");
    assert.equal(r.code, 0, describeResult(r));
    assert.ok(r.stdout.includes(`stopped ${live} (kept for rollback)`), describeResult(r));
    assert.equal(await version(), "v2");
    const all = await h.sh("docker ps -a --filter label=railhead.service=app --format '{{.Names}} {{.State}}' | sort");
    assert.match(all.stdout, /^app-web-cli1 running$/m);
    assert.ok(all.stdout.includes(`${live} exited`), all.stdout);
  });

  test("retain keeps only the newest N stopped containers", async () => {
    for (const v of ["r1", "r2", "r3", "r4"]) {
      const r = await h.tool(webRelease("app", v, rigImage("app:v2"), ["--retain", "2"]), "SECRET_KEY_BASE=first\n");
      assert.equal(r.code, 0, describeResult(r));
    }
    const all = await h.sh("docker ps -a --filter label=railhead.service=app --format '{{.Names}} {{.State}}' | sort");
    assert.equal(all.stdout.trim(), ["app-web-r2 exited", "app-web-r3 exited", "app-web-r4 running"].join("\n"));
    assert.equal(await version(), "v2");
  });

  test("after a simulated reboot (app back on another IP, proxy restarted) the proxy finds the live container", async () => {
    const live = (await h.sh("docker ps --filter label=railhead.service=app --filter label=railhead.role=web --format '{{.Names}}'")).stdout.trim();
    const ipOf = async () => (await h.sh(`docker inspect -f '{{(index .NetworkSettings.Networks "railhead").IPAddress}}' ${live}`)).stdout.trim();
    const before = await ipOf();
    // Docker gives a restarted container its old address back, so move it by re-attaching it
    // (with its slot alias) while the proxy is down, as a reboot with a new address would.
    const alias = (await h.sh(`docker inspect -f '{{range (index .NetworkSettings.Networks "railhead").Aliases}}{{println .}}{{end}}' ${live} | grep -e '--[ab]$'`)).stdout.trim();
    // Docker's allocator may hand the freed address straight back: park small containers on the
    // network until one holds it.
    const r = await h.sh(
      `docker stop -t 1 railhead-proxy >/dev/null && docker network disconnect railhead ${live} && ` +
        `for i in 1 2 3 4 5 6 7 8; do docker run -d --name rh-test-ip-thief-$i --label rh-test=ip-thief --network railhead --entrypoint sleep ${rigImage("app:v1")} 120 >/dev/null; ` +
        `[ "$(docker inspect -f '{{(index .NetworkSettings.Networks "railhead").IPAddress}}' rh-test-ip-thief-$i)" = ${before} ] && break; done; ` +
        `docker network connect --alias ${alias} railhead ${live} && docker start railhead-proxy >/dev/null`,
    );
    try {
      assert.equal(r.code, 0, describeResult(r));
      assert.notEqual(await ipOf(), before, "the test needs the app on a new address");
      await waitFor("the live version after the restart", async () => {
        const x = await httpGet(`${h.baseUrl}/`, { host: DOMAIN, timeoutMs: 2000 }).catch(() => undefined);
        return x?.status === 200;
      }, 15_000);
    } finally {
      await h.sh("docker start railhead-proxy >/dev/null 2>&1; docker ps -aq --filter label=rh-test=ip-thief | xargs -r docker rm -f >/dev/null; true");
    }
  });

  test("a secret sent on stdin never shows in output, ps or docker inspect Args", async () => {
    const [s1, s2] = [`s3cr3t-${Date.now()}`, "-value"];
    const secret = s1 + s2;
    const toolLine = webRelease("app", "s1", rigImage("app:v2")).join(" ");
    // The script names the secret only in two halves: its own command line is visible to ps too.
    const r = await h.sh(
      `S1=${s1}; S2=${s2}; ( for i in $(seq 1 200); do ps -eo args; sleep 0.05; done > /tmp/rh-ps.log 2>&1 & echo $! > /tmp/rh-ps.pid ); ` +
        `${h.toolPath} --host-label h1 ${toolLine}; rc=$?; kill $(cat /tmp/rh-ps.pid) 2>/dev/null; sleep 0.2; ` +
        `if grep -q -- "$S1$S2" /tmp/rh-ps.log; then echo SECRET-IN-PS; fi; ` +
        `grep -q 'railhead-host.*release' /tmp/rh-ps.log && echo ps-sampled; ` +
        `docker inspect -f '{{json .Args}} {{json .Config.Cmd}} {{json .Config.Entrypoint}} {{json .Config.Labels}}' app-web-s1 | grep -q -- "$S1$S2" && echo SECRET-IN-INSPECT; exit $rc`,
      `SECRET_KEY_BASE=${secret}\n`,
    );
    assert.equal(r.code, 0, describeResult(r));
    assert.ok(!(r.stdout + r.stderr).includes(secret), "the secret appears in the tool's output");
    assert.doesNotMatch(r.stdout, /SECRET-IN-PS|SECRET-IN-INSPECT/);
    assert.match(r.stdout, /ps-sampled/);
    const env = await httpGet(`${h.baseUrl}/env/SECRET_KEY_BASE`, { host: DOMAIN });
    assert.match(env.body, /true/, `the app sees the secret: ${env.body}`);
    const mode = await h.sh("stat -c %a ~/.railhead/apps/app/env/web.env");
    assert.equal(mode.stdout.trim(), "600");
  });
  test("a cutover the proxy cannot make fails the release; the old release keeps serving, the proxy files are put back", async () => {
    const live = (await h.sh("sed -n 's/^LIVE=//p' ~/.railhead/proxy/services/app.conf")).stdout.trim();
    assert.match(live, /^[ab]$/);
    // A paused proxy refuses `docker exec`: the switch cannot happen.
    await h.sh("docker pause railhead-proxy >/dev/null");
    let r;
    try {
      r = await h.tool(webRelease("app", "c1", rigImage("app:v1")), "SECRET_KEY_BASE=first\n");
    } finally {
      await h.sh("docker unpause railhead-proxy >/dev/null 2>&1; true");
    }
    assert.notEqual(r.code, 0, describeResult(r));
    assert.match(r.stderr, /ERROR cutover: /, describeResult(r));
    assert.match(r.stderr, /the proxy did not switch to app-web-c1/, describeResult(r));
    assert.equal(await version(), "v2", "the old release serves");
    assert.equal((await h.sh("docker inspect -f '{{.State.Status}}' app-web-c1")).stdout.trim(), "exited", "the new container is stopped");
    assert.equal((await h.sh("sed -n 's/^LIVE=//p' ~/.railhead/proxy/services/app.conf")).stdout.trim(), live, "the live slot on file is the old one");
    // A restart reads the files in the container: they must route to the old slot too.
    await h.sh("docker restart railhead-proxy >/dev/null");
    await waitFor("the old release after a proxy restart", async () => {
      const x = await httpGet(`${h.baseUrl}/`, { host: DOMAIN, timeoutMs: 2000 }).catch(() => undefined);
      return x?.status === 200 && x.headers["x-app-version"] === "v2";
    }, 15_000);
  });
});
