// What every section module exports: its schema, how its top-level value arrives from the engine,
// and the examples shown next to its problems.
import type { z } from "zod";

export type Examples = ReadonlyArray<readonly [RegExp, string]>;

export interface Section {
  /** The top-level key under `railhead:`. */
  readonly key: string;
  readonly schema: z.ZodType;
  /** `string`: the engine hands the value over as written (`version: "1.10"` stays 1.10). */
  readonly raw?: "string";
  /** Record sections are parsed entry by entry, so one bad entry hides no other entry. */
  readonly entries?: { readonly name: z.ZodType; readonly value: z.ZodType };
  /** Matched against the bare dotted path (`hosts.web-1.hcloud.location`); the first match wins. */
  readonly examples: Examples;
}

export function exampleIn(examples: Examples, bare: string): string | undefined {
  return examples.find(([re]) => re.test(bare))?.[1];
}
