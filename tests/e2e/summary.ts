// TEST EQUIPMENT (e2e): the scenario summary. Each scenario is wrapped in `scenario(name, fn)`,
// which appends {name, pass, seconds, error} to $E2E_SUMMARY (a JSON-lines file) and rethrows;
// `node --import tsx tests/e2e/summary.ts FILE` prints the table.
import { appendFileSync, existsSync, readFileSync } from "node:fs";

export interface ScenarioRecord {
  name: string;
  pass: boolean;
  seconds: number;
  error?: string;
  /** Not run, and why (never counted as passed). */
  skipped?: string;
}

/** Records scenarios that could not run here, so the table says so instead of omitting them. */
export function skipped(names: string[], reason: string): void {
  const file = process.env.E2E_SUMMARY;
  if (file) for (const name of names) appendFileSync(file, `${JSON.stringify({ name, pass: false, seconds: 0, skipped: reason } satisfies ScenarioRecord)}\n`);
}

export async function scenario(name: string, fn: () => Promise<void>): Promise<void> {
  const start = Date.now();
  const file = process.env.E2E_SUMMARY;
  const write = (rec: ScenarioRecord) => {
    if (file) appendFileSync(file, `${JSON.stringify(rec)}\n`);
  };
  try {
    await fn();
    write({ name, pass: true, seconds: (Date.now() - start) / 1000 });
  } catch (e) {
    write({ name, pass: false, seconds: (Date.now() - start) / 1000, error: (e instanceof Error ? e.message : String(e)).split("\n")[0].slice(0, 160) });
    throw e;
  }
}

export function formatSummary(records: ScenarioRecord[]): string {
  const width = Math.max(8, ...records.map((r) => r.name.length));
  const lines = [`${"scenario".padEnd(width)}  result  seconds`, `${"-".repeat(width)}  ------  -------`];
  for (const r of records) {
    const result = r.skipped ? "skip" : r.pass ? "pass" : "FAIL";
    const note = r.skipped ? `  ${r.skipped}` : r.pass ? "" : `  ${r.error ?? ""}`;
    lines.push(`${r.name.padEnd(width)}  ${result.padEnd(6)}  ${r.seconds.toFixed(1).padStart(7)}${note}`);
  }
  const skips = records.filter((r) => r.skipped).length;
  const failed = records.filter((r) => !r.pass && !r.skipped).length;
  const total = records.reduce((s, r) => s + r.seconds, 0);
  lines.push(`${records.length} scenarios: ${records.length - failed - skips} passed, ${failed} failed, ${skips} not run; ${total.toFixed(1)} s in scenarios`);
  return lines.join("\n");
}

if (require.main === module) {
  const file = process.argv[2];
  const records = file && existsSync(file) ? readFileSync(file, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as ScenarioRecord) : [];
  process.stdout.write(`${formatSummary(records)}\n`);
}
