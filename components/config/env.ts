// `env` (service-wide, per role and per accessory): clear values and names of secrets. A well-known
// secret name, or a value that looks like a credential, in `clear` is refused with the secret form.
import { z } from "zod";
import { envName, looksLikeCredential, obj, plainValue, secretName } from "./shared";
import { secretCommand } from "./problems";
import type { Section } from "./section";

export interface EnvConfig {
  clear: Record<string, string | number | boolean>;
  secret: string[];
  /** Written as a plain `{KEY: value}` map (Kamal allows it); paths then have no `clear`. */
  flat?: boolean;
}

const ALWAYS_SECRET = new Set(["RAILS_MASTER_KEY", "SECRET_KEY_BASE", "DATABASE_URL", "KAMAL_REGISTRY_PASSWORD", "AWS_SECRET_ACCESS_KEY", "REDIS_PASSWORD", "POSTGRES_PASSWORD"]);
const SECRET_SUFFIX = /(_PASSWORD|_PASSWD|_SECRET|_TOKEN|_KEY|_API_KEY|_PRIVATE_KEY|_CREDENTIALS)$/;
const NOT_SECRET = /(PUBLIC|PUBLISHABLE)/;

/** Why a clear env value is a secret, or undefined. */
export function secretInClear(name: string, value: unknown): string | undefined {
  const v = typeof value === "string" ? value : String(value);
  if (v === "" || typeof value === "boolean") return undefined;
  if (name === "DATABASE_URL" || name.endsWith("_URL")) {
    return /^[a-z][a-z0-9+.-]*:\/\/[^/\s:@]*:[^/\s@]+@/i.test(v) ? `${name} carries a password` : undefined;
  }
  if (ALWAYS_SECRET.has(name)) return `${name} is a secret`;
  if (SECRET_SUFFIX.test(name) && !NOT_SECRET.test(name) && (looksLikeCredential(v) || v.length >= 8)) return `${name} looks like a secret`;
  if (looksLikeCredential(v) && /[A-Z]/.test(name) && /(KEY|TOKEN|SECRET|PASS|AUTH|CREDENTIAL)/.test(name)) return `${name} looks like a secret`;
  return undefined;
}

const clearMap = z.record(envName, plainValue).describe("plain values, stored in state as they are");
const secretList = z
  .array(secretName)
  .describe("names of keys in `railhead:secrets`; sent to hosts only on stdin into a 0600 env file");

const envObject = obj(
  { clear: clearMap.default({}), secret: secretList.default([]) },
  { tags: "Kamal's env.tags: put per-role env on the role (servers.<role>.env)", secrets: "=secret" },
).transform((e): EnvConfig => ({ clear: e.clear, secret: e.secret }));

export const envSchema = z
  .union([envObject, clearMap.transform((clear): EnvConfig => ({ clear, secret: [], flat: true }))], {
    error: "env is `{ clear: {KEY: value}, secret: [NAME] }` or a plain `{KEY: value}` map",
  })
  .check((ctx) => {
    const e = ctx.value;
    const at = (k: string) => (e.flat ? [k] : ["clear", k]);
    for (const [k, v] of Object.entries(e.clear)) {
      if (e.secret.includes(k)) {
        ctx.issues.push({ code: "custom", input: v, path: at(k), message: `"${k}" is both clear and secret; keep it only in secret`, params: { example: `secret: [${k}]` } });
        continue;
      }
      const why = secretInClear(k, v);
      if (why)
        ctx.issues.push({
          code: "custom",
          input: v,
          path: at(k),
          message: `${why}: clear values are stored as plain text in the stack file and in state. Rotate it, move it to secret and store the new value encrypted`,
          params: { example: `secret: [${k}]   then: ${secretCommand(k)}` },
        });
    }
    const dup = e.secret.find((s, i) => e.secret.indexOf(s) !== i);
    if (dup) ctx.issues.push({ code: "custom", input: dup, path: ["secret"], message: `"${dup}" is listed twice`, params: { example: `secret: [${dup}]` } });
  })
  .describe("env: `{ clear: {KEY: value}, secret: [NAME] }` or a plain `{KEY: value}` map");

export const ENV_EXAMPLE = "env: { clear: { RAILS_ENV: production }, secret: [RAILS_MASTER_KEY] }";

export const env: Section = {
  key: "env",
  schema: envSchema.prefault({ clear: {}, secret: [] }),
  examples: [
    [/env\.secret/, `secret: [RAILS_MASTER_KEY]   then: ${secretCommand("RAILS_MASTER_KEY")}`],
    [/env/, ENV_EXAMPLE],
  ],
};
