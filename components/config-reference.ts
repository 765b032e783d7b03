// Renders the configuration reference from the schema, so README.md's reference and the checks
// never drift (Kamal validates its config against its own docs for the same reason). It walks the
// JSON Schema that zod generates from components/config (the same one editors get), so the
// reference, the JSON Schema and the checks come from one schema. A unit test compares README.md's
// reference section with this output; `node --import tsx components/config-reference.ts --write`
// refreshes it.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { railheadJsonSchema, type JsonSchema } from "./config/json-schema";
import { NAMESPACE } from "./config";

export interface ReferenceRow {
  readonly key: string;
  readonly type: string;
  readonly default?: string;
  readonly description: string;
}

const props = (s: JsonSchema): Record<string, JsonSchema> => (s.properties ?? {}) as Record<string, JsonSchema>;
const branches = (s: JsonSchema): JsonSchema[] => ((s.anyOf ?? s.oneOf ?? []) as JsonSchema[]);
const isObject = (s: JsonSchema) => s.type === "object" && s.properties !== undefined;
const isSecretLongForm = (s: JsonSchema) => isObject(s) && Object.keys(props(s)).join() === "secret";

function typeName(s: JsonSchema): string {
  if (s.const !== undefined) return JSON.stringify(s.const);
  if (Array.isArray(s.enum)) return (s.enum as unknown[]).map((o) => JSON.stringify(o)).join(" \\| ");
  const b = branches(s);
  if (b.length) {
    // `[NAME]` or `{ secret: NAME }`: a secret reference.
    if (b.some(isSecretLongForm)) return "[NAME] (secret reference)";
    // A whole number also accepted quoted ("5432") is a number.
    if (b.length === 2 && b.some((x) => x.type === "integer" || x.type === "number") && b.some((x) => x.type === "string" && typeof x.pattern === "string" && /\\d/.test(x.pattern))) {
      return typeName(b.find((x) => x.type !== "string") as JsonSchema);
    }
    return [...new Set(b.map(typeName))].join(" or ");
  }
  if (Array.isArray(s.type)) return (s.type as string[]).map((t) => (t === "integer" ? "number" : t)).join(" or ");
  switch (s.type) {
    case "integer":
    case "number":
      return "number";
    case "string":
    case "boolean":
      return s.type;
    case "array":
      if (Array.isArray(s.prefixItems)) return `[${(s.prefixItems as JsonSchema[]).map(typeName).join(", ")}]`;
      return `list of ${typeName((s.items ?? {}) as JsonSchema)}`;
    case "object":
      if (s.properties) return "object";
      if (s.additionalProperties && typeof s.additionalProperties === "object") return `map of ${typeName(s.additionalProperties as JsonSchema)}`;
      return "object";
    default:
      return "value";
  }
}

function formatDefault(v: unknown): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v === "object" && v !== null && Object.keys(v).length === 0) return undefined;
  return JSON.stringify(v);
}

function walk(prefix: string, s: JsonSchema, optional: boolean, rows: ReferenceRow[], depth: number): void {
  rows.push({ key: prefix, type: typeName(s) + (optional ? ", optional" : ""), default: formatDefault(s.default), description: (s.description as string | undefined) ?? "" });
  if (depth > 4) return;
  const children = (o: JsonSchema) => {
    for (const [k, v] of Object.entries(props(o))) {
      const at = rows.findIndex((r) => r.key === `${prefix}.${k}`);
      if (at < 0) walk(`${prefix}.${k}`, v, v.default === undefined && !((o.required as string[] | undefined) ?? []).includes(k), rows, depth + 1);
      else if (rows[at].type.replace(/, optional$/, "") !== typeName(v) && !rows[at].type.split(" or ").includes(typeName(v))) rows[at] = { ...rows[at], type: `${rows[at].type} or ${typeName(v)}` };
    }
  };
  if (isObject(s)) children(s);
  else if (s.type === "object" && s.additionalProperties && typeof s.additionalProperties === "object") {
    const inner = s.additionalProperties as JsonSchema;
    if (isObject(inner) || branches(inner).some(isObject)) walk(`${prefix}.<name>`, inner, false, rows, depth + 1);
  } else {
    // Object branches document their keys (e.g. a host is hcloud | ssh | local).
    for (const b of branches(s)) if (isObject(b) && !isSecretLongForm(b)) children(b);
  }
}

export function referenceRows(): ReferenceRow[] {
  const rows: ReferenceRow[] = [];
  const root = railheadJsonSchema();
  for (const [k, v] of Object.entries(props(root))) {
    if (k === "secrets") continue;
    walk(`${NAMESPACE}:${k}`, v, v.default === undefined && !["service", "image", "hosts", "servers"].includes(k), rows, 0);
  }
  rows.push({
    key: `${NAMESPACE}:secrets`,
    type: "map of string (secret)",
    description: (props(root).secrets?.description as string | undefined) ?? "",
  });
  return rows;
}

const esc = (s: string) => s.replace(/\|/g, "\\|").replace(/\n/g, " ");

export function renderReference(): string {
  const lines = ["| key | type | default | description |", "| --- | --- | --- | --- |"];
  for (const r of referenceRows()) lines.push(`| \`${r.key}\` | ${esc(r.type).replace(/\\\\\|/g, "\\|")} | ${r.default ? `\`${esc(r.default)}\`` : ""} | ${esc(r.description)} |`);
  return lines.join("\n");
}

export const BEGIN = "<!-- config-reference:begin (generated from components/config/; do not edit by hand) -->";
const OLD_BEGIN = "<!-- config-reference:begin (generated from components/config.ts; do not edit by hand) -->";
export const END = "<!-- config-reference:end -->";

export function readmeReference(readme: string): string | undefined {
  const a = readme.indexOf(BEGIN);
  const b = readme.indexOf(END);
  if (a < 0 || b < a) return undefined;
  return readme.slice(a + BEGIN.length, b).trim();
}

if (require.main === module) {
  const file = join(__dirname, "..", "README.md");
  if (process.argv.includes("--write")) {
    const readme = readFileSync(file, "utf8").replace(OLD_BEGIN, BEGIN);
    const a = readme.indexOf(BEGIN);
    const b = readme.indexOf(END);
    if (a < 0 || b < a) throw new Error(`README.md has no ${BEGIN} ... ${END} section`);
    writeFileSync(file, `${readme.slice(0, a + BEGIN.length)}\n${renderReference()}\n${readme.slice(b)}`);
  } else {
    process.stdout.write(`${renderReference()}\n`);
  }
}
