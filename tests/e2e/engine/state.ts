// TEST EQUIPMENT (e2e apply harness), not a Railhead feature: the harness's own state file, one JSON
// file per stack, standing in for a Pulumi checkpoint. Only the fields the harness needs.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

/** Resource options as the SDK sent them in RegisterResourceRequest (captured from the mock monitor). */
export interface CapturedOptions {
  parent: string;
  /** Every URN this resource waited for: dependsOn plus resources its inputs came from. */
  dependencies: string[];
  /** Input name -> URNs it came from (propertyDependencies). */
  propertyDependencies: Record<string, string[]>;
  protect: boolean;
  ignoreChanges: string[];
  retainOnDelete: boolean;
  deleteBeforeReplace: boolean;
  deleteBeforeReplaceDefined: boolean;
  replaceOnChanges: string[];
  additionalSecretOutputs: string[];
  replaceWith: string[];
  replacementTrigger?: unknown;
  provider: string;
  customTimeouts?: { create: string; update: string; delete: string };
}

export interface ResourceState {
  urn: string;
  type: string;
  name: string;
  custom: boolean;
  id: string;
  /** Inputs with secrets unwrapped (test state is plain JSON under tmp/). */
  inputs: Record<string, unknown>;
  outputs: Record<string, unknown>;
  options: CapturedOptions;
  /** Input paths that arrived as secrets. */
  secretInputs: string[];
  /** What the harness did to a real target for it (rig host, firewall, ...), for reset and delete. */
  target?: Record<string, unknown>;
}

export interface StackState {
  version: 1;
  stack: string;
  /** Resources in registration order. */
  resources: ResourceState[];
  /**
   * Old halves of replacements whose delete has not run (the run failed before the end);
   * pulumi/pulumi#9979: pending deletes are processed first on the next update.
   */
  pendingDeletes: ResourceState[];
  /** A counter for ids the harness mints (server ids, ...). */
  serial: number;
  /** What the harness's "cloud" holds beyond resources (see CloudState). */
  cloud?: CloudState;
}

/**
 * Cloud-side facts that outlive one resource's state: which network each server is attached to
 * (Hetzner keeps one attachment per server and network; a ServerNetwork create that finds one
 * keeps it, terraform-provider-hcloud internal/server/resource_network.go Create ignores
 * ErrorCodeServerAlreadyAttached).
 */
export interface CloudState {
  /** `<serverId>/<networkId>` -> the private IP of the attachment. */
  attachments: Record<string, string>;
}

export function emptyState(stack: string): StackState {
  return { version: 1, stack, resources: [], pendingDeletes: [], serial: 0 };
}

export function loadState(file: string, stack: string): StackState {
  if (!existsSync(file)) return emptyState(stack);
  return JSON.parse(readFileSync(file, "utf8")) as StackState;
}

export function saveState(file: string, state: StackState): void {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(state, null, 2));
  renameSync(tmp, file);
}
