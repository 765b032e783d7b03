// Runs the program under Pulumi's mock runtime and records every registration as the engine would
// receive it.
//
// `mocks.newResource` sees only type, name and inputs (with secrets unwrapped). Parent, dependsOn,
// protect, ignoreChanges, timeouts and which inputs are secret are in the RegisterResourceRequest
// the SDK sends to the resource monitor, so this helper wraps the mock monitor's registerResource
// and records that request: `parent` and `dependencies` are URNs exactly as the engine would order
// by them (explicit dependsOn, expanded, plus the dependencies of Output-valued inputs), and `wire`
// is the serialized input object in which a secret still carries its secret signature. No SDK
// internals of the Resource objects are read.
import * as pulumi from "@pulumi/pulumi";
import { MockMonitor } from "@pulumi/pulumi/runtime/mocks";
import type { RegisterResourceRequest } from "@pulumi/pulumi/proto/resource_pb";
import { generateEd25519 } from "./ssh-keys";

/** How the SDK marks a secret value on the wire (sdk/nodejs/runtime/rpc.ts). */
export const SIG_KEY = "4dabf18193072939515e22adb298388d";
export const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";

export interface Registration {
  readonly type: string;
  readonly name: string;
  readonly urn: string;
  readonly custom: boolean;
  /** Parent URN, "" for none (the stack). */
  readonly parent: string;
  /** URNs this resource waits for. */
  readonly dependencies: string[];
  readonly protect: boolean;
  readonly ignoreChanges: string[];
  readonly deleteBeforeReplace: boolean;
  readonly additionalSecretOutputs: string[];
  readonly customTimeouts?: { create: string; update: string; delete: string };
  readonly replaceWith: string[];
  /** Inputs as sent: secret values are `{[SIG_KEY]: SECRET_SIG, value}`. */
  readonly wire: Record<string, unknown>;
  /** Inputs with secrets unwrapped, for reading. */
  readonly inputs: Record<string, unknown>;
}

export interface Invoke {
  readonly token: string;
  readonly inputs: Record<string, unknown>;
  /** Provider reference (`<urn>::<id>`), "" or undefined for the default provider. */
  readonly provider?: string;
}

export interface Recorder {
  readonly registrations: Registration[];
  /** Every invoke (data source call) the program made, in order. */
  readonly invokes: Invoke[];
  /** URNs of components that called registerOutputs. */
  readonly outputsRegistered: Set<string>;
}

let recorder: Recorder | undefined;

/** Patches the mock monitor once per process; returns the recorder. */
function installRecorder(): Recorder {
  if (recorder) return recorder;
  const rec: Recorder = { registrations: [], invokes: [], outputsRegistered: new Set() };
  type Callback = (err: unknown, resp: unknown) => void;
  type Register = (this: MockMonitor, req: RegisterResourceRequest, cb: Callback) => Promise<void>;
  type RegisterOutputs = (this: MockMonitor, req: { getUrn(): string }, cb: Callback) => void;
  const proto = MockMonitor.prototype as unknown as { registerResource: Register; registerResourceOutputs: RegisterOutputs; newUrn(p: string, t: string, n: string): string };
  const original = proto.registerResource;
  proto.registerResource = async function (req, cb) {
    const wire = (req.getObject()?.toJavaScript() ?? {}) as Record<string, unknown>;
    const t = req.getCustomtimeouts();
    rec.registrations.push({
      type: req.getType(),
      name: req.getName(),
      urn: proto.newUrn.call(this, req.getParent(), req.getType(), req.getName()),
      custom: req.getCustom(),
      parent: req.getParent(),
      dependencies: req.getDependenciesList(),
      protect: req.getProtect() ?? false,
      ignoreChanges: req.getIgnorechangesList(),
      deleteBeforeReplace: req.getDeletebeforereplace(),
      additionalSecretOutputs: req.getAdditionalsecretoutputsList(),
      customTimeouts: t ? { create: t.getCreate(), update: t.getUpdate(), delete: t.getDelete() } : undefined,
      replaceWith: req.getReplaceWithList(),
      wire,
      inputs: unwrapSecrets(wire) as Record<string, unknown>,
    });
    return original.call(this, req, cb);
  };
  const originalOutputs = proto.registerResourceOutputs;
  proto.registerResourceOutputs = function (req, cb) {
    rec.outputsRegistered.add(req.getUrn());
    return originalOutputs.call(this, req, cb);
  };
  recorder = rec;
  return rec;
}

let counter = 0;

/** What the mock docker provider answers (a real one reads them from the engine and the registry). */
export const MOCK_DIGESTS = {
  /** Manifest digest of a pushed build: `repoDigest` is `<repository>@` this. */
  pushed: `sha256:${"b0".repeat(32)}`,
  /** Image id of a local-only build (`skipPush: true`): `repoDigest` is this. */
  imageId: `sha256:${"1d".repeat(32)}`,
  /** `sha256Digest` of `docker:index/getRegistryImage:getRegistryImage`, for any tag. */
  registry: `sha256:${"7a".repeat(32)}`,
} as const;

/** `repo:tag` -> `repo` (a registry port is not a tag). */
function withoutTag(name: string): string {
  const slash = name.lastIndexOf("/");
  const colon = name.lastIndexOf(":");
  return colon > slash ? name.slice(0, colon) : name;
}

/** Invokes the program makes, answered as a provider would. */
function mockCall(token: string, inputs: Record<string, unknown>): Record<string, unknown> {
  if (token === "docker:index/getRegistryImage:getRegistryImage") return { ...inputs, sha256Digest: MOCK_DIGESTS.registry };
  return inputs;
}

/** Computed outputs a real provider would return, so Outputs of the program resolve. */
function mockState(type: string, name: string, inputs: Record<string, unknown>): { id: string; state: Record<string, unknown> } {
  counter += 1;
  const n = counter;
  if (type.startsWith("hcloud:")) {
    const extra: Record<string, unknown> = {};
    if (type === "hcloud:index/primaryIp:PrimaryIp") extra.ipAddress = `203.0.113.${n}`;
    if (type === "hcloud:index/server:Server") extra.ipv4Address = `203.0.113.${n}`;
    if (type === "hcloud:index/serverNetwork:ServerNetwork") extra.ip = inputs.ip ?? `10.0.1.${n}`;
    return { id: String(1000 + n), state: { ...inputs, ...extra } };
  }
  if (type === "tls:index/privateKey:PrivateKey") {
    // The tls provider generates the key on create; a real ED25519 pair, so tests can parse it.
    if (inputs.algorithm !== "ED25519") throw new Error(`mock tls.PrivateKey: only ED25519 is modelled (got ${String(inputs.algorithm)})`);
    return { id: `${name}-id`, state: { ...inputs, ...generateEd25519() } };
  }
  if (type === "docker:index/image:Image") {
    const repoDigest = inputs.skipPush ? MOCK_DIGESTS.imageId : `${withoutTag(String(inputs.imageName))}@${MOCK_DIGESTS.pushed}`;
    return { id: `${name}-id`, state: { imageName: inputs.imageName, repoDigest } };
  }
  return { id: `${name}-id`, state: { ...inputs, stdout: "", stderr: "" } };
}

/**
 * Sets the mock runtime up for `stack` of project `railhead` (not a preview, so Outputs resolve) and
 * the given raw config. Call before importing or running the program.
 */
export async function setupMocks(stack: string, config: { values: Record<string, string>; secretKeys: string[] }): Promise<Recorder> {
  const rec = installRecorder();
  await pulumi.runtime.setMocks(
    {
      newResource: (args) => (args.custom ? mockState(args.type, args.name, args.inputs as Record<string, unknown>) : { id: undefined, state: {} }),
      call: (args) => {
        const inputs = args.inputs as Record<string, unknown>;
        rec.invokes.push({ token: args.token, inputs, provider: args.provider });
        return mockCall(args.token, inputs);
      },
    },
    "railhead",
    stack,
    false,
  );
  pulumi.runtime.setAllConfig(config.values, config.secretKeys);
  return rec;
}

/** Waits until every registration the program started has reached the (mock) monitor. */
export async function settle(): Promise<void> {
  // `waitForRPCs` is exported by runtime/settings but not in its .d.ts.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const settings = require("@pulumi/pulumi/runtime/settings") as { waitForRPCs(): Promise<void> };
  await settings.waitForRPCs();
}

/** Resolves an Output (the mock runtime is not a preview, so every Output resolves). */
export function unwrap<T>(o: pulumi.Output<T>): Promise<T> {
  return new Promise((resolve) => o.apply((v) => resolve(v)));
}

export function isSecretWire(v: unknown): v is { value: unknown } {
  return typeof v === "object" && v !== null && (v as Record<string, unknown>)[SIG_KEY] === SECRET_SIG;
}

export function unwrapSecrets(v: unknown): unknown {
  if (isSecretWire(v)) return unwrapSecrets(v.value);
  if (Array.isArray(v)) return v.map(unwrapSecrets);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, unwrapSecrets(x)]));
  return v;
}

/** Every string in a wire value that is NOT inside a secret, with its property path. */
export function plainStrings(v: unknown, path = ""): Array<{ path: string; value: string }> {
  if (isSecretWire(v)) return [];
  if (typeof v === "string") return [{ path, value: v }];
  if (Array.isArray(v)) return v.flatMap((x, i) => plainStrings(x, `${path}[${i}]`));
  if (v && typeof v === "object") return Object.entries(v).flatMap(([k, x]) => plainStrings(x, path ? `${path}.${k}` : k));
  return [];
}
