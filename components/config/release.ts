// The release settings that are single values: retain, migrate, readinessDelay, stopTimeout.
import { z } from "zod";
import { command, int } from "./shared";
import type { Section } from "./section";

export const retain: Section = {
  key: "retain",
  schema: int(1, 100, "a number of releases").default(5).describe("stopped releases kept for rollback"),
  examples: [[/^retain/, "railhead:retain: 5"]],
};

export const migrate: Section = {
  key: "migrate",
  raw: "string",
  schema: z
    .union([command("migrate"), z.literal(false)], { error: "a command (bin/rails db:prepare) or false" })
    .default("bin/rails db:prepare")
    .describe("run once per release before the web cutover; false to skip"),
  examples: [[/^migrate/, "railhead:migrate: bin/rails db:prepare   (or false)"]],
};

export const readinessDelay: Section = {
  key: "readinessDelay",
  schema: int(0, 600, "a number of seconds").default(7).describe("seconds a role without proxy or Docker healthcheck must stay running"),
  examples: [[/^readinessDelay/, "railhead:readinessDelay: 7"]],
};

export const stopTimeout: Section = {
  key: "stopTimeout",
  schema: int(1, 3600, "a number of seconds").default(10).describe("docker stop -t for old releases"),
  examples: [[/^stopTimeout/, "railhead:stopTimeout: 10"]],
};
