// e2e: Kamal's "two apps" (#7): two services (two stacks) on the same existing SSH hosts share each
// host's proxy, routed by domain; destroying one keeps the other serving. Apply harness (test
// equipment); `destroy` is an up of a program that registers nothing.
import { test } from "node:test";
import assert from "node:assert/strict";
import { scenario } from "../summary";
import { e2eStack, harness, hostKey, IMAGE, ip, Load, mustSucceed, rig, served, slot, up, containers } from "../support";

const [H1, H2] = [slot(0), slot(1)];
import { rigHost, wipeHost } from "../engine/rig";

const svc = (name: "alpha" | "beta", tag: string) => e2eStack(`e2e-${name}`, {}, { image: IMAGE(tag), hosts: { a: { ssh: { address: ip(H1), hostKey: hostKey(H1) } }, b: { ssh: { address: ip(H2), hostKey: hostKey(H2) } } }, servers: { web: ["a", "b"] } }, `e2e-${name}.yaml`);

test("two services on the same hosts, routed by domain; removing one keeps the other", { concurrency: false }, async () => {
  await scenario("two services by domain; remove one", async () => {
    // existing machines: start them clean (no server resource will)
    await Promise.all([H1, H2].map((h) => wipeHost(rig(), rigHost(rig(), h))));
    harness.forget("e2e-alpha");
    harness.forget("e2e-beta");
    mustSucceed(await up(svc("alpha", "v1")));
    mustSucceed(await up(svc("beta", "v2")));
    for (const h of [H1, H2]) {
      assert.equal(await served(ip(h), "alpha.test"), "v1", `alpha on ${h}`);
      assert.equal(await served(ip(h), "beta.test"), "v2", `beta on ${h}`);
    }
    const load = new Load(ip(H1), 4, "alpha.test");
    const r = await harness.destroy(svc("beta", "v2"));
    const l = await load.stop();
    mustSucceed(r);
    assert.equal(l.failed, 0, `alpha failed requests while beta was removed: ${l.failures.join("; ")}`);
    for (const h of [H1, H2]) {
      assert.equal(await served(ip(h), "alpha.test"), "v1", `alpha still served on ${h}`);
      assert.ok(!(await containers(h, true)).some((c) => c.startsWith("beta-")), `no beta container left on ${h}`);
    }
    assert.equal(harness.state("e2e-beta").resources.length, 0, "beta's state is empty");
  });
});
