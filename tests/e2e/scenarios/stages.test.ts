// e2e: Kamal's "deploy with destinations" (#5): staging and production are two stacks of the same
// program on different rig hosts, and each leaves the other alone. Apply harness (test equipment).
import { test } from "node:test";
import assert from "node:assert/strict";
import { scenario } from "../summary";
import { containerIds, containers, deployUser, e2eStack, harness, hcloudHost, hostKey, IMAGE, ip, mustSucceed, served, slot, up } from "../support";

const [H1, H2, H3] = [slot(0), slot(1), slot(2)];

const staging = (tag: string) => e2eStack("e2e-staging", { "st-1": H1 }, { image: IMAGE(tag), hosts: { "st-1": hcloudHost(H1) } }, "e2e-staging.yaml");
const production = (tag: string) => e2eStack("e2e-production", { "prod-1": H2, "prod-2": H3 }, { image: IMAGE(tag), hosts: { "prod-1": hcloudHost(H2), "prod-2": hcloudHost(H3, "nbg1") } }, "e2e-production.yaml");

test("staging and production from the same program, isolated", { concurrency: false }, async () => {
  await scenario("staging + production stacks, isolated", async () => {
    harness.forget("e2e-staging");
    harness.forget("e2e-production");
    const first = await up(staging("v1"));
    mustSucceed(first);
    mustSucceed(await up(production("v1")));
    // The server's host key came from the program (tls.PrivateKey -> cloud-init ssh_keys); the rig
    // host presents it and every command pinned it, logged in as the deploy user.
    const generated = harness.state("e2e-staging").resources.find((x) => x.type === "tls:index/privateKey:PrivateKey");
    assert.equal(hostKey(H1), String(generated?.outputs.publicKeyOpenssh).trim(), "the booted server presents the generated key");
    const logins = first.actions.filter((a) => a.kind === "command" && a.target !== "local").map((a) => a.target?.split("@")[0]);
    assert.ok(logins.length > 0 && logins.every((u) => u === deployUser()), `staging's commands log in as ${deployUser()}: ${[...new Set(logins)].join(", ")}`);
    assert.equal(await served(ip(H1)), "v1");
    assert.equal(await served(ip(H2)), "v1");
    assert.equal(await served(ip(H3)), "v1");
    assert.ok((await containers(H1)).includes("e2estage-job-v1"), "staging runs its job on its one host");
    assert.ok(!(await containers(H2)).some((c) => c.includes("-job-")), "production has no job role");

    const prod2 = await containerIds(H2, "e2estage");
    const prod3 = await containerIds(H3, "e2estage");
    const r = await up(staging("v2"));
    mustSucceed(r);
    assert.equal(await served(ip(H1)), "v2", "staging moved to v2");
    assert.equal(await served(ip(H2)), "v1", "production stays on v1");
    assert.equal(await served(ip(H3)), "v1", "production stays on v1");
    assert.deepEqual(await containerIds(H2, "e2estage"), prod2, "production's containers untouched");
    assert.deepEqual(await containerIds(H3, "e2estage"), prod3, "production's containers untouched");
    const outside = r.actions.filter((a) => a.target && a.target !== "local" && !a.target.endsWith(ip(H1)) && a.target !== H1);
    assert.deepEqual(outside.map((a) => `${a.name}@${a.target}`), [], "staging's up touched only staging's host");
    const prodState = harness.state("e2e-production").resources.map((x) => x.urn);
    assert.ok(prodState.every((u) => u.startsWith("urn:pulumi:e2e-production::")), "separate state per stack");
  });
});
