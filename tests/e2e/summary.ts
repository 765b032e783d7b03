// TEST EQUIPMENT (e2e): the scenario summary. Each scenario is wrapped in `scenario(name, fn)`,
// which appends {name, pass, seconds, error} to $E2E_SUMMARY (a JSON-lines file) and rethrows;
// `node --import tsx tests/e2e/summary.ts FILE` prints the table.
import { appendFileSync, existsSync, readFileSync } from "node:fs";

export interface ScenarioRecord {
  name: string;
  pass: boolean;
  seconds: number;
  error?: string;
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
  for (const r of records) lines.push(`${r.name.padEnd(width)}  ${(r.pass ? "pass" : "FAIL").padEnd(6)}  ${r.seconds.toFixed(1).padStart(7)}${r.pass ? "" : `  ${r.error ?? ""}`}`);
  const failed = records.filter((r) => !r.pass).length;
  const total = records.reduce((s, r) => s + r.seconds, 0);
  lines.push(`${records.length} scenarios, ${records.length - failed} passed, ${failed} failed, ${total.toFixed(1)} s in scenarios`);
  return lines.join("\n");
}

if (require.main === module) {
  const file = process.argv[2];
  const records = file && existsSync(file) ? readFileSync(file, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as ScenarioRecord) : [];
  process.stdout.write(`${formatSummary(records)}\n`);
}
