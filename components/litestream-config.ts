// Config for SQLite durability through Litestream under `railhead:litestream`.
import { z } from "zod";
import type { ConfigProblem, RoleConfig } from "./config";

export const litestreamSchema = z
  .object({
    enabled: z.boolean().default(true),
    image: z.string().default("litestream/litestream:0.3.13").describe("litestream image (0.3.13 format)"),
    storage: z.string().default("/rails/storage").describe("the app's SQLite directory inside the container"),
    volume: z.string().optional().describe("named volume holding the SQLite files (default <service>-storage)"),
    uid: z.number().int().default(1000).describe("the app's UID; the replicator runs as it"),
    databases: z
      .array(z.string().regex(/^[A-Za-z0-9_.-]+$/))
      .default(["production.sqlite3", "production_queue.sqlite3"])
      .describe("SQLite files under storage (Rails 8: primary and queue; add cache if wanted; cable off)"),
    roles: z.array(z.string()).optional().describe("roles that mount the SQLite volume (default all)"),
    replica: z
      .union([
        z.object({ type: z.literal("file"), path: z.string().default("/var/lib/railhead-replicas") }).strict(),
        z
          .object({
            type: z.literal("s3"),
            bucket: z.string().optional().describe("existing bucket; default: created by Railhead"),
            createBucket: z.boolean().default(true),
            region: z.string().default("us-east-1"),
            endpoint: z.string().optional().describe("S3-compatible endpoint (Hetzner, R2, B2, MinIO); absent = AWS"),
            forcePathStyle: z.boolean().optional(),
            accessKeyId: z.tuple([z.string()]).transform(([n]) => n).optional(),
            secretAccessKey: z.tuple([z.string()]).transform(([n]) => n).optional(),
          })
          .strict(),
      ])
      .default({ type: "file", path: "/var/lib/railhead-replicas" }),
    prefix: z.string().optional().describe("replica path prefix (default <service>/<stack>)"),
    syncInterval: z.string().default("1s"),
    snapshotInterval: z.string().default("1h"),
    retention: z.string().default("72h"),
    validationInterval: z.string().optional(),
    drill: z.object({ schedule: z.string().default("daily") }).strict().default({}),
  })
  .strict()
  .optional();

export type LitestreamConfig = z.infer<typeof litestreamSchema>;

export interface LitestreamValidationContext {
  readonly hosts: string[];
  readonly roles: RoleConfig[];
  readonly secretNames: ReadonlySet<string>;
  readonly problems: ConfigProblem[];
  readonly keyPath: (path: ReadonlyArray<string | number>) => string;
}

/** Every role that mounts the SQLite volume must run on one and the same host. */
export function validateLitestream(ls: LitestreamConfig, ctx: LitestreamValidationContext): void {
  if (!ls || !ls.enabled) return;
  const roles = ctx.roles.filter((r) => !ls.roles || ls.roles.includes(r.name));
  const hosts = new Set(roles.flatMap((r) => r.hosts));
  if (hosts.size > 1) {
    ctx.problems.push({
      path: ctx.keyPath(["litestream", "roles"]),
      message: `SQLite roles (${roles.map((r) => r.name).join(", ")}) run on ${hosts.size} hosts (${[...hosts].join(", ")}); a SQLite database lives on one host, so every role that mounts it must run on the same single host`,
      example: "servers: { web: { hosts: [app-1] }, job: { hosts: [app-1], cmd: bin/jobs } }",
    });
  }
  if (ls.replica.type === "s3" && ls.replica.endpoint) {
    for (const k of ["accessKeyId", "secretAccessKey"] as const) {
      const name = ls.replica[k];
      if (!name) ctx.problems.push({ path: ctx.keyPath(["litestream", "replica", k]), message: "required for an S3-compatible endpoint (no IAM there)", example: `${k}: [LITESTREAM_${k === "accessKeyId" ? "ACCESS_KEY_ID" : "SECRET_ACCESS_KEY"}]` });
      else if (!ctx.secretNames.has(name)) ctx.problems.push({ path: ctx.keyPath(["litestream", "replica", k]), message: `names secret "${name}", which is not set`, example: `pulumi config set --secret --path 'railhead:secrets.${name}' <value>` });
    }
  }
}
