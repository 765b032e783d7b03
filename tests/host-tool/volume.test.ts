// Host tool on a real rig host (h3): `release --volume` (the SQLite storage a Litestream replicator
// shares) keeps data across versions; the volume list is part of the spec; `migrate --volume` sees
// the same files; `--wait-after` (boot.wait). Service `vol-app`, volumes `vol-*`. Needs the rig.
import { strict as assert } from "node:assert";
import { after, before, describe, test } from "node:test";
import { httpGet, rigImage } from "../rig/rig";
import { bootProxy, describeResult, prepareHost, resetHost, shq, webRelease, type ToolHost } from "./helpers";

const SERVICE = "vol-app";
const DOMAIN = "vol.test";
const DATA = "vol-data";
const EXTRA = "vol-extra";
const ENV = "SQLITE_PATH=/data/app.sqlite3\nSECRET_KEY_BASE=vol-test\n";
let h: ToolHost;

const release = (version: string, image: string, extra: string[] = []) => h.tool(webRelease(SERVICE, version, rigImage(image), extra), ENV);

async function sqlite(method: "GET" | "POST", path: string): Promise<{ count: number }> {
  const r = await httpGet(`${h.baseUrl}${path}`, { host: DOMAIN, method, body: method === "POST" ? "" : undefined, timeoutMs: 10_000 });
  assert.equal(r.status, 200, `${method} ${path} -> ${r.status} ${r.body}`);
  return JSON.parse(r.body) as { count: number };
}

async function mounts(container: string): Promise<string> {
  const r = await h.sh(`docker inspect -f '{{range .Mounts}}{{.Name}}:{{.Destination}}:{{.RW}} {{end}}' ${shq(container)}`);
  assert.equal(r.code, 0, describeResult(r));
  return r.stdout.trim();
}

async function removeVolumes(): Promise<void> {
  await h.sh(`docker volume rm -f ${DATA} ${EXTRA} >/dev/null 2>&1; true`);
}

describe("host tool release --volume on h3", () => {
  before(async () => {
    h = await prepareHost("h3");
    await resetHost(h, [SERVICE]);
    await removeVolumes();
    await bootProxy(h);
    const add = await h.tool(["proxy", "service", "add", SERVICE, "--app-port", "3000", "--domain", DOMAIN]);
    assert.equal(add.code, 0, describeResult(add));
    // /data is not in the image, so a fresh volume there is root's; the app runs as uid 1000. (The
    // real storage volume is prepared by `litestream restore`, or sits at /rails/storage, which
    // the image owns and Docker copies into an empty volume.)
    const prep = await h.sh(`docker volume create ${DATA} >/dev/null && docker run --rm --user 0 --volume ${DATA}:/data --entrypoint chown ${shq(rigImage("app:v1"))} 1000:1000 /data`);
    assert.equal(prep.code, 0, describeResult(prep));
  });

  after(async () => {
    if (!h) return;
    await resetHost(h, [SERVICE]);
    await removeVolumes();
  });

  test("usage: --volume must be NAME:/absolute/path[:ro], one volume per path", async () => {
    for (const bad of [["--volume", "vol-data"], ["--volume", "vol-data:data"], ["--volume", "vol-data:/data:rw"], ["--volume", "/host/dir:/data"],
      ["--volume", "vol-data:/"], ["--volume", "vol-data:/a/../b"], ["--volume", "vol-data:/data", "--volume", `${EXTRA}:/data/`], ["--wait-after", "soon"]]) {
      const r = await release("v1", "app:v1", bad);
      assert.equal(r.code, 2, `${bad.join(" ")}: ${describeResult(r)}`);
    }
    const m = await h.tool(["migrate", "--service", SERVICE, "--version", "v1", "--image", rigImage("app:v1"), "--volume", "nope", "--cmd", "true"], "");
    assert.equal(m.code, 2, describeResult(m));
    const left = await h.sh(`docker ps -aq --filter label=railhead.service=${SERVICE}`);
    assert.equal(left.stdout.trim(), "", "a usage error starts nothing");
  });

  test("v1 mounts the volume; the app writes to it; v2 with the same volume still sees the data", async () => {
    const v1 = await release("v1", "app:v1", ["--volume", `${DATA}:/data`]);
    assert.equal(v1.code, 0, describeResult(v1));
    assert.equal(await mounts("vol-app-web-v1"), `${DATA}:/data:true`);
    assert.deepEqual(await sqlite("POST", "/sqlite/write?n=7"), { inserted: 7, count: 7 });

    const v2 = await release("v2", "app:v2", ["--volume", `${DATA}:/data`]);
    assert.equal(v2.code, 0, describeResult(v2));
    assert.match(v2.stdout, /released v2 as vol-app-web-v2/);
    assert.equal(await mounts("vol-app-web-v2"), `${DATA}:/data:true`);
    assert.equal((await sqlite("GET", "/sqlite/count")).count, 7, "v2 sees what v1 wrote");
    assert.deepEqual(await sqlite("POST", "/sqlite/write?n=3"), { inserted: 3, count: 10 });

    const again = await release("v2", "app:v2", ["--volume", `${DATA}:/data/`]);
    assert.equal(again.code, 0, describeResult(again));
    assert.match(again.stdout, /vol-app-web-v2 already current/, "same volume (a trailing slash is the same path): same spec");
  });

  test("a changed volume list is a new container; a missing volume is created with Railhead's labels", async () => {
    const r = await release("v2", "app:v2", ["--volume", `${EXTRA}:/extra:ro`, "--volume", `${DATA}:/data`]);
    assert.equal(r.code, 0, describeResult(r));
    assert.doesNotMatch(r.stdout, /already current/);
    assert.match(r.stdout, /created volume vol-extra/);
    assert.match(r.stdout, /renamed vol-app-web-v2-replaced-1/);
    assert.deepEqual((await mounts("vol-app-web-v2")).split(" ").sort(), [`${DATA}:/data:true`, `${EXTRA}:/extra:false`]);
    const labels = await h.sh(`docker volume inspect -f '{{index .Labels "railhead.managed"}} {{index .Labels "railhead.service"}} {{index .Labels "railhead.owner"}}' ${EXTRA}`);
    assert.equal(labels.stdout.trim(), `true ${SERVICE} app`);
    assert.equal((await sqlite("GET", "/sqlite/count")).count, 10);
    // The order of --volume options does not matter.
    const swapped = await release("v2", "app:v2", ["--volume", `${DATA}:/data`, "--volume", `${EXTRA}:/extra:ro`]);
    assert.match(swapped.stdout, /already current/, describeResult(swapped));
  });

  test("migrate --volume sees the same SQLite files", async () => {
    const script = "import os, sqlite3; print('rows', sqlite3.connect(os.environ['SQLITE_PATH']).execute('select count(*) from items').fetchone()[0])";
    const m = await h.tool(["migrate", "--service", SERVICE, "--version", "v2", "--image", rigImage("app:v2"), "--volume", `${DATA}:/data`, "--cmd", `python3 -c ${shq(script)}`], ENV);
    assert.equal(m.code, 0, describeResult(m));
    assert.match(m.stdout, /^rows 10$/m);
  });

  test("--wait-after pauses after a release, not when already current; rollback keeps the data", async () => {
    const t0 = Date.now();
    const back = await release("v1", "app:v1", ["--volume", `${DATA}:/data`, "--wait-after", "2"]);
    const took = Date.now() - t0;
    assert.equal(back.code, 0, describeResult(back));
    assert.match(back.stdout, /released v1 as vol-app-web-v1/);
    assert.match(back.stdout, /wait: waiting 2s before the next boot group/);
    assert.match(back.stdout, /wait: waited 2s/);
    assert.ok(took >= 2000, `took ${took} ms`);
    assert.equal((await sqlite("GET", "/sqlite/count")).count, 10, "the retained v1 sees v2's rows too");
    const again = await release("v1", "app:v1", ["--volume", `${DATA}:/data`, "--wait-after", "2"]);
    assert.equal(again.code, 0, describeResult(again));
    assert.match(again.stdout, /already current: no --wait-after pause/);
    assert.doesNotMatch(again.stdout, /waiting 2s/);
  });
});
