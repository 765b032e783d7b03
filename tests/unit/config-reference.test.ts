// README.md's configuration reference must be exactly what the schema documents.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { readmeReference, renderReference, referenceRows } from "../../components/config-reference";
import { CONFIG_KEYS } from "../../components/config";

test("README.md's configuration reference matches the zod schema", () => {
  const readme = readFileSync(join(__dirname, "..", "..", "README.md"), "utf8");
  const section = readmeReference(readme);
  assert.ok(section, "README.md has no generated configuration reference section");
  assert.equal(section, renderReference(), "README.md is stale: run `node --import tsx components/config-reference.ts --write`");
});

test("every top-level config key is documented, and nothing else", () => {
  const top = referenceRows()
    .map((r) => r.key)
    .filter((k) => !k.slice("railhead:".length).includes("."))
    .map((k) => k.slice("railhead:".length));
  assert.deepEqual([...top].sort(), [...CONFIG_KEYS].sort());
});
