// TEST EQUIPMENT: a tiny program (local.Command only) that proves the harness's ordering and
// step semantics; used by scenarios/harness-semantics.test.ts. Config `railhead:phase` selects a
// variant; `railhead:log` is the file every command appends to.
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";

const cfg = new pulumi.Config("railhead");
const phase = cfg.require("phase");
const log = cfg.require("log");
/** The phases after the protect-replace test (pr's triggers are 2 from then on). */
const late = ["protect-replace", "unprotect-replace", "fail", "after-fail", "final"].includes(phase);
const say = (word: string, sleep = 0) => `${sleep ? `sleep ${sleep}; ` : ""}echo ${word} >> ${log}; echo ${word}`;

class Group extends pulumi.ComponentResource {
  constructor(name: string, opts: pulumi.ComponentResourceOptions = {}) {
    super("test:index:Group", name, {}, opts);
    new command.local.Command(`${name}/slow-child`, { create: say("child", 0.6) }, { parent: this });
    this.registerOutputs({});
  }
}

const a = new command.local.Command("a", { create: say("a", 0.5), delete: say("del-a") });
// b's create changes in the phases whose PREVIEW must fail: if anything ran, "b-must-not-run" shows.
const previewFails = ["unprotect-remove-1", "check-fail", "unknown-type", "protect-replace"].includes(phase);
new command.local.Command("b", { create: say(phase === "update" ? "b2" : previewFails ? "b-must-not-run" : "b") }, { dependsOn: [a] });
new command.local.Command("c", { create: a.stdout.apply((s) => say(`c-after-${s}`)) });
const group = new Group("group");
new command.local.Command("e", { create: say("e") }, { dependsOn: [group] });
// replace: triggers change -> new create now, old delete at the end
new command.local.Command("r", {
  create: say(phase === "replace" ? "r-create-2" : "r-create-1"),
  delete: say(phase === "replace" ? "r-delete-2" : "r-delete-1"),
  triggers: [phase === "replace" ? 2 : 1],
});
// update: `update` runs instead of `create` when set
new command.local.Command("u", { create: say("u-create"), update: say("u-update"), stdin: phase === "update" ? "two" : "one" });
// ignoreChanges: a changed `create` is ignored, so nothing re-runs
new command.local.Command("i", { create: say(phase === "update" ? "i2" : "i1") }, { ignoreChanges: ["create"] });
if (phase !== "remove") {
  const g = new command.local.Command("g", { create: say("g"), delete: say("del-g") });
  new command.local.Command("h", { create: say("h"), delete: say("del-h", 0.2) }, { dependsOn: [g] });
}
if (phase === "dbr") {
  new command.local.Command("d", { create: say("d-create-2"), delete: say("d-delete"), triggers: [2] }, { deleteBeforeReplace: true });
} else {
  new command.local.Command("d", { create: say("d-create-1"), delete: say("d-delete"), triggers: [1] }, { deleteBeforeReplace: true });
}
if (!phase.startsWith("unprotect-remove") && !late) new command.local.Command("p", { create: say("p"), delete: say("del-p") }, { protect: phase !== "unprotect" });
if (phase === "fail") {
  const bad = new command.local.Command("bad", { create: "sleep 1; echo boom-output; exit 3" }, { dependsOn: [a] });
  new command.local.Command("after-bad", { create: say("after-bad") }, { dependsOn: [bad] });
}
// A replacement is built from the CURRENT inputs: ignoreChanges hides `create` from updates only.
const gen = phase === "replace" ? 2 : 1;
new command.local.Command("ri", { create: say(`ri-create-${gen}`), triggers: [gen] }, { ignoreChanges: ["create"] });
// Two independent resources whose deletes must overlap (one delete batch runs concurrently).
if (phase !== "remove" && !late) {
  new command.local.Command("k1", { create: say("k1"), delete: `sleep 1.5; ${say("del-k1")}` });
  new command.local.Command("k2", { create: say("k2"), delete: `sleep 1.5; ${say("del-k2")}` });
}
// Preview failures: a provider check failure, an unknown type, a protected replace.
if (phase === "check-fail") new command.remote.Command("nohost", { connection: { host: "" }, create: say("nohost") });
class Mystery extends pulumi.CustomResource {
  constructor(name: string) {
    super("test:index:Unknown", name, {});
  }
}
if (phase === "unknown-type") new Mystery("mystery");
// Protect refuses a replace only when old AND new are protected.
new command.local.Command("pr", { create: say(`pr-create-${late ? 2 : 1}`), delete: say("del-pr"), triggers: [late ? 2 : 1] }, { protect: phase !== "unprotect-replace" && phase !== "final" });
// Leftover deletes of a failed run: lr is replaced in the failing run, its old half is deleted at
// the END of the next run (after its creates), not first.
const lrGen = ["fail", "after-fail", "final"].includes(phase) ? 2 : 1;
new command.local.Command("lr", { create: say(`lr-create-${lrGen}`), delete: say(`lr-delete-${lrGen}`), triggers: [lrGen] });
if (phase === "after-fail") new command.local.Command("late", { create: `sleep 0.5; ${say("late")}` }, { dependsOn: [a] });
export const aOut = a.stdout;
