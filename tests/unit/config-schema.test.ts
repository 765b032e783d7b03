// The JSON Schema for stack files (schema/railhead-stack.schema.json) is generated from the zod
// schema; it must match, and every stack file must point editors at it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { renderSchema, SCHEMA_FILE } from "../../components/config/json-schema";

const REPO = join(__dirname, "..", "..");

test("schema/railhead-stack.schema.json matches the zod schema", () => {
  assert.equal(readFileSync(SCHEMA_FILE, "utf8"), renderSchema(), "stale: run `node --import tsx components/config/json-schema.ts --write`");
});

test("every stack file references the JSON Schema for the YAML language server", () => {
  const stacks = readdirSync(REPO).filter((f) => /^Pulumi\.[^.]+\.yaml$/.test(f));
  assert.ok(stacks.length >= 3);
  for (const f of stacks) {
    const first = readFileSync(join(REPO, f), "utf8").split("\n")[0];
    assert.equal(first, "# yaml-language-server: $schema=./schema/railhead-stack.schema.json", `${f} first line`);
  }
});

test("the JSON Schema closes railhead: keys and documents each section", () => {
  const schema = JSON.parse(readFileSync(SCHEMA_FILE, "utf8")) as { properties: { config: { properties: Record<string, { description?: string }> } } };
  const keys = Object.keys(schema.properties.config.properties);
  for (const k of ["railhead:service", "railhead:hosts", "railhead:servers", "railhead:accessories", "railhead:litestream", "railhead:secrets"]) assert.ok(keys.includes(k), k);
});
