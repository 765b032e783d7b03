// Renders the configuration reference from the zod schema, so README.md's reference and the checks
// never drift (Kamal validates its config against its own docs for the same reason). A unit test
// compares README.md's reference section with this output; `node --import tsx
// components/config-reference.ts --write` refreshes it.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { configSchema, NAMESPACE } from "./config";

export interface ReferenceRow {
  readonly key: string;
  readonly type: string;
  readonly default?: string;
  readonly description: string;
}

interface Unwrapped {
  readonly schema: z.ZodTypeAny;
  readonly optional: boolean;
  readonly def?: unknown;
  readonly description?: string;
}

function unwrap(schema: z.ZodTypeAny): Unwrapped {
  let s = schema;
  let optional = false;
  let def: unknown;
  let description = s.description;
  for (;;) {
    description = description ?? s.description;
    if (s instanceof z.ZodOptional) {
      optional = true;
      s = s.unwrap();
    } else if (s instanceof z.ZodDefault) {
      def = s._def.defaultValue();
      s = s._def.innerType;
    } else if (s instanceof z.ZodEffects) {
      s = s.innerType();
    } else break;
  }
  return { schema: s, optional, def, description: description ?? s.description };
}

function typeName(schema: z.ZodTypeAny): string {
  const { schema: s } = unwrap(schema);
  if (s instanceof z.ZodString) return "string";
  if (s instanceof z.ZodNumber) return "number";
  if (s instanceof z.ZodBoolean) return "boolean";
  if (s instanceof z.ZodLiteral) return JSON.stringify(s.value);
  if (s instanceof z.ZodEnum) return (s.options as string[]).map((o) => JSON.stringify(o)).join(" \\| ");
  if (s instanceof z.ZodArray) return `list of ${typeName(s.element)}`;
  if (s instanceof z.ZodTuple) return `[${(s.items as z.ZodTypeAny[]).map(typeName).join(", ")}]`;
  if (s instanceof z.ZodRecord) return `map of ${typeName(s.valueSchema)}`;
  if (s instanceof z.ZodObject) return "object";
  if (s instanceof z.ZodUnion || s instanceof z.ZodDiscriminatedUnion) return [...new Set((s.options as z.ZodTypeAny[]).map(typeName))].join(" or ");
  return "value";
}

function formatDefault(v: unknown): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v === "object" && v !== null && Object.keys(v).length === 0) return undefined;
  return JSON.stringify(v);
}

function walk(prefix: string, schema: z.ZodTypeAny, rows: ReferenceRow[], depth: number): void {
  const u = unwrap(schema);
  const s = u.schema;
  rows.push({
    key: prefix,
    type: typeName(schema) + (u.optional ? ", optional" : ""),
    default: formatDefault(u.def),
    description: u.description ?? "",
  });
  if (depth > 4) return;
  if (s instanceof z.ZodObject) {
    for (const [k, v] of Object.entries(s.shape as Record<string, z.ZodTypeAny>)) walk(`${prefix}.${k}`, v, rows, depth + 1);
  } else if (s instanceof z.ZodRecord) {
    const inner = unwrap(s.valueSchema).schema;
    if (inner instanceof z.ZodObject || inner instanceof z.ZodUnion) walk(`${prefix}.<name>`, s.valueSchema, rows, depth + 1);
  } else if (s instanceof z.ZodUnion || s instanceof z.ZodDiscriminatedUnion) {
    // Object branches document their keys (e.g. a host is hcloud | ssh | local).
    for (const opt of s.options as z.ZodTypeAny[]) {
      const o = unwrap(opt).schema;
      // A `{ secret: NAME }` branch is the long form of `[NAME]`; its one key needs no row.
      if (o instanceof z.ZodObject && !("secret" in o.shape && Object.keys(o.shape).length === 1)) {
        for (const [k, v] of Object.entries(o.shape as Record<string, z.ZodTypeAny>)) {
          const at = rows.findIndex((r) => r.key === `${prefix}.${k}`);
          if (at < 0) walk(`${prefix}.${k}`, v, rows, depth + 1);
          else if (!rows[at].type.split(" or ").includes(typeName(v))) rows[at] = { ...rows[at], type: `${rows[at].type} or ${typeName(v)}` };
        }
      }
    }
  }
}

export function referenceRows(): ReferenceRow[] {
  const rows: ReferenceRow[] = [];
  for (const [k, v] of Object.entries(configSchema.shape as Record<string, z.ZodTypeAny>)) walk(`${NAMESPACE}:${k}`, v, rows, 0);
  rows.push({
    key: `${NAMESPACE}:secrets`,
    type: "map of string (secret)",
    description: "every secret value, by name; set each with `pulumi config set --secret --path 'railhead:secrets.NAME' <value>`; other keys name them as `[NAME]`",
  });
  return rows;
}

const esc = (s: string) => s.replace(/\|/g, "\\|").replace(/\n/g, " ");

export function renderReference(): string {
  const lines = ["| key | type | default | description |", "| --- | --- | --- | --- |"];
  for (const r of referenceRows()) lines.push(`| \`${r.key}\` | ${esc(r.type).replace(/\\\\\|/g, "\\|")} | ${r.default ? `\`${esc(r.default)}\`` : ""} | ${esc(r.description)} |`);
  return lines.join("\n");
}

export const BEGIN = "<!-- config-reference:begin (generated from components/config.ts; do not edit by hand) -->";
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
    const readme = readFileSync(file, "utf8");
    const a = readme.indexOf(BEGIN);
    const b = readme.indexOf(END);
    if (a < 0 || b < a) throw new Error(`README.md has no ${BEGIN} ... ${END} section`);
    writeFileSync(file, `${readme.slice(0, a + BEGIN.length)}\n${renderReference()}\n${readme.slice(b)}`);
  } else {
    process.stdout.write(`${renderReference()}\n`);
  }
}
