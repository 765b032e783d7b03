// TEST EQUIPMENT self-test: proves the apply harness orders and decides steps the way harness.ts
// says the engine does, with a tiny local.Command program (tests/e2e/programs/semantics.ts). Needs
// no rig.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Harness, type UpResult } from "../harness";
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
      assert.equal(r.executed, 12);
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

  await t.test("replace: triggers change -> new create now, OLD delete at the very end", async () => {
    await scenario("harness: replace (create-before-delete)", async () => {
      const r = await up("replace");
      assert.equal(r.ok, true, r.error);
      const lines = newLines();
      before(lines, "r-create-2", "r-delete-1");
      assert.equal(lines[lines.length - 1], "r-delete-1", `old delete last: ${lines.join(" ")}`);
      assert.ok(!lines.includes("r-delete-2"), "the old delete runs the OLD command");
    });
  });

  await t.test("deleteBeforeReplace: old delete first", async () => {
    await scenario("harness: deleteBeforeReplace", async () => {
      const r = await up("dbr");
      assert.equal(r.ok, true, r.error);
      before(newLines(), "d-delete", "d-create-2");
    });
  });

  await t.test("removed resources are deleted at the end, dependents first", async () => {
    await scenario("harness: delete order", async () => {
      const r = await up("remove");
      assert.equal(r.ok, true, r.error);
      const lines = newLines();
      before(lines, "del-h", "del-g");
      assert.equal(h.state("semantics").resources.some((x) => x.name === "g"), false);
    });
  });

  await t.test("protect refuses a delete and names the resource", async () => {
    await scenario("harness: protect", async () => {
      const r = await up("unprotect-remove");
      assert.equal(r.ok, false);
      assert.match(r.error ?? "", /::p is protected/);
      assert.ok(!newLines().includes("del-p"));
      assert.equal((await up("unprotect")).ok, true);
      const r2 = await up("unprotect-remove");
      assert.equal(r2.ok, true, r2.error);
      assert.ok(newLines().includes("del-p"));
    });
  });

  await t.test("a failed create fails the up with its output; dependents never run; others are saved", async () => {
    await scenario("harness: failure", async () => {
      const r = await up("fail");
      assert.equal(r.ok, false);
      assert.match(r.error ?? "", /bad: Process exited with status 3: running "echo boom-output; exit 3":\nboom-output/);
      assert.ok(!newLines().includes("after-bad"));
      const st = h.state("semantics");
      assert.equal(st.resources.some((x) => x.name === "bad" || x.name === "after-bad"), false);
      assert.ok(st.resources.some((x) => x.name === "a"));
    });
  });
});
