// Log caps (issue 9 item 7) on the containers the host tool starts, and the release's stop and
// prune with and without the Engine API, on a rig host (h3), with a role that needs no proxy.
import { strict as assert } from "node:assert";
import { before, after, describe, test } from "node:test";
import { rigImage } from "../rig/rig";
import { describeResult, prepareHost, resetHost, shq, type ToolHost } from "./helpers";

const SERVICE = "lcap";
let h: ToolHost;

function worker(version: string, extra: string[] = []): string[] {
  return ["release", "--service", SERVICE, "--role", "worker", "--version", version, "--image", rigImage("app:v1"), "--readiness-delay", "1", "--stop-timeout", "3", ...extra];
}

async function logConfig(name: string): Promise<unknown> {
  const r = await h.sh(`docker inspect -f '{{json .HostConfig.LogConfig}}' ${shq(name)}`);
  assert.equal(r.code, 0, describeResult(r));
  return JSON.parse(r.stdout);
}

async function states(): Promise<string> {
  return (await h.sh(`docker ps -a --filter label=railhead.service=${SERVICE} --format '{{.Names}} {{.State}}' | sort`)).stdout.trim();
}

describe("log caps and the release's stop and prune on h3", () => {
  before(async () => {
    h = await prepareHost("h3");
    await resetHost(h, [SERVICE]);
  });
  after(async () => {
    await resetHost(h, [SERVICE]);
  });

  test("a release container gets json-file logs capped at 10m x 5; a role's own log options win", async () => {
    const r = await h.tool(worker("l1"), "A=1\n");
    assert.equal(r.code, 0, describeResult(r));
    assert.deepEqual(await logConfig(`${SERVICE}-worker-l1`), { Type: "json-file", Config: { "max-file": "5", "max-size": "10m" } });
    const own = await h.tool(worker("l2", ["--option", "log-opt=max-size=1m"]), "A=1\n");
    assert.equal(own.code, 0, describeResult(own));
    assert.deepEqual(await logConfig(`${SERVICE}-worker-l2`), { Type: "json-file", Config: { "max-size": "1m" } }, "the role's --log-opt replaces the defaults");
  });

  for (const api of ["on", "off"]) {
    test(`stop and prune with --retain 1 (RAILHEAD_DOCKER_API=${api})`, async () => {
      await resetHost(h, [SERVICE]);
      for (const v of ["p1", "p2", "p3"]) {
        const r = await h.sh([`RAILHEAD_DOCKER_API=${api}`, h.toolPath, "--host-label", "h3", ...worker(`${v}-${api}`, ["--retain", "1"])].map((w, i) => (i === 0 ? w : shq(w))).join(" "), "A=1\n");
        assert.equal(r.code, 0, describeResult(r));
      }
      assert.equal(await states(), [`${SERVICE}-worker-p2-${api} exited`, `${SERVICE}-worker-p3-${api} running`].join("\n"));
    });
  }
});
