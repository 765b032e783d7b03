// TEST EQUIPMENT self-test: proves the apply harness orders and decides steps the way harness.ts
// says the engine does, with a tiny local.Command program (tests/e2e/programs/semantics.ts). Needs
// no rig.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Harness, type UpResult } from "../harness";
import { planStep, dependentReplacements, REPLACE_KEYS } from "../engine/plan";
import type { CapturedOptions, ResourceState } from "../engine/state";
import { scenario } from "../summary";

const dir = join(__dirname, "..", "..", "..", "tmp", "e2e-semantics");
rmSync(dir, { recursive: true, force: true });
const h = new Harness({ dir });
const logFile = join(dir, "commands.log");
const program = join(__dirname, "..", "programs", "semantics.ts");

let mark = 0;
/** Lines the commands appended since the previous call. */
function newLines(): string[] {
  const all = existsSync(logFile) ? readFileSync(logFile, "utf8").split("\n").filter(Boolean) : [];
  const out = all.slice(mark);
  mark = all.length;
  return out;
}

async function up(phase: string): Promise<UpResult> {
  return h.up({ stack: "semantics", program, useRig: false, config: { phase, log: logFile } });
}

const before = (lines: string[], x: string, y: string) => {
  assert.ok(lines.includes(x), `${x} ran (${lines.join(" ")})`);
  assert.ok(lines.includes(y), `${y} ran (${lines.join(" ")})`);
  assert.ok(lines.indexOf(x) < lines.indexOf(y), `${x} before ${y}: ${lines.join(" ")}`);
};

test("harness semantics: ordering, update, replace, delete, protect, failure", { concurrency: false }, async (t) => {
  await t.test("create: dependsOn, Output inputs and a component in dependsOn order the steps", async () => {
    await scenario("harness: create + ordering", async () => {
      const r = await up("base");
      assert.equal(r.ok, true, r.error);
      const lines = newLines();
      before(lines, "a", "b"); // dependsOn
      before(lines, "a", "c-after-a"); // Output input (a.stdout)
      before(lines, "child", "e"); // dependsOn a component waits for its children
      const reg = (n: string) => r.registrations.find((x) => x.name === n);
      const aUrn = reg("a")?.urn as string;
      assert.ok(reg("b")?.options.dependencies.includes(aUrn), "b's dependencies captured");
      assert.deepEqual(reg("c")?.options.propertyDependencies.create, [aUrn], "c's property dependency captured");
      assert.equal(reg("p")?.options.protect, true);
      assert.equal(reg("d")?.options.deleteBeforeReplace, true);
      assert.equal(reg("d")?.options.deleteBeforeReplaceDefined, true);
      assert.equal(reg("group/slow-child")?.options.parent, reg("group")?.urn);
      assert.deepEqual(reg("i")?.options.ignoreChanges, ["create"]);
      assert.equal(r.executed, 17);
    });
  });

  await t.test("a second up with no change runs nothing", async () => {
    await scenario("harness: idempotent up", async () => {
      const r = await up("base");
      assert.equal(r.ok, true, r.error);
      assert.equal(r.executed, 0);
      assert.deepEqual(newLines(), []);
      assert.ok(r.steps.every((s) => s.op === "same"), JSON.stringify(r.steps.filter((s) => s.op !== "same")));
    });
  });

  await t.test("update: a changed create or stdin re-runs `update` if set, else `create`; ignoreChanges holds", async () => {
    await scenario("harness: update", async () => {
      const r = await up("update");
      assert.equal(r.ok, true, r.error);
      assert.deepEqual(newLines().sort(), ["b2", "u-update"]); // not "i2": its create change is ignored
    });
  });

  await t.test("replace: triggers change -> new create now, OLD delete at the very end; the new one from CURRENT inputs", async () => {
    await scenario("harness: replace (create-before-delete, current inputs)", async () => {
      const r = await up("replace");
      assert.equal(r.ok, true, r.error);
      const lines = newLines();
      before(lines, "r-create-2", "r-delete-1");
      assert.ok(["r-delete-1"].includes(lines[lines.length - 1]) || lines.slice(-2).includes("r-delete-1"), `old delete at the end: ${lines.join(" ")}`);
      assert.ok(!lines.includes("r-delete-2"), "the old delete runs the OLD command");
      // step_generator.go: a replacement is Check'ed from goal.Properties; ignoreChanges only hides updates
      assert.ok(lines.includes("ri-create-2"), `ri's replacement ran its current create: ${lines.join(" ")}`);
      assert.ok(!lines.includes("ri-create-1"), "not the ignoreChanges-filtered old create");
    });
  });

  await t.test("deleteBeforeReplace: old delete first", async () => {
    await scenario("harness: deleteBeforeReplace", async () => {
      const r = await up("dbr");
      assert.equal(r.ok, true, r.error);
      before(newLines(), "d-delete", "d-create-2");
    });
  });

  await t.test("removed resources are deleted at the end, dependents first, independent ones concurrently", async () => {
    await scenario("harness: delete batches", async () => {
      const r = await up("remove");
      assert.equal(r.ok, true, r.error);
      const lines = newLines();
      before(lines, "del-h", "del-g");
      assert.equal(h.state("semantics").resources.some((x) => x.name === "g"), false);
      // deployment_executor.go runs each ScheduleDeletes antichain with ExecuteParallel
      const k1 = r.steps.find((s) => s.name === "k1" && s.op === "delete");
      const k2 = r.steps.find((s) => s.name === "k2" && s.op === "delete");
      assert.ok(k1 && k2, "k1 and k2 deleted");
      assert.ok(k1.start < k2.end && k2.start < k1.end, `k1 [${k1.start}, ${k1.end}] and k2 [${k2.start}, ${k2.end}] deletes overlap`);
    });
  });

  const stateText = () => readFileSync(h.stateFile("semantics"), "utf8");

  await t.test("protect: a run that would delete a protected resource fails at the preview and changes NOTHING", async () => {
    await scenario("harness: protect (preview)", async () => {
      const st = stateText();
      const r = await up("unprotect-remove-1");
      assert.equal(r.ok, false);
      assert.match(r.error ?? "", /preview failed \(nothing was changed\).*::p" cannot be deleted because it is protected/s);
      assert.deepEqual(newLines(), [], "no command ran (b's changed create neither)");
      assert.equal(r.executed, 0);
      assert.equal(stateText(), st, "state unchanged");
      assert.equal((await up("unprotect")).ok, true);
      newLines();
      const r2 = await up("unprotect-remove-2");
      assert.equal(r2.ok, true, r2.error);
      assert.ok(newLines().includes("del-p"));
    });
  });

  await t.test("a provider check failure and an unknown type stop the run at the preview", async () => {
    await scenario("harness: preview check / unknown type", async () => {
      const st = stateText();
      const r = await up("check-fail");
      assert.equal(r.ok, false);
      assert.match(r.error ?? "", /preview failed .*nohost: check failed: connection\.host: Missing required property/s);
      const r2 = await up("unknown-type");
      assert.equal(r2.ok, false);
      assert.match(r2.error ?? "", /preview failed .*test:index:Unknown \(mystery\) is not supported/s);
      assert.deepEqual(newLines(), [], "no command ran");
      assert.equal(stateText(), st, "state unchanged");
    });
  });

  await t.test("protect refuses a replace only when old AND new are protected", async () => {
    await scenario("harness: protect (replace)", async () => {
      const r = await up("protect-replace");
      assert.equal(r.ok, false);
      assert.match(r.error ?? "", /unable to replace resource ".*::pr".*marked for protection/s);
      assert.deepEqual(newLines(), []);
      const r2 = await up("unprotect-replace"); // old protected, new not: allowed (step_generator.go)
      assert.equal(r2.ok, true, r2.error);
      before(newLines(), "pr-create-2", "del-pr");
    });
  });

  await t.test("a failed create fails the up with its output; dependents never run; others are saved", async () => {
    await scenario("harness: failure", async () => {
      const r = await up("fail");
      assert.equal(r.ok, false);
      assert.match(r.error ?? "", /bad: Process exited with status 3: running "sleep 1; echo boom-output; exit 3":\nboom-output/);
      const lines = newLines();
      assert.ok(!lines.includes("after-bad"));
      assert.ok(lines.includes("lr-create-2") && !lines.includes("lr-delete-1"), `lr replaced, old half left: ${lines.join(" ")}`);
      const st = h.state("semantics");
      assert.equal(st.resources.some((x) => x.name === "bad" || x.name === "after-bad"), false);
      assert.ok(st.resources.some((x) => x.name === "a"));
      assert.deepEqual(st.pendingDeletes.map((x) => x.name), ["lr"]);
    });
  });

  await t.test("leftover deletes of a failed run happen at the END of the next run", async () => {
    await scenario("harness: leftover deletes at the end", async () => {
      const r = await up("after-fail");
      assert.equal(r.ok, true, r.error);
      // step_generator.go GenerateDeletes: pending-delete (`res.Delete`) resources are deleted with the other deletes
      before(newLines(), "late", "lr-delete-1");
      assert.deepEqual(h.state("semantics").pendingDeletes, []);
    });
  });

  await t.test("destroy runs no program; a protected resource stops it at the preview", async () => {
    await scenario("harness: destroy", async () => {
      const gone = join(dir, "no-such-program.ts"); // pkg/engine/destroy.go: NullSource, the program is not run
      const r = await h.destroy({ stack: "semantics", program: gone, useRig: false });
      assert.equal(r.ok, false);
      assert.match(r.error ?? "", /preview failed .*::pr" cannot be deleted because it is protected/s);
      assert.deepEqual(newLines(), []);
      assert.equal((await up("final")).ok, true);
      newLines();
      const r2 = await h.destroy({ stack: "semantics", program: gone, useRig: false });
      assert.equal(r2.ok, true, r2.error);
      const lines = newLines();
      for (const x of ["del-a", "del-pr", "lr-delete-2"]) assert.ok(lines.includes(x), `${x} ran: ${lines.join(" ")}`);
      assert.deepEqual(h.state("semantics").resources, []);
    });
  });
});

const noOpts: CapturedOptions = { parent: "", dependencies: [], propertyDependencies: {}, protect: false, ignoreChanges: [], retainOnDelete: false, deleteBeforeReplace: false, deleteBeforeReplaceDefined: false, replaceOnChanges: [], additionalSecretOutputs: [], replaceWith: [], provider: "" };
const st = (type: string, inputs: Record<string, unknown>, options: Partial<CapturedOptions> = {}, urn = `urn:x::${type}`): ResourceState => ({ urn, type, name: urn, custom: true, id: "1", inputs, outputs: {}, options: { ...noOpts, ...options }, secretInputs: [] });

test("harness semantics: replace keys and delete-before-replace of the Hetzner and AWS types Railhead registers", () => {
  const plan = (type: string, olds: Record<string, unknown>, news: Record<string, unknown>, options: Partial<CapturedOptions> = {}) => planStep(type, st(type, olds), news, { ...noOpts, ...options }, new Set());
  // terraform-provider-hcloud internal/server/resource.go: image/location/user_data/ssh_keys ForceNew;
  // server_type is an update (power off + change type). Named (SetAutonaming) SDKv2 -> DBR.
  const srv = { name: "s", serverType: "cx22", image: "debian-12", location: "fsn1", userData: "a", sshKeys: ["1"] };
  assert.equal(plan("hcloud:index/server:Server", srv, { ...srv, serverType: "cx32" }).op, "update");
  for (const k of ["image", "location", "userData", "sshKeys"]) {
    const p = plan("hcloud:index/server:Server", srv, { ...srv, [k]: k === "sshKeys" ? ["2"] : "other" });
    assert.equal(p.op, "replace", k);
    assert.equal(p.deleteBeforeReplace, true, `${k}: a named SDKv2 resource replaces delete-before-create (bridge nameRequiresDeleteBeforeReplace)`);
  }
  assert.equal(plan("hcloud:index/server:Server", srv, { ...srv, image: "x" }, { deleteBeforeReplace: false, deleteBeforeReplaceDefined: true }).deleteBeforeReplace, false, "the program's option overrides the provider");
  // internal/network/resource.go: ip_range ForceNew, named -> DBR; name is an update
  const net = { name: "n", ipRange: "10.0.0.0/16" };
  assert.deepEqual([plan("hcloud:index/network:Network", net, { ...net, ipRange: "10.1.0.0/16" })].map((p) => [p.op, p.deleteBeforeReplace]), [["replace", true]]);
  assert.equal(plan("hcloud:index/network:Network", net, { ...net, name: "m" }).op, "update");
  // plugin-framework resources (sshkey, primaryip, server network): RequiresReplace, never name-DBR (pf provider_diff.go)
  const key = { name: "k", publicKey: "ssh-ed25519 A" };
  assert.deepEqual([plan("hcloud:index/sshKey:SshKey", key, { ...key, publicKey: "ssh-ed25519 B" })].map((p) => [p.op, p.deleteBeforeReplace]), [["replace", false]]);
  assert.equal(plan("hcloud:index/sshKey:SshKey", key, { ...key, name: "k2" }).op, "update");
  const ip = { name: "i", type: "ipv4", location: "fsn1", assigneeType: "server", autoDelete: false };
  assert.deepEqual([plan("hcloud:index/primaryIp:PrimaryIp", ip, { ...ip, location: "nbg1" })].map((p) => [p.op, p.deleteBeforeReplace]), [["replace", false]]);
  assert.equal(plan("hcloud:index/primaryIp:PrimaryIp", ip, { ...ip, name: "j" }).op, "update");
  assert.deepEqual(REPLACE_KEYS["hcloud:index/serverNetwork:ServerNetwork"], ["serverId", "networkId", "subnetId", "ip"]);
  const sn = { serverId: 1, subnetId: "5", ip: "10.0.1.5" };
  assert.deepEqual([plan("hcloud:index/serverNetwork:ServerNetwork", sn, { ...sn, ip: "10.0.1.6" })].map((p) => [p.op, p.deleteBeforeReplace]), [["replace", false]]);
  // internal/network/resource_subnet.go, internal/firewall/attachment_resource.go (SDKv2, unnamed: no DBR)
  const sub = { networkId: 1, type: "cloud", networkZone: "eu-central", ipRange: "10.0.1.0/24" };
  assert.deepEqual([plan("hcloud:index/networkSubnet:NetworkSubnet", sub, { ...sub, ipRange: "10.0.2.0/24" })].map((p) => [p.op, p.deleteBeforeReplace]), [["replace", false]]);
  assert.equal(plan("hcloud:index/firewallAttachment:FirewallAttachment", { firewallId: 1, labelSelectors: ["a"] }, { firewallId: 1, labelSelectors: ["b"] }).op, "update");
  assert.equal(plan("hcloud:index/firewall:Firewall", { name: "f", rules: [] }, { name: "f", rules: [{ port: "22" }] }).op, "update", "a Firewall has no ForceNew key");
  // pulumi-aws provider/resources.go: aws_s3_bucket `bucket` is auto-named -> an explicit bucket replaces delete-before-create
  assert.deepEqual([plan("aws:s3/bucket:Bucket", { bucket: "a" }, { bucket: "b" })].map((p) => [p.op, p.deleteBeforeReplace]), [["replace", true]]);
  assert.equal(plan("aws:s3/bucketVersioning:BucketVersioning", { bucket: "a" }, { bucket: "b" }).op, "replace");
  // pulumi-docker provider/provider.go Diff: registry username/password changes are no diff; server is
  const img = { imageName: "r/x:1", registry: { server: "r", username: "u", password: "p" } };
  assert.equal(plan("docker:index/image:Image", img, { ...img, registry: { server: "r", username: "u2", password: "p2" } }).op, "same");
  assert.equal(plan("docker:index/image:Image", img, { ...img, registry: { server: "r2", username: "u", password: "p" } }).op, "update");
  // step_generator.go DBR: dependents replaced through a replace key are deleted first, dependents-first
  const N = st("hcloud:index/network:Network", net, {}, "urn:net");
  const S = st("hcloud:index/networkSubnet:NetworkSubnet", sub, { propertyDependencies: { networkId: ["urn:net"] } }, "urn:sub");
  const A = st("hcloud:index/serverNetwork:ServerNetwork", sn, { propertyDependencies: { subnetId: ["urn:sub"], serverId: ["urn:srv"] } }, "urn:att");
  const L = st("command:remote:Command", {}, { propertyDependencies: { create: ["urn:net"] } }, "urn:cmd"); // create is no replace key
  assert.deepEqual(dependentReplacements("urn:net", [N, S, A, L]).map((r) => r.urn), ["urn:att", "urn:sub"]);
});

test("harness semantics: docker.Image context hash (file modes, `!` exceptions) and SSH dial retries", async () => {
  const { mkdtempSync, writeFileSync, chmodSync, mkdirSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const { withContextDigest } = await import("../engine/docker");
  const ctxDir = mkdtempSync(join(tmpdir(), "railhead-ctx-"));
  try {
    mkdirSync(join(ctxDir, "log"));
    writeFileSync(join(ctxDir, "Dockerfile"), "FROM scratch\n");
    writeFileSync(join(ctxDir, "app.sh"), "echo hi\n");
    writeFileSync(join(ctxDir, "log", "a.log"), "1");
    writeFileSync(join(ctxDir, "log", "keep.log"), "1");
    writeFileSync(join(ctxDir, ".dockerignore"), "log\n!log/keep.log\n");
    const digest = () => (withContextDigest({ build: { context: ctxDir } }, ctxDir).build as { contextDigest: string }).contextDigest;
    const d0 = digest();
    writeFileSync(join(ctxDir, "log", "a.log"), "2");
    assert.equal(digest(), d0, "an ignored file does not change the digest");
    writeFileSync(join(ctxDir, "log", "keep.log"), "2");
    const d1 = digest();
    assert.notEqual(d1, d0, "a file re-included by a ! pattern does");
    chmodSync(join(ctxDir, "app.sh"), 0o755);
    assert.notEqual(digest(), d1, "a mode change does (hashPath writes fileMode.String())");
  } finally {
    rmSync(ctxDir, { recursive: true, force: true });
  }
  // pulumi-command remote/connection.go: dialErrorLimit N -> N+1 attempts (gives up when dials > limit)
  const { SshClient } = await import("../engine/ssh");
  const { generateKeyPairSync } = await import("node:crypto");
  const pem = generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString();
  const ssh = new SshClient({ host: "127.0.0.1", port: 1, user: "nobody", privateKey: pem, dialErrorLimit: 2, perDialTimeout: 2 });
  const r = await ssh.run("true");
  ssh.close();
  assert.match(r.stderr, /gave up dialing 127\.0\.0\.1 after 3 attempts \(dialErrorLimit 2\)/);
  // bounded by the step's deadline (customTimeouts): unlimited retries stop at it
  const t0 = Date.now();
  const ssh2 = new SshClient({ host: "127.0.0.1", port: 1, user: "nobody", privateKey: pem, dialErrorLimit: -1, perDialTimeout: 2 }, Date.now() + 1500);
  const r2 = await ssh2.run("true");
  ssh2.close();
  assert.match(r2.stderr, /gave up dialing/);
  assert.ok(Date.now() - t0 < 8000, `stopped at the deadline (${Date.now() - t0} ms)`);
});

test("harness semantics: hcloud network attachments, a privateIp change, a network range change", { concurrency: false }, async (t) => {
  const hprog = join(__dirname, "..", "programs", "hcloud-semantics.ts");
  const base = { ipRange: "10.0.0.0/16", ip: "10.0.1.5", serverType: "cx22", publicKey: "ssh-ed25519 AAAA1", dbr: "true" };
  const hup = (over: Record<string, string>) => h.up({ stack: "hsem", program: hprog, useRig: false, config: { ...base, ...over } });
  const attachments = () => h.state("hsem").cloud?.attachments ?? {};
  const serverId = () => String(h.state("hsem").resources.find((r) => r.name === "srv")?.id);
  h.forget("hsem");
  await t.test("create attaches the server", async () => {
    await scenario("harness: hcloud create + attach", async () => {
      const r = await hup({});
      assert.equal(r.ok, true, r.error);
      assert.deepEqual(Object.values(attachments()), ["10.0.1.5"]);
    });
  });
  await t.test("privateIp change create-before-delete DETACHES the server (the provider keeps the old attachment, the old delete detaches)", async () => {
    await scenario("harness: privateIp change without deleteBeforeReplace", async () => {
      const r = await hup({ ip: "10.0.1.6", dbr: "false" });
      assert.equal(r.ok, true, r.error);
      assert.deepEqual(attachments(), {}, "no attachment left: the failure mode Railhead's ServerNetwork avoids with deleteBeforeReplace");
    });
  });
  await t.test("privateIp change delete-before-replace re-attaches with the new address", async () => {
    await scenario("harness: privateIp change with deleteBeforeReplace", async () => {
      const fixed = await hup({ ip: "10.0.1.7", dbr: "true" });
      assert.equal(fixed.ok, true, fixed.error);
      const r = await hup({ ip: "10.0.1.8", dbr: "true" });
      assert.equal(r.ok, true, r.error);
      assert.deepEqual(attachments(), { [`${serverId()}/${String(h.state("hsem").resources.find((x) => x.name === "net")?.id)}`]: "10.0.1.8" });
    });
  });
  await t.test("serverType is an update; a key rotation replaces the SshKey create-before-delete", async () => {
    await scenario("harness: serverType update, key replace", async () => {
      const id = serverId();
      const r = await hup({ ip: "10.0.1.8", serverType: "cx32", publicKey: "ssh-ed25519 AAAA2" });
      assert.equal(r.ok, true, r.error);
      assert.equal(serverId(), id, "same server");
      assert.ok(r.actions.some((a) => a.name === "srv" && /power off \+ change type/.test(a.detail ?? "")));
      const key = r.steps.filter((s) => s.name === "key").map((s) => s.op);
      assert.deepEqual(key, ["replace", "delete-replaced"]);
    });
  });
  await t.test("a network range change replaces the named network delete-before-create, its subnet and attachment first", async () => {
    await scenario("harness: network ipRange replace (DBR chain)", async () => {
      const r = await hup({ ip: "10.0.1.8", serverType: "cx32", publicKey: "ssh-ed25519 AAAA2", ipRange: "10.1.0.0/16" });
      assert.equal(r.ok, true, r.error);
      const seq = r.steps.map((s) => `${s.name}:${s.op}`);
      const at = (x: string) => {
        const i = seq.indexOf(x);
        assert.ok(i >= 0, `${x} in ${seq.join(" ")}`);
        return i;
      };
      assert.ok(at("srv-net:delete-replaced") < at("subnet:delete-replaced") && at("subnet:delete-replaced") < at("net:replace"), seq.join(" "));
      assert.ok(at("net:replace") < at("subnet:create") && at("subnet:create") < at("srv-net:create"), seq.join(" "));
      assert.deepEqual(Object.values(attachments()), ["10.0.1.8"]);
    });
  });
});
