// The config-mistake corpus: tests/unit/config-corpus/*.yaml hold stack files (YAML documents), each
// with the mistake and, beside it, `expect:` the exact key paths that must be reported. Each case is
// run through the program under the mock runtime: every expected path is reported with an example,
// no other path is reported (so no correctly set key is), and nothing is registered. Cases with
// `valid: true` must load and render.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import * as pulumi from "@pulumi/pulumi";
import { ConfigError, loadConfig } from "../../components/config";
import { railhead } from "../../components/program";
import { stackFixture, REPO, type StackFixture } from "../support/stack-config";
import { setupMocks, settle, type Recorder } from "../support/mocks";

interface Case {
  readonly file: string;
  readonly name: string;
  /** A stack file of the repository this case starts from (its `config:` is replaced key by key). */
  readonly base?: string;
  readonly stack: string;
  readonly config: Record<string, unknown>;
  readonly expect?: string[];
  readonly valid?: boolean;
  /** Store railhead:secrets as plain text (a committed secrets block). */
  readonly plainSecrets?: boolean;
}

const DIR = join(__dirname, "config-corpus");

function loadCases(): Case[] {
  const cases: Case[] = [];
  for (const file of readdirSync(DIR).filter((f) => f.endsWith(".yaml")).sort()) {
    for (const doc of parseAllDocuments(readFileSync(join(DIR, file), "utf8"))) {
      const c = doc.toJS() as Omit<Case, "file" | "stack"> & { stack?: string } | null;
      if (!c) continue;
      cases.push({ ...c, file, stack: c.stack ?? c.base ?? "corpus" });
    }
  }
  return cases;
}

function fixture(c: Case): StackFixture {
  let config: Record<string, unknown> = {};
  if (c.base) {
    const base = loadBaseConfig(c.base);
    config = { ...base };
  }
  for (const [k, v] of Object.entries(c.config)) {
    if (v === null) delete config[k];
    else config[k] = v;
  }
  const fx = stackFixture(c.stack, config);
  return c.plainSecrets ? { ...fx, secretKeys: [], raw: { ...fx.raw, secretKeys: new Set() } } : fx;
}

function loadBaseConfig(stack: string): Record<string, unknown> {
  const doc = parseAllDocuments(readFileSync(join(REPO, `Pulumi.${stack}.yaml`), "utf8"))[0].toJS() as { config: Record<string, unknown> };
  return doc.config;
}

const cases = loadCases();
let rec: Recorder;

before(async () => {
  rec = await setupMocks("corpus", { values: {}, secretKeys: [] });
});

test("the corpus holds at least 60 mistakes and some valid stacks", () => {
  assert.ok(cases.filter((c) => !c.valid).length >= 60, `only ${cases.filter((c) => !c.valid).length} mistakes`);
  assert.ok(cases.some((c) => c.valid));
});

for (const c of cases) {
  test(`${c.file}: ${c.name}`, async () => {
    const fx = fixture(c);
    if (c.valid) {
      assert.doesNotThrow(() => loadConfig(fx.raw), "a valid stack loads");
      // And renders under the mock runtime.
      const before = rec.registrations.length;
      pulumi.runtime.setAllConfig(fx.values, fx.secretKeys);
      assert.doesNotThrow(() => railhead());
      await settle();
      assert.ok(rec.registrations.length > before, "the valid stack registered its resources");
      return;
    }
    assert.ok(c.expect && c.expect.length > 0, "a mistake lists the paths it expects");
    let err: unknown;
    try {
      loadConfig(fx.raw);
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    const got = err.problems.map((p) => p.path);
    const shown = err.problems.map((p) => `  ${p.path}: ${p.message}`).join("\n");
    for (const p of err.problems) assert.ok(p.example && p.example.trim().length > 0, `${p.path} has no example`);
    assert.deepEqual([...new Set(got)].sort(), [...new Set(c.expect)].sort(), `reported paths differ from expect:\n${shown}`);

    // Through the program under the mock runtime: the same refusal, and nothing registered.
    const before = rec.registrations.length;
    pulumi.runtime.setAllConfig(fx.values, fx.secretKeys);
    assert.throws(() => railhead(), (e: unknown) => e instanceof ConfigError);
    await settle();
    assert.equal(rec.registrations.length, before, `registered: ${rec.registrations.slice(before).map((r) => r.name).join(", ")}`);
  });
}
