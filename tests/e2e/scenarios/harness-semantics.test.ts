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
