// TEST EQUIPMENT (e2e apply harness): one `up` in its own process (the Pulumi SDK's module graph and
// runtime settings are process-global). Runs the program under the mock runtime and applies each
// registration in the mock's newResource, against the previous state. See harness.ts for the
// semantics mirrored and their sources.
//   node --import tsx tests/e2e/engine/child.ts JOB.json
import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import * as pulumi from "@pulumi/pulumi";
import { applyStep, isSupported, setProviderRef, StepError, syncFirewalls, type Action, type ApplyContext } from "./apply";
import { deleteOrder, planStep, type StepOp } from "./plan";
import { loadRigInfo, type RigInfo } from "./rig";
import { loadState, saveState, type CapturedOptions, type ResourceState, type StackState } from "./state";
import { plainValue } from "./values";
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
  };

  const save = () => {
    // Resources not re-registered (not reached after a failure, or to be deleted) keep their old state.
    const resources = [...next.values(), ...old.resources.filter((r) => !next.has(r.urn) && !deleted.has(r.urn))];
    saveState(job.stateFile, { version: 1, stack: job.stack, resources, pendingDeletes: pending, serial });
  };
  const deleted = new Set<string>();

  const deleteOne = async (r: ResourceState, why: "delete" | "delete-replaced"): Promise<void> => {
    const start = Date.now();
    if (r.options.protect) throw new StepError(`resource ${r.urn} is protected; it cannot be deleted (remove protect: true first)`);
    if (r.custom && !r.options.retainOnDelete) await applyStep(ctx, "delete", { urn: r.urn, type: r.type, name: r.name, id: r.id }, r, {});
    steps.push({ urn: r.urn, type: r.type, name: r.name, op: why, reason: r.options.retainOnDelete ? "retainOnDelete: dropped from state only" : undefined, start: start - t0, end: Date.now() - t0, ok: true });
  };

  // pulumi/pulumi#9979: pending deletes left by a failed update run first.
  while (pending.length > 0 && !failure) {
    const r = pending[0];
    try {
      await deleteOne(r, "delete-replaced");
      pending.shift();
    } catch (e) {
      fail(e instanceof Error ? e.message : String(e));
    }
  }

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
          if (prev.options.protect) throw new StepError(`resource ${h.urn} is protected; it cannot be replaced (${plan.reason})`);
          replacedThisRun.add(h.urn);
          if (plan.deleteBeforeReplace) {
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
    if (!seenRejections.has(msg)) log(`(unhandled rejection) ${msg}`);
    seenRejections.add(msg);
  });

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
        const msg = `harness: invoke ${args.token} is not supported by the e2e apply harness`;
        fail(msg);
        throw new Error(msg);
      },
    },
    job.project,
    job.stack,
    false,
  );
  pulumi.runtime.setAllConfig(job.config, job.secretKeys);

  let outputs: Record<string, unknown> = {};
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
    outputs = await resolveExports(mod);
  } catch (e) {
    fail(`program: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  }

  // --- the end of the update: old halves of replacements, then resources no longer registered.
  if (!failure) {
    const gone = old.resources.filter((r) => !next.has(r.urn) && !deleted.has(r.urn));
    const all = [...pending.splice(0), ...gone];
    const queue = deleteOrder(all);
    for (const r of queue) {
      try {
        await deleteOne(r, gone.includes(r) ? "delete" : "delete-replaced");
        deleted.add(r.urn);
      } catch (e) {
        fail(e instanceof Error ? e.message : String(e));
        // what was not deleted stays: removed resources in state, replaced halves as pending deletes
        for (const left of queue.slice(queue.indexOf(r))) if (!gone.includes(left)) pending.push(left);
        break;
      }
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
