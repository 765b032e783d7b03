// `npm run railhead -- restore sqlite|postgres ...`: the incident restores (docs/runbook-restore.md).
// Finds the host from the stack (the SQLite roles' host, or the Postgres accessory's host) and runs
// `railhead-host restore ...` there (components/host-tool/lib/restore.sh does the steps and undoes
// them on failure). Web hosts other than that host get the maintenance page from here, and lose it
// again whatever happens. On a `production` stack nothing runs without --yes or a typed confirmation.
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline/promises";
import { parse } from "yaml";
import { shellQuote } from "../components/host-command";
import { DayTwoError, note, runOnHost, type HostTarget, type Options, type StackView } from "./railhead";

const REPO = resolve(__dirname, "..");
const DEFAULT_REPLICA_DIR = "/var/lib/railhead-replicas";

type Json = Record<string, unknown>;

export interface RestorePlan {
  readonly kind: "sqlite" | "postgres";
  /** Where railhead-host restore runs. */
  readonly host: HostTarget;
  readonly argv: string[];
  /** Other hosts of the primary role: maintenance on before, off after (the tool does its own host). */
  readonly maintenanceHosts: HostTarget[];
  /** The restore changes live data (not --dry-run / --list): needs confirmation on production. */
  readonly changesData: boolean;
}

interface LitestreamYaml {
  enabled?: boolean;
  roles?: string[];
  prefix?: string;
  sqliteImage?: string;
  replica?: { type?: string; path?: string };
}

function stackConfig(view: StackView, opts: Options): Json {
  const file = opts.config ?? join(REPO, `Pulumi.${view.stack}.yaml`);
  if (!existsSync(file)) throw new DayTwoError("-", "config", `no stack file ${file}`, "pass --stack NAME or --config FILE");
  const parsed = (parse(readFileSync(file, "utf8")) ?? {}) as Json;
  return (parsed.config ?? {}) as Json;
}

function str(opts: Options, name: string): string | undefined {
  const v = opts.flags.get(name);
  return typeof v === "string" ? v : undefined;
}

/** The Postgres accessory (--accessory, or the only one), its host and the pg-dump target arguments. */
export function postgresTarget(view: StackView, cfg: Json, opts: Options): { host: HostTarget; args: string[] } {
  const pgs = Object.entries((cfg["railhead:accessories"] ?? {}) as Record<string, { preset?: string; host?: string }>).filter(([, a]) => a.preset === "postgres");
  const wanted = str(opts, "--accessory");
  const found = wanted ? pgs.find(([n]) => n === wanted) : pgs.length === 1 ? pgs[0] : undefined;
  if (!found)
    throw new DayTwoError(
      "-",
      opts.command,
      wanted ? `no Postgres accessory "${wanted}" in stack ${view.stack}` : `stack ${view.stack} has ${pgs.length} Postgres accessories`,
      pgs.length ? `pass --accessory ${pgs.map(([n]) => n).join(" or ")}` : "add one with preset: postgres",
      2,
    );
  const [name, acc] = found;
  const ls = cfg["railhead:litestream"] as LitestreamYaml | undefined;
  if (ls === undefined || ls.enabled === false)
    throw new DayTwoError("-", opts.command, `stack ${view.stack} has no backup target (railhead:litestream.replica holds the dumps)`, "configure railhead:litestream and railhead:accessories.<name>.backup");
  const host = acc.host ? view.hosts[acc.host] : undefined;
  if (!host) throw new DayTwoError("-", opts.command, `the stack outputs have no host for accessory ${name}`, `run pulumi up --stack ${view.stack} so the outputs are current`);
  const target = ls.replica?.type === "s3" ? ["--s3"] : ["--target", ls.replica?.path ?? DEFAULT_REPLICA_DIR];
  return { host, args: ["--service", view.service, "--name", name, ...target, "--prefix", ls.prefix ?? `${view.service}/${view.stack}`] };
}

/** What runs where; pure (the stack file's `config:` block is passed in), so it is unit-tested. */
export function restorePlan(view: StackView, cfg: Json, opts: Options): RestorePlan {
  const kind = opts.args[0];
  const usage = "npm run railhead -- restore sqlite [--timestamp 2026-11-29T14:05:00Z] [--dry-run] | restore postgres [--dump NAME] [--list]";
  if (kind !== "sqlite" && kind !== "postgres") throw new DayTwoError("-", "usage", "restore takes sqlite or postgres", usage, 2);
  const ls = cfg["railhead:litestream"] as LitestreamYaml | undefined;
  const lsOn = ls !== undefined && ls.enabled !== false;
  const hostOf = (name: string | undefined, what: string): HostTarget => {
    const h = name ? view.hosts[name] : undefined;
    if (!h) throw new DayTwoError("-", "restore", `the stack outputs have no host for ${what}`, `run pulumi up --stack ${view.stack} so the outputs are current`);
    return h;
  };
  let host: HostTarget;
  let argv: string[];
  let changesData = true;
  if (kind === "sqlite") {
    if (!lsOn) throw new DayTwoError("-", "restore", `stack ${view.stack} has no railhead:litestream (no SQLite replica to restore from)`, "restore postgres, or enable railhead:litestream");
    const roles = ls?.roles ?? Object.keys(view.roles);
    host = hostOf(view.roles[roles[0]]?.[0], `the SQLite role ${roles[0]}`);
    argv = ["restore", "sqlite", "--service", view.service];
    for (const f of ["--database", "--timestamp"]) {
      const v = str(opts, f);
      if (v !== undefined) argv.push(f, v);
    }
    const img = str(opts, "--sqlite-image") ?? ls?.sqliteImage;
    if (img) argv.push("--sqlite-image", img);
    if (opts.flags.has("--dry-run")) {
      argv.push("--dry-run");
      changesData = false;
    }
  } else {
    const pg = postgresTarget(view, cfg, opts);
    host = pg.host;
    argv = ["restore", "postgres", ...pg.args];
    const dump = str(opts, "--dump");
    if (dump) argv.push("--dump", dump);
    if (opts.flags.has("--list")) {
      argv.push("--list");
      changesData = false;
    }
  }
  const maintenanceHosts = changesData ? (view.roles[view.primaryRole] ?? []).filter((n) => n !== host.name).map((n) => hostOf(n, `web host ${n}`)) : [];
  return { kind, host, argv, maintenanceHosts, changesData };
}

/** Refuses a data-changing restore on `production` unless --yes or the stack name is typed. */
export async function confirmRestore(view: StackView, plan: RestorePlan, opts: Options): Promise<void> {
  if (!plan.changesData || view.stack !== "production" || opts.flags.has("--yes")) return;
  const what = `restore ${plan.kind} on ${plan.host.name} (stack production, service ${view.service})`;
  if (!process.stdin.isTTY) throw new DayTwoError("-", "restore", `refusing to ${what} without confirmation`, "run it in a terminal and type the stack name, or pass --yes", 2);
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  const answer = await rl.question(`This will ${what}: maintenance page, live data replaced (the old data is kept aside). Type "production" to go on: `);
  rl.close();
  if (answer.trim() !== "production") throw new DayTwoError("-", "restore", "not confirmed: nothing was changed", "type production exactly, or pass --yes", 2);
}

const where = (h: HostTarget) => (h.kind === "local" ? "this machine" : `${h.user}@${h.address}`);

async function maintenance(hosts: HostTarget[], view: StackView, opts: Options, mode: "on" | "off"): Promise<boolean> {
  let ok = true;
  for (const h of hosts) {
    note(h.name, "restore", `+ railhead-host proxy maintenance ${view.service} ${mode} (on ${where(h)})`);
    const r = await runOnHost({ host: h, argv: ["proxy", "maintenance", view.service, mode], stdin: mode === "on" ? "Restoring data, back in a few minutes" : "" }, { ...opts, dryRun: false });
    if (r.code !== 0) ok = false;
  }
  return ok;
}

export async function restore(view: StackView, opts: Options): Promise<number> {
  const plan = restorePlan(view, stackConfig(view, opts), opts);
  await confirmRestore(view, plan, opts);
  const t0 = Date.now();
  const line = `railhead-host ${plan.argv.map(shellQuote).join(" ")}`;
  const others: HostTarget[] = [];
  try {
    if (plan.maintenanceHosts.length) {
      const on = await maintenance(plan.maintenanceHosts, view, opts, "on");
      others.push(...plan.maintenanceHosts);
      if (!on) throw new DayTwoError("-", "restore", "maintenance on failed on a web host: nothing restored", "read the lines above; npm run railhead -- maintenance off");
    }
    note(plan.host.name, "restore", `+ ${line} (on ${where(plan.host)})`);
    // --dry-run here is the restore's own dry run (it runs and changes nothing), so it is not the
    // CLI's print-only mode.
    const r = await runOnHost({ host: plan.host, argv: plan.argv }, { ...opts, dryRun: false });
    const secs = ((Date.now() - t0) / 1000).toFixed(1);
    if (r.code !== 0) {
      note(plan.host.name, "restore", `FAILED (exit ${r.code}) after ${secs}s; the app serves the data it had before`);
      return r.code;
    }
    note(plan.host.name, "restore", `done in ${secs}s`);
    return 0;
  } finally {
    if (others.length && !(await maintenance(others, view, opts, "off")))
      process.stderr.write(`[railhead] - ERROR restore: maintenance off failed on a web host. Next: npm run railhead -- maintenance off --stack ${view.stack}\n`);
  }
}

/** `dump [--accessory NAME]`: a pg-dump now, to where the scheduled dumps go (before a risky change). */
export async function dump(view: StackView, opts: Options): Promise<number> {
  const pg = postgresTarget(view, stackConfig(view, opts), opts);
  const argv = ["pg-dump", ...pg.args, "--keep", "30"];
  note(pg.host.name, "dump", `+ railhead-host ${argv.map(shellQuote).join(" ")} (on ${where(pg.host)})`);
  return (await runOnHost({ host: pg.host, argv }, opts)).code;
}
