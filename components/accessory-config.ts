// Config for accessories (Postgres, Redis, or a generic container) under `railhead:accessories`.
// Presets are data over one Accessory implementation (components/accessory.ts).
import { z } from "zod";
import type { ConfigProblem } from "./config";

const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

export const accessorySchema = z
  .object({
    preset: z.enum(["postgres", "redis"]).optional().describe("fills image, port, healthcheck, volume and URL env for you"),
    image: z.string().optional().describe("image, required without a preset"),
    host: z.string().describe("host name from railhead:hosts"),
    cmd: z.string().optional(),
    port: z
      .union([z.number().int().min(1).max(65535), z.string()])
      .optional()
      .describe("publish: `5432` binds loopback and the private IP; `\"10.0.1.5:5432:5432\"` explicit; a public bind needs publicBind: true"),
    publicBind: z.boolean().default(false).describe("opt in to publishing on all interfaces (warned)"),
    env: z
      .object({ clear: z.record(z.string()).default({}), secret: z.array(z.string().regex(ENV_NAME_RE)).default([]) })
      .strict()
      .default({}),
    volumes: z.array(z.string()).default([]).describe("named volumes `name:/path` (kept on delete unless purgeOnDelete)"),
    directories: z.array(z.string()).default([]),
    files: z.record(z.string()).default({}).describe("container path -> file content"),
    options: z.record(z.union([z.string(), z.number(), z.boolean()])).default({}),
    purgeOnDelete: z.boolean().default(false).describe("remove data volumes when the accessory is removed"),
    // preset knobs
    password: z.tuple([z.string().regex(ENV_NAME_RE)]).transform(([n]) => n).optional().describe("postgres: secret name of the password"),
    database: z.string().optional().describe("postgres: database name (default <service>_production)"),
    user: z.string().optional().describe("postgres: user (default <service>)"),
    maxmemory: z.string().optional().describe("redis: maxmemory, e.g. 256mb"),
    maxmemoryPolicy: z.string().optional().describe("redis: maxmemory-policy, e.g. allkeys-lru"),
    roles: z.array(z.string()).optional().describe("roles that get DATABASE_URL / REDIS_URL (default all)"),
  })
  .strict();

export const accessoriesSchema = z.record(z.string().regex(/^[a-z0-9][a-z0-9_-]*$/), accessorySchema).default({});

export type AccessoryConfig = z.infer<typeof accessorySchema>;
export type AccessoriesConfig = z.infer<typeof accessoriesSchema>;

export function validateAccessories(
  accessories: AccessoriesConfig,
  hostNames: string[],
  secretNames: ReadonlySet<string>,
  problems: ConfigProblem[],
  keyPath: (path: ReadonlyArray<string | number>) => string,
): void {
  for (const [name, a] of Object.entries(accessories)) {
    if (!hostNames.includes(a.host)) {
      problems.push({ path: keyPath(["accessories", name, "host"]), message: `unknown host "${a.host}"; hosts are: ${hostNames.join(", ")}`, example: `host: ${hostNames[0] ?? "db-1"}` });
    }
    if (!a.preset && !a.image) problems.push({ path: keyPath(["accessories", name, "image"]), message: "required without a preset", example: "image: postgres:16.4   or   preset: postgres" });
    for (const [i, s] of a.env.secret.entries()) {
      if (!secretNames.has(s)) problems.push({ path: keyPath(["accessories", name, "env", "secret", i]), message: `names secret "${s}", which is not set`, example: `pulumi config set --secret --path 'railhead:secrets.${s}' <value>` });
    }
    if (a.password && !secretNames.has(a.password)) {
      problems.push({ path: keyPath(["accessories", name, "password"]), message: `names secret "${a.password}", which is not set`, example: `pulumi config set --secret --path 'railhead:secrets.${a.password}' <value>` });
    }
  }
}
