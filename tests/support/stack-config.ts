// Reads a stack file (Pulumi.<stack>.yaml) into the raw config the engine would hand the program,
// with canary values for every secret it references, so tests can prove no secret leaks.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import type { RawStackConfig } from "../../components/config";

export const REPO = join(__dirname, "..", "..");

/** A value no test output, command string or plain state may ever contain. */
export function canary(name: string): string {
  return `CANARY-${name}-7f3a9c`;
}

export interface StackFixture {
  readonly raw: RawStackConfig;
  /** The flattened `railhead:*` values, as for pulumi.runtime.setAllConfig. */
  readonly values: Record<string, string>;
  readonly secretKeys: string[];
  readonly secretValues: Record<string, string>;
}

/** Names of secrets a stack file references (`[NAME]` tuples and env.secret lists). */
export function referencedSecrets(config: Record<string, unknown>): string[] {
  const names = new Set<string>();
  const walk = (v: unknown, key?: string): void => {
    if (Array.isArray(v)) {
      if (key === "secret") v.forEach((s) => typeof s === "string" && names.add(s));
      else if (v.length === 1 && typeof v[0] === "string" && /^[A-Z_][A-Z0-9_]*$/.test(v[0])) names.add(v[0]);
      else v.forEach((x) => walk(x));
    } else if (v && typeof v === "object") {
      for (const [k, x] of Object.entries(v)) walk(x, k);
    }
  };
  walk(config);
  return [...names].sort();
}

export function loadStackFile(
  stack: string,
  opts: { extraSecrets?: Record<string, string>; override?: Record<string, unknown>; file?: string } = {},
): StackFixture {
  const file = opts.file ?? join(REPO, `Pulumi.${stack}.yaml`);
  const doc = parse(readFileSync(file, "utf8")) as { config?: Record<string, unknown> };
  const config: Record<string, unknown> = { ...(doc.config ?? {}) };
  for (const [k, v] of Object.entries(opts.override ?? {})) {
    if (v === undefined) delete config[k];
    else config[k] = v;
  }
  return stackFixture(stack, config, opts.extraSecrets);
}

/** The raw config for a stack file's `config:` block, as the engine would hand it to the program. */
export function stackFixture(stack: string, config: Record<string, unknown>, extraSecrets: Record<string, string> = {}): StackFixture {
  const opts = { extraSecrets };
  const values: Record<string, string> = {};
  for (const [k, v] of Object.entries(config)) {
    if (!k.startsWith("railhead:")) continue;
    values[k] = typeof v === "string" ? v : JSON.stringify(v);
  }
  const bare = Object.fromEntries(Object.entries(config).map(([k, v]) => [k.replace(/^railhead:/, ""), v]));
  const secretValues: Record<string, string> = {};
  for (const name of referencedSecrets(bare)) secretValues[name] = canary(name);
  Object.assign(secretValues, opts.extraSecrets ?? {});
  const secretKeys: string[] = [];
  if (Object.keys(secretValues).length > 0) {
    values["railhead:secrets"] = JSON.stringify(secretValues);
    secretKeys.push("railhead:secrets");
  }
  return {
    raw: { values, secretKeys: new Set(secretKeys), project: "railhead", stack },
    values,
    secretKeys,
    secretValues,
  };
}
