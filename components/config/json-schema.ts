// The JSON Schema of a stack file (Pulumi.<stack>.yaml), generated from the zod schema so editors
// with the YAML language server complete and check `railhead:` keys. Checked in as
// schema/railhead-stack.schema.json; tests/unit/config-schema.test.ts fails when it drifts.
// `node --import tsx components/config/json-schema.ts --write` refreshes it.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { configSchema } from "./root";
import { NAMESPACE } from "./problems";

export type JsonSchema = Record<string, unknown>;

/** The `railhead:` keys' schema, as the stack file holds them (input form: quoted numbers allowed). */
export function railheadJsonSchema(): JsonSchema {
  return z.toJSONSchema(configSchema, {
    io: "input",
    unrepresentable: "any",
    target: "draft-2020-12",
    // A default around a number that may arrive quoted (a union with a pipe) is not emitted by zod; keep it.
    override: (ctx) => {
      const def = ctx.zodSchema._zod.def as { type: string; defaultValue?: unknown };
      if (def.type === "default" && ctx.jsonSchema.default === undefined) ctx.jsonSchema.default = JSON.parse(JSON.stringify(def.defaultValue)) as unknown;
    },
  }) as JsonSchema;
}

export function stackJsonSchema(): JsonSchema {
  const inner = railheadJsonSchema();
  const props = (inner.properties ?? {}) as Record<string, JsonSchema>;
  const railhead = Object.fromEntries(Object.entries(props).map(([k, v]) => [`${NAMESPACE}:${k}`, v]));
  // A secret set with `pulumi config set --secret` is stored as `{ secure: ... }`.
  railhead[`${NAMESPACE}:secrets`] = {
    description: (props.secrets?.description as string | undefined) ?? "secret values",
    type: "object",
    additionalProperties: { type: "object", properties: { secure: { type: "string" } }, required: ["secure"] },
  };
  return {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    $id: "https://github.com/railhead/railhead/schema/railhead-stack.schema.json",
    title: "Railhead stack file (Pulumi.<stack>.yaml)",
    type: "object",
    properties: {
      encryptionsalt: { type: "string" },
      secretsprovider: { type: "string" },
      encryptedkey: { type: "string" },
      config: {
        type: "object",
        properties: railhead,
        // Other namespaces (hcloud:token, aws:region) are the providers'; only railhead: keys are closed.
        propertyNames: { anyOf: [{ enum: Object.keys(railhead) }, { not: { pattern: `^${NAMESPACE}:` } }] },
        additionalProperties: true,
      },
    },
  };
}

export const SCHEMA_FILE = join(__dirname, "..", "..", "schema", "railhead-stack.schema.json");

export const renderSchema = (): string => `${JSON.stringify(stackJsonSchema(), null, 2)}\n`;

if (require.main === module) {
  if (process.argv.includes("--write")) writeFileSync(SCHEMA_FILE, renderSchema());
  else process.stdout.write(renderSchema());
}
