// Config errors: each is reported with its key path, what is wrong and an example of right; all of
// them at once; and a bad config registers nothing.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import { ConfigError, loadConfig, type ConfigProblem } from "../../components/config";
import { loadStackFile } from "../support/stack-config";
import { setupMocks, settle } from "../support/mocks";

type Override = Record<string, unknown>;

function problemsOf(override: Override, opts: { secretsPlain?: boolean } = {}): ConfigProblem[] {
  const fx = loadStackFile("production", { override });
  const raw = opts.secretsPlain ? { ...fx.raw, secretKeys: new Set<string>() } : fx.raw;
  try {
    loadConfig(raw);
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${String(e)}`);
    assert.ok(e.message.startsWith(`Railhead config has ${e.problems.length} problem`));
    for (const p of e.problems) assert.ok(e.message.includes(`${p.path}: ${p.message}`), "the message lists every problem");
    return e.problems;
  }
  assert.fail("the config was accepted");
}

function find(problems: ConfigProblem[], path: string, message: RegExp, example = true): ConfigProblem {
  const p = problems.find((x) => x.path === path && message.test(x.message));
  assert.ok(p, `no problem at ${path} matching ${message}; got:\n${problems.map((x) => `${x.path}: ${x.message}`).join("\n")}`);
  if (example) assert.ok(p.example && p.example.length > 0, `${path} has no example`);
  return p;
}

const SERVERS = { web: { hosts: ["web-1", "web-2"] }, job: { hosts: ["job-1"], cmd: "bin/jobs" } };

const CASES: Array<{ what: string; override: Override; secretsPlain?: boolean; path: string; message: RegExp; example?: boolean }> = [
  { what: "unknown key", override: { "railhead:servicee": "demo" }, path: "railhead:servicee", message: /unknown key "servicee"; did you mean "railhead:service"/ },
  { what: "wrong type", override: { "railhead:retain": "five" }, path: "railhead:retain", message: /expected a number of releases from 1 to 100, got "five"/ },
  { what: "missing required key", override: { "railhead:service": undefined }, path: "railhead:service", message: /required key is missing/ },
  { what: "a role on an unknown host", override: { "railhead:servers": { ...SERVERS, web: { hosts: ["web-1", "web-9"] } } }, path: "railhead:servers.web.hosts[1]", message: /unknown host "web-9"/ },
  {
    what: "one domain on two proxied roles",
    override: { "railhead:servers": { ...SERVERS, api: { hosts: ["web-2"], proxy: { hosts: ["demo.example.com"] } } } },
    path: "railhead:servers.api.proxy.hosts[0]",
    message: /domain "demo.example.com" is routed to both "web" and "api"/,
  },
  { what: "ssl without a domain", override: { "railhead:proxy": { ssl: true, hosts: [] } }, path: "railhead:proxy.ssl", message: /ssl needs at least one domain/ },
  { what: "a secret as plain text", override: { "railhead:registry": { server: "ghcr.io", username: "acme", password: "x" } }, path: "railhead:registry.password", message: /secret pasted as plain text.*rotate it/ },
  { what: "railhead:secrets not stored as a secret", override: {}, secretsPlain: true, path: "railhead:secrets", message: /stored as plain text/ },
  { what: "boot limit out of range", override: { "railhead:boot": { limit: 5 } }, path: "railhead:boot.limit", message: /5 is out of range/ },
  { what: "boot limit percentage out of range", override: { "railhead:boot": { limit: "0%" } }, path: "railhead:boot.limit", message: /out of range/ },
  { what: "an image reference that does not parse", override: { "railhead:image": "ghcr.io/Acme/demo:1.0.0" }, path: "railhead:image", message: /is not an image reference/ },
  { what: "a line break in an env value", override: { "railhead:env": { clear: { A: "x\ny" }, secret: ["RAILS_MASTER_KEY"] } }, path: "railhead:env.clear.A", message: /line break/ },
];

for (const c of CASES) {
  test(`config error: ${c.what}`, () => {
    find(problemsOf(c.override, { secretsPlain: c.secretsPlain }), c.path, c.message, c.example ?? true);
  });
}

test("config errors: all reported at once, each with its key path (and an example)", () => {
  const all: Override = {};
  for (const c of CASES) if (c.what !== "boot limit percentage out of range" && c.what !== "ssl without a domain") Object.assign(all, c.override);
  // Both cross-role checks in one servers map, plus a role whose inherited ssl has no domain.
  all["railhead:servers"] = {
    web: { hosts: ["web-1", "web-9"] },
    api: { hosts: ["web-2"], proxy: { hosts: ["demo.example.com"] } },
    admin: { hosts: ["web-2"], proxy: { ssl: true, hosts: [] } },
    job: { hosts: ["job-1"], cmd: "bin/jobs" },
  };
  const problems = problemsOf(all, { secretsPlain: true });
  for (const c of CASES) {
    if (c.what === "boot limit percentage out of range") continue;
    if (c.what === "ssl without a domain") {
      find(problems, "railhead:servers.admin.proxy.ssl", /ssl needs at least one domain/);
      continue;
    }
    find(problems, c.path, c.message, c.example ?? true);
  }
  assert.ok(problems.length >= CASES.length - 1);
});

test("the stack files themselves are valid", () => {
  for (const stack of ["production", "staging", "local"]) assert.doesNotThrow(() => loadConfig(loadStackFile(stack).raw), stack);
});

test("a bad config fails the program with the full message and registers nothing", async () => {
  const fx = loadStackFile("production", { override: { "railhead:retain": "five", "railhead:servers": { web: { hosts: ["web-9"] } } } });
  const rec = await setupMocks("production", fx);
  await assert.rejects(import("../../index"), (e: Error) => {
    assert.ok(pulumi.RunError.isInstance(e), "a RunError prints the message without a stack trace");
    assert.match(e.message, /Railhead config has 2 problems; nothing was changed/);
    assert.match(e.message, /railhead:retain: expected a number of releases/);
    assert.match(e.message, /railhead:servers\.web\.hosts\[0\]: unknown host "web-9"/);
    return true;
  });
  await settle();
  assert.equal(rec.registrations.length, 0, `registered: ${rec.registrations.map((r) => r.name).join(", ")}`);
});
