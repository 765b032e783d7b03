// TEST EQUIPMENT (e2e apply harness): one `up` in its own process (the Pulumi SDK's module graph and
// runtime settings are process-global). Runs the program under the mock runtime and applies each
// registration in the mock's newResource, against the previous state. See harness.ts for the
// semantics mirrored and their sources.
//   node --import tsx tests/e2e/engine/child.ts JOB.json
import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import * as pulumi from "@pulumi/pulumi";
import { applyStep, isSupported, setProviderRef, StepError, syncFirewalls, type Action, type ApplyContext } from "./apply";
import { checkInputs } from "./check";
import { deleteBatches, dependenciesOf, dependentReplacements, planStep, type StepOp } from "./plan";
import { loadRigInfo, type RigInfo } from "./rig";
import { loadState, saveState, type CapturedOptions, type ResourceState, type StackState } from "./state";
import { plainValue, UNKNOWN } from "./values";
import { getRegistryImage, withContextDigest } from "./docker";

export interface Job {
  project: string;
  stack: string;
  /** Absolute path of the program module (index.ts) or a test program. */
  program: string;
  /** `<project>:key` -> value, as `pulumi.runtime.setAllConfig` takes them. */
  config: Record<string, string>;
  secretKeys: string[];
  stateFile: string;
  resultFile: string;
  logFile: string;
  hostMap: Record<string, string>;
  useRig: boolean;
  /**
   * "preview": plan and check every registration, change nothing (the engine's preview, which
   * `pulumi up` runs first and stops on). "up": apply. "destroy" / "preview-destroy": no program
   * (pkg/engine/destroy.go NullSource), every resource in state is deleted.
   */
  mode: "preview" | "up" | "destroy" | "preview-destroy";
}

export interface Registration {
  urn: string;
  type: string;
  name: string;
  custom: boolean;
  inputs: Record<string, unknown>;
  secretInputs: string[];
  options: CapturedOptions;
  /** Milliseconds since the run started, when the SDK sent the registration. */
  at: number;
}

export interface StepRecord {
  urn: string;
  type: string;
  name: string;
  op: StepOp | "delete" | "delete-replaced" | "skip";
  reason?: string;
  changed?: string[];
  start: number;
  end: number;
  ok: boolean;
  error?: string;
}

export interface UpResultFile {
  ok: boolean;
  error?: string;
  registrations: Registration[];
  steps: StepRecord[];
  actions: Action[];
  outputs: Record<string, unknown>;
  notes: string[];
  seconds: number;
}

// ---------------------------------------------------------------------------------------------

interface RegisterRequest {
  getType(): string;
  getName(): string;
  getParent(): string;
  getCustom(): boolean;
  getDependenciesList(): string[];
  getPropertydependenciesMap(): { forEach(cb: (v: { getUrnsList(): string[] }, k: string) => void): void };
  getProtect(): boolean;
  getIgnorechangesList(): string[];
  getRetainondelete(): boolean;
  getDeletebeforereplace(): boolean;
  getDeletebeforereplacedefined(): boolean;
  getReplaceonchangesList(): string[];
  getAdditionalsecretoutputsList(): string[];
  getReplaceWithList?(): string[];
  getReplacementTrigger?(): { toJavaScript(): unknown } | undefined;
  getProvider(): string;
  getCustomtimeouts(): { getCreate(): string; getUpdate(): string; getDelete(): string } | undefined;
}

interface Handoff {
  urn: string;
  type: string;
  name: string;
  custom: boolean;
  options: CapturedOptions;
}

function captureOptions(req: RegisterRequest): CapturedOptions {
  const propertyDependencies: Record<string, string[]> = {};
  req.getPropertydependenciesMap().forEach((v, k) => (propertyDependencies[k] = v.getUrnsList()));
  const ct = req.getCustomtimeouts();
  const trigger = req.getReplacementTrigger?.();
  return {
    parent: req.getParent(),
    dependencies: req.getDependenciesList(),
    propertyDependencies,
    protect: req.getProtect(),
    ignoreChanges: req.getIgnorechangesList(),
    retainOnDelete: req.getRetainondelete(),
    deleteBeforeReplace: req.getDeletebeforereplace(),
    deleteBeforeReplaceDefined: req.getDeletebeforereplacedefined(),
    replaceOnChanges: req.getReplaceonchangesList(),
    additionalSecretOutputs: req.getAdditionalsecretoutputsList(),
    replaceWith: req.getReplaceWithList?.() ?? [],
    replacementTrigger: trigger ? trigger.toJavaScript() : undefined,
    provider: req.getProvider(),
    customTimeouts: ct ? { create: ct.getCreate(), update: ct.getUpdate(), delete: ct.getDelete() } : undefined,
  };
}

/** The mock monitor's URN rule (runtime/mocks.js newUrn). */
function urnOf(stack: string, project: string, parent: string, type: string, name: string): string {
  let t = type;
  if (parent) t = `${parent.split("::")[2].split("$").pop()}$${type}`;
  return `urn:pulumi:${stack}::${project}::${t}::${name}`;
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const job = JSON.parse(readFileSync(process.argv[2], "utf8")) as Job;
  const t0 = Date.now();
  const log = (line: string) => appendFileSync(job.logFile, `${line}\n`);
  const old: StackState = loadState(job.stateFile, job.stack);
  const oldByUrn = new Map(old.resources.map((r) => [r.urn, r]));
  let serial = old.serial;
  const rig: RigInfo | undefined = job.useRig ? loadRigInfo() : undefined;
  const preview = job.mode === "preview" || job.mode === "preview-destroy";

  /** The new state, in registration order. */
  const next = new Map<string, ResourceState>();
  const pending: ResourceState[] = [...old.pendingDeletes];
  const replacedThisRun = new Set<string>();
  const registrations: Registration[] = [];
  const steps: StepRecord[] = [];
  const actions: Action[] = [];
  const notes: string[] = [];
  const background: Promise<unknown>[] = [];
  let failure: string | undefined;
  const fail = (msg: string) => {
    if (!failure) failure = msg;
    log(`ERROR ${msg}`);
  };

  const ctx: ApplyContext = {
    rig,
    hostMap: job.hostMap,
    live: () => [...next.values(), ...old.resources.filter((r) => !next.has(r.urn))],
    nextSerial: () => ++serial,
    log,
    action: (a) => actions.push(a),
    background: (p) => background.push(p.catch((e: unknown) => fail(`background: ${String(e)}`))),
    cloud: old.cloud ?? { attachments: {} },
  };

  const deleted = new Set<string>();
  const save = () => {
    if (preview) return; // a preview changes nothing, state included
    // Resources not re-registered (not reached after a failure, or to be deleted) keep their old state.
    const resources = [...next.values(), ...old.resources.filter((r) => !next.has(r.urn) && !deleted.has(r.urn))];
    saveState(job.stateFile, { version: 1, stack: job.stack, resources, pendingDeletes: pending, serial, cloud: ctx.cloud });
  };

  // pulumi/pulumi pkg/resource/deploy/step.go DeleteStep.Apply: "Refuse to delete protected
  // resources (unless we're replacing them ...)": a plain delete of a protected resource fails,
  // in the preview too (Apply runs there and returns deleteProtectedError).
  const protectedDelete = (r: ResourceState) =>
    `resource "${r.urn}" cannot be deleted because it is protected (remove protect: true from the program and run up first)`;
  const deleteOne = async (r: ResourceState, why: "delete" | "delete-replaced"): Promise<void> => {
    const start = Date.now();
    if (why === "delete" && r.options.protect) throw new StepError(protectedDelete(r));
    if (r.custom && !r.options.retainOnDelete) await applyStep(ctx, "delete", { urn: r.urn, type: r.type, name: r.name, id: r.id, options: r.options }, r, {});
    steps.push({ urn: r.urn, type: r.type, name: r.name, op: why, reason: r.options.retainOnDelete ? "retainOnDelete: dropped from state only" : undefined, start: start - t0, end: Date.now() - t0, ok: true });
  };

  // --- intercept the mock monitor's RegisterResource to see the options newResource is not given
  let handoff: Handoff | undefined;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mocksModule = require("@pulumi/pulumi/runtime/mocks") as {
    MockMonitor: { prototype: { registerResource(req: RegisterRequest, cb: unknown): Promise<void> } };
  };
  const proto = mocksModule.MockMonitor.prototype;
  const original = proto.registerResource;
  proto.registerResource = function (this: unknown, req: RegisterRequest, cb: unknown) {
    // mocks.js calls `this.mocks.newResource(...)` synchronously, before its first await, so the
    // handoff is consumed by exactly this request's newResource (checked by type and name there).
    handoff = {
      urn: urnOf(job.stack, job.project, req.getParent(), req.getType(), req.getName()),
      type: req.getType(),
      name: req.getName(),
      custom: req.getCustom(),
      options: captureOptions(req),
    };
    return original.call(this, req, cb);
  };

  const inflight = new Set<Promise<unknown>>();

  /**
   * The preview's step for one registration: plan and check only, nothing applied. Outputs a
   * preview cannot know (a create's computed outputs, a command's stdout after an update) are left
   * out, which the SDK resolves as unknown in a dry run (runtime/rpc.js resolveProperties), as the
   * engine's preview does.
   */
  const previewResource = (h: Handoff, prev: ResourceState | undefined, inputs: Record<string, unknown>): { id: string | undefined; state: Record<string, unknown> } => {
    const plan = planStep(h.type, prev, inputs, h.options, replacedThisRun);
    const at = Date.now() - t0;
    const problems = checkInputs(h.type, inputs).map((f) => `${h.urn}: check failed: ${f}`);
    if (plan.op === "replace" && prev) {
      replacedThisRun.add(h.urn);
      // step_generator.go: "If this resource is protected we can't replace it": new.Protect && old.Protect.
      if (prev.options.protect && h.options.protect) problems.push(`unable to replace resource "${h.urn}" (${plan.reason}) as it is currently marked for protection (remove protect: true first)`);
      if (plan.deleteBeforeReplace) {
        for (const d of dependentReplacements(h.urn, old.resources)) {
          if (d.options.protect) problems.push(`unable to replace resource "${d.urn}" as part of replacing "${h.urn}" as it is currently marked for protection`);
          else condemnedWith.set(d.urn, h.urn);
        }
      }
    }
    for (const p of problems) fail(p);
    steps.push({ urn: h.urn, type: h.type, name: h.name, op: plan.op, reason: plan.reason, changed: plan.changed, start: at, end: at, ok: problems.length === 0, error: problems[0] });
    if (plan.op === "same" && prev) return { id: prev.id, state: prev.outputs };
    const known = Object.fromEntries(Object.entries(plan.inputs).filter(([, v]) => v !== UNKNOWN));
    if (plan.op === "update" && prev) {
      const computedChange = h.type.startsWith("command:") || h.type === "docker:index/image:Image";
      return { id: prev.id, state: computedChange ? known : { ...prev.outputs, ...known } };
    }
    return { id: undefined, state: known };
  };
  /** Resources a delete-before-replace condemned with the replaced one (dependent URN -> replaced URN). */
  const condemnedWith = new Map<string, string>();

  const newResource = async (args: pulumi.runtime.MockResourceArgs): Promise<{ id: string | undefined; state: Record<string, unknown> }> => {
    const h = handoff;
    handoff = undefined;
    if (!h || h.type !== args.type || h.name !== args.name) throw new Error(`harness: lost the registration options of ${args.name} [${args.type}] (SDK changed?)`);
    const secretInputs: string[] = [];
    let inputs = (await plainValue(args.inputs, "", secretInputs)) as Record<string, unknown>;
    // docker.Image: the provider's Check adds the build context's hash (engine/docker.ts).
    if (h.type === "docker:index/image:Image") inputs = withContextDigest(inputs, process.cwd());
    registrations.push({ urn: h.urn, type: h.type, name: h.name, custom: h.custom, inputs, secretInputs, options: h.options, at: Date.now() - t0 });
    const base: ResourceState = { urn: h.urn, type: h.type, name: h.name, custom: h.custom, id: "", inputs, outputs: {}, options: h.options, secretInputs };
    if (!h.custom || h.type === "pulumi:pulumi:Stack") {
      next.set(h.urn, base); // components: no provider, no effect
      return { id: undefined, state: {} };
    }
    if (!isSupported(h.type, h.custom)) {
      const msg = `harness: resource type ${h.type} (${h.name}) is not supported by the e2e apply harness`;
      fail(msg);
      throw new Error(msg);
    }
    setProviderRef(h.urn, h.options.provider);
    const prev = oldByUrn.get(h.urn);
    if (preview) {
      next.set(h.urn, base);
      return previewResource(h, prev, inputs);
    }
    const plan = planStep(h.type, prev, inputs, h.options, replacedThisRun);
    const start = Date.now() - t0;
    const record = (ok: boolean, error?: string) =>
      steps.push({ urn: h.urn, type: h.type, name: h.name, op: ok || plan.op !== "same" ? plan.op : "skip", reason: plan.reason, changed: plan.changed, start, end: Date.now() - t0, ok, error });
    if (failure) {
      // The engine stops starting steps once one failed; unchanged resources still keep their state.
      if (plan.op === "same" && prev) {
        next.set(h.urn, { ...prev, options: h.options });
        return { id: prev.id, state: prev.outputs };
      }
      steps.push({ urn: h.urn, type: h.type, name: h.name, op: "skip", reason: "an earlier step failed", start, end: start, ok: false });
      throw new Error(`${h.name}: not started, an earlier step failed`);
    }
    const work = (async () => {
      try {
        let result;
        if (plan.op === "same" && prev) {
          next.set(h.urn, { ...prev, options: h.options, secretInputs });
          record(true);
          return { id: prev.id, state: prev.outputs };
        }
        if (plan.op === "replace" && prev) {
          // step_generator.go: a replace is refused only when old AND new are protected (the
          // preview already stopped the run; kept here for a state changed in between).
          if (prev.options.protect && h.options.protect) throw new StepError(`unable to replace resource "${h.urn}" (${plan.reason}) as it is currently marked for protection`);
          replacedThisRun.add(h.urn);
          if (plan.deleteBeforeReplace) {
            // step_generator.go DBR branch: dependents that the replacement condemns are deleted
            // first (dependents before what they depend on), then the old resource, then the create.
            for (const d of dependentReplacements(h.urn, [...oldByUrn.values()])) {
              await deleteOne(d, "delete-replaced");
              deleted.add(d.urn);
              oldByUrn.delete(d.urn);
            }
            await applyStep(ctx, "delete", h, prev, {});
            deleted.add(h.urn);
            oldByUrn.delete(h.urn);
            result = await applyStep(ctx, "create", h, undefined, plan.inputs);
          } else {
            result = await applyStep(ctx, "create", h, undefined, plan.inputs);
            pending.push(prev); // the old one is deleted at the end of the update
          }
        } else if (plan.op === "update" && prev) {
          result = await applyStep(ctx, "update", h, prev, plan.inputs);
        } else {
          result = await applyStep(ctx, "create", h, undefined, plan.inputs);
        }
        next.set(h.urn, { ...base, inputs: plan.inputs, id: result.id, outputs: result.outputs, target: result.target ?? prev?.target });
        if (h.type.startsWith("hcloud:index/server") || h.type.startsWith("hcloud:index/firewall")) notes.push(...(await syncFirewalls(ctx)));
        record(true);
        return { id: result.id, state: result.outputs };
      } catch (e) {
        const msg = e instanceof Error ? e.message : String(e);
        record(false, msg);
        fail(msg);
        throw new Error(msg);
      } finally {
        save();
      }
    })();
    inflight.add(work);
    work.catch(() => undefined).finally(() => inflight.delete(work));
    return work;
  };

  // The SDK rejects every dependent's outputs after a failure; log each distinct message once.
  const seenRejections = new Set<string>();
  process.on("unhandledRejection", (e) => {
    const msg = e instanceof Error ? e.message : String(e);
    // Before any step failed, an unhandled rejection is the PROGRAM failing (an error thrown in an
    // apply): the Node language host exits with it and the engine fails the preview or update.
    if (!failure) fail(`program: ${msg}`);
    if (!seenRejections.has(msg)) log(`(unhandled rejection) ${msg}`);
    seenRejections.add(msg);
  });

  let outputs: Record<string, unknown> = {};
  if (job.mode !== "destroy" && job.mode !== "preview-destroy") {
    await pulumi.runtime.setMocks(
      {
        newResource: newResource as unknown as pulumi.runtime.Mocks["newResource"],
        call: async (args) => {
          if (args.token === "docker:index/getRegistryImage:getRegistryImage") {
            const inputs = (await plainValue(args.inputs, "", [])) as Record<string, unknown>;
            try {
              return await getRegistryImage(inputs);
            } catch (e) {
              fail(e instanceof Error ? e.message : String(e));
              throw e;
            }
          }
          if (args.token === "hcloud:index/getNetworks:getNetworks") {
            // terraform-provider-hcloud internal/network/data_source.go (list): the project's
            // networks; here the live Network resources of this stack (the harness's cloud).
            const networks = ctx.live().filter((r) => r.type === "hcloud:index/network:Network" && r.id);
            return { id: "networks", networks: networks.map((n) => ({ id: Number(n.id), name: n.inputs.name, ipRange: n.inputs.ipRange, labels: n.inputs.labels ?? {}, deleteProtection: false, exposeRoutesToVswitch: false })) };
          }
          const msg = `harness: invoke ${args.token} is not supported by the e2e apply harness`;
          fail(msg);
          throw new Error(msg);
        },
      },
      job.project,
      job.stack,
      preview,
    );
    pulumi.runtime.setAllConfig(job.config, job.secretKeys);

    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const mod = require(job.program) as Record<string, unknown>;
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const settings = require("@pulumi/pulumi/runtime/settings") as { waitForRPCs(): Promise<void> };
      for (;;) {
        await settings.waitForRPCs();
        await Promise.allSettled([...inflight, ...background]);
        if (inflight.size === 0) break;
      }
      await Promise.allSettled(background);
      if (!preview) outputs = await resolveExports(mod);
    } catch (e) {
      fail(`program: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    }
  }
  // `pulumi destroy` runs no program: pkg/engine/destroy.go gives the deployment
  // deploy.NewNullSource (pkg/resource/deploy/source_null.go), which registers nothing, so every
  // resource in state is a delete.

  // --- the end of the update (deployment_executor.go performPostSteps -> step_generator.go
  // GenerateDeletes): resources no longer registered, AND the old halves of replacements, both of
  // this run and pending from a failed run (`res.Delete` in the snapshot: "Planner decided to
  // delete ... due to replacement"), in dependency batches run concurrently (deleteBatches).
  const gone = old.resources.filter((r) => !next.has(r.urn) && !deleted.has(r.urn) && !condemnedWith.has(r.urn));
  if (preview) {
    for (const r of gone) {
      const at = Date.now() - t0;
      const problem = r.options.protect ? protectedDelete(r) : undefined;
      if (problem) fail(problem);
      steps.push({ urn: r.urn, type: r.type, name: r.name, op: "delete", start: at, end: at, ok: !problem, error: problem });
    }
  } else if (!failure) {
    const all = [...pending.splice(0), ...gone];
    const errored = new Set<string>();
    for (const batch of deleteBatches(all)) {
      // performPostSteps: a batch skips what a failed delete depends on (TransitiveDependenciesOf).
      const runnable = batch.filter((r) => !errored.has(r.urn));
      const results = await Promise.allSettled(runnable.map((r) => deleteOne(r, gone.includes(r) ? "delete" : "delete-replaced")));
      results.forEach((res, i) => {
        const r = runnable[i];
        if (res.status === "fulfilled") {
          deleted.add(r.urn);
          return;
        }
        fail(res.reason instanceof Error ? res.reason.message : String(res.reason));
        const stack = [r];
        while (stack.length > 0) {
          const cur = stack.pop() as ResourceState;
          for (const d of dependenciesOf(cur)) {
            if (errored.has(d)) continue;
            errored.add(d);
            const dr = all.find((x) => x.urn === d);
            if (dr) stack.push(dr);
          }
        }
      });
      for (const r of batch) if (!deleted.has(r.urn) && !gone.includes(r)) pending.push(r); // replaced halves not deleted stay pending
    }
    if (gone.some((r) => r.type.startsWith("hcloud:"))) notes.push(...(await syncFirewalls(ctx).catch((e: unknown) => [`firewall sync: ${String(e)}`])));
  }
  save();
  const result: UpResultFile = { ok: !failure, error: failure, registrations, steps, actions, outputs, notes, seconds: (Date.now() - t0) / 1000 };
  writeFileSync(job.resultFile, JSON.stringify(result, null, 2));
  process.exit(0);
}

async function resolveExports(mod: Record<string, unknown>): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(mod)) {
    if (typeof v === "function" || (k === "default" && (v === undefined || typeof v !== "object"))) continue;
    // pulumi.output() deep-unwraps Outputs nested in plain objects (index.ts exports `hosts` that way)
    const o: pulumi.Output<unknown> = pulumi.output(v as pulumi.Input<object>);
    out[k] = await Promise.race([new Promise((r) => o.apply((x: unknown) => r(x))), new Promise((r) => setTimeout(() => r("(unresolved)"), 5000))]);
  }
  return JSON.parse(JSON.stringify(out, (_k, v: unknown) => (v === undefined ? null : v))) as Record<string, unknown>;
}

main().catch((e: unknown) => {
  process.stderr.write(`harness child crashed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(70);
});
