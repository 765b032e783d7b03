// `railhead:boot`: how many hosts release at once, and the pause between groups.
import { z } from "zod";
import { int, obj } from "./shared";
import type { Section } from "./section";

export const bootSchema = obj({
  limit: z
    .union([int(1, 10000, "a number of hosts"), z.string().regex(/^\d+%$/)], { error: 'a count of hosts (2) or a percentage ("25%")' })
    .optional()
    .describe("hosts per boot group: a count or a percentage"),
  wait: int(0, 3600, "a number of seconds").default(0).describe("seconds between boot groups"),
}, { parallel_roles: "not supported: job roles start after the first web group is healthy (Kamal's barrier)" });

export const boot: Section = {
  key: "boot",
  schema: bootSchema.prefault({}),
  examples: [
    [/^boot\.limit/, 'boot: { limit: 2 }   or   boot: { limit: "25%" }'],
    [/^boot/, 'railhead:boot: { limit: "50%", wait: 2 }'],
  ],
};
