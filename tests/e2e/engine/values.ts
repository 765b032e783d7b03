// TEST EQUIPMENT (e2e apply harness): turns what the mock monitor deserialized (secrets wrapped as
// `{4dabf18193072939515e22adb298388d: "1b47...", value}`, Asset objects) into plain JSON for state,
// diffs and appliers, remembering which paths were secret.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import * as pulumi from "@pulumi/pulumi";

const SIG_KEY = "4dabf18193072939515e22adb298388d";
/** The wire form of an unknown value (@pulumi/pulumi runtime/rpc.js unknownValue): a preview's "not known yet". */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";

/** An asset in plain form; `hash` is what a provider diffs (pulumi-command re-copies on a new hash). */
export interface PlainAsset {
  __asset: "text" | "file" | "archive-file" | "archive-assets";
  text?: string;
  path?: string;
  assets?: Record<string, PlainAsset>;
  hash: string;
}

export function isPlainAsset(v: unknown): v is PlainAsset {
  return !!v && typeof v === "object" && "__asset" in (v as Record<string, unknown>);
}

export async function plainValue(v: unknown, path: string, secrets: string[]): Promise<unknown> {
  if (v === null || v === undefined || typeof v !== "object") return v;
  // In a preview the mock monitor deserializes unknowns as output.js's `unknown` object.
  if (pulumi.Output.isInstance(v) === false && isUnknownValue(v)) return UNKNOWN;
  const obj = v as Record<string, unknown>;
  if (obj[SIG_KEY] === SECRET_SIG) {
    secrets.push(path || "(root)");
    return plainValue(obj.value, path, []);
  }
  if (pulumi.asset.StringAsset.isInstance(v) && v instanceof pulumi.asset.StringAsset) {
    const text = await v.text;
    return { __asset: "text", text, hash: sha(text) } satisfies PlainAsset;
  }
  if (v instanceof pulumi.asset.FileAsset) {
    const p = await v.path;
    return { __asset: "file", path: p, hash: sha(readFileSync(p)) } satisfies PlainAsset;
  }
  if (v instanceof pulumi.asset.FileArchive) {
    const p = await v.path;
    return { __asset: "archive-file", path: p, hash: sha(p) } satisfies PlainAsset;
  }
  if (v instanceof pulumi.asset.AssetArchive) {
    const raw = await v.assets;
    const assets: Record<string, PlainAsset> = {};
    for (const [k, a] of Object.entries(raw)) assets[k] = (await plainValue(a, `${path}.${k}`, secrets)) as PlainAsset;
    return { __asset: "archive-assets", assets, hash: sha(JSON.stringify(Object.entries(assets).map(([k, a]) => [k, a.hash]))) } satisfies PlainAsset;
  }
  if (pulumi.asset.Asset.isInstance(v) || pulumi.asset.Archive.isInstance(v)) throw new Error(`harness: unsupported asset kind at ${path} (remote assets are not supported)`);
  if (Array.isArray(obj)) {
    const arr = obj as unknown[];
    const out: unknown[] = [];
    for (let i = 0; i < arr.length; i++) out.push(await plainValue(arr[i], `${path}[${i}]`, secrets));
    return out;
  }
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(obj)) out[k] = await plainValue(x, path ? `${path}.${k}` : k, secrets);
  return out;
}

export function sha(data: string | Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

function isUnknownValue(v: unknown): boolean {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const out = require("@pulumi/pulumi/output") as { isUnknown(x: unknown): boolean };
  return out.isUnknown(v);
}
