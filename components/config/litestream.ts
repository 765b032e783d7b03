// Config for SQLite durability through Litestream under `railhead:litestream`.
// The shape makes two replicators on one replica path impossible by construction: there is one
// replicator per service on the single SQLite host, the database list has no duplicates, and each
// database's replica path is `<prefix>/<database>` under a per-stack prefix.
import { z } from "zod";
import type { ConfigProblem } from "./problems";
import type { RoleConfig } from "./types";
import { int, isLoopback, isPrivateIpv4, obj, secretRef } from "./shared";
import { cronProblem } from "./hardening";
import type { Section } from "./section";

/** Go duration as litestream 0.3.13 parses it (`time.ParseDuration`): 500ms, 1s, 10m, 1h30m. */
const DURATION_RE = /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/;
const goDuration = z.string().regex(DURATION_RE, { error: (iss) => `${JSON.stringify(iss.input)} is not a Go duration like 1s, 10m, 1h or 72h` });
const duration = (def: string, what: string) => goDuration.default(def).describe(what);
const DB_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/; // no "/" and no leading ".": never outside storage
/** Path segments without "." or ".." (a root container chowns the replica path; it must stay under the replica dir). */
const PREFIX_RE = /^(?!\.{1,2}(\/|$))[A-Za-z0-9_.-]+(\/(?!\.{1,2}(\/|$))[A-Za-z0-9_.-]+)*$/;
const BUCKET_RE = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const secretName = secretRef;

export const fileReplicaSchema = obj({
    type: z.literal("file"),
    path: z.string().startsWith("/", { error: "an absolute path" }).default("/var/lib/railhead-replicas").describe("host directory; replicas go to <path>/<prefix>/<db>. Protects against bad deploys, not against losing the host"),
});

export const s3ReplicaSchema = obj({
    type: z.literal("s3"),
    bucket: z.string().regex(BUCKET_RE, { error: "an S3 bucket name: 3-63 lower-case letters, digits, dots and hyphens" }).optional().describe("bucket name (default <service>-<stack>-litestream)"),
    createBucket: z.boolean().default(true).describe("create and configure the bucket (versioning, encryption, public access block, lifecycle); false = it exists"),
    region: z.string().regex(/^[a-z0-9-]+$/, { error: (iss) => `${JSON.stringify(iss.input)} is not a region name (lower-case letters, digits and -, e.g. fsn1 or eu-central-1)` }).default("us-east-1").describe("AWS region, or the provider's (Hetzner fsn1, R2 auto)"),
    endpoint: z.url({ error: (iss) => `${JSON.stringify(iss.input)} is not a URL (https://host)` }).optional().describe("S3-compatible endpoint (Hetzner, R2, B2, MinIO), https://...; absent = AWS"),
    forcePathStyle: z.boolean().optional().describe("path-style URLs (default: true with an endpoint)"),
    accessKeyId: secretName.optional().describe("secret with the access key id; required with an endpoint; on AWS default: an IAM user limited to the prefix"),
    secretAccessKey: secretName.optional(),
}, { access_key_id: "=accessKeyId", secret_access_key: "=secretAccessKey", url: "=endpoint", force_path_style: "=forcePathStyle" });

export const litestreamSchema = obj({
    enabled: z.boolean().default(true),
    image: z.string().default("litestream/litestream:0.3.13").describe("litestream image, 0.3.13 (the config format rendered here)"),
    sqliteImage: z.string().optional().describe("image with the sqlite3 CLI for the drill's integrity check (default: the app image)"),
    storage: z.string().startsWith("/", { error: "an absolute path" }).default("/rails/storage").describe("the app's SQLite directory inside the container"),
    volume: z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/).optional().describe("named volume holding the SQLite files (default <service>-storage)"),
    uid: int(0, 65535, "a user id").default(1000).describe("the app's UID; the replicator runs as it"),
    databases: z
      .array(z.string().regex(DB_RE, { error: "a file name under storage, e.g. production.sqlite3" }))
      .min(1)
      .default(["production.sqlite3", "production_queue.sqlite3"])
      .describe("SQLite files under storage (Rails 8: primary and queue; add cache if wanted; cable off)"),
    roles: z.array(z.string()).optional().describe("roles that mount the SQLite volume (default all)"),
    replica: z.union([fileReplicaSchema, s3ReplicaSchema], { error: "replica is `{ type: file, path }` or `{ type: s3, bucket, region, endpoint }`" }).default({ type: "file", path: "/var/lib/railhead-replicas" }),
    protect: z.boolean().optional().describe("protect the bucket and its settings from deletion; default: on for the production stack"),
    prefix: z.string().regex(PREFIX_RE, { error: "path segments without leading or trailing slash, e.g. demo/production" }).optional().describe("replica path prefix (default <service>/<stack>)"),
    syncInterval: duration("1s", "how often WAL changes are shipped: the data-loss window"),
    snapshotInterval: duration("1h", "full snapshot interval; bounds restore time"),
    retention: duration("72h", "how long snapshots and WAL are kept"),
    validationInterval: goDuration.optional().describe("optional: litestream restores and compares checksums at this interval"),
    drill: obj({
        schedule: z.string().min(1).default("daily").describe("when the backup drill runs: hourly, daily, weekly, or a 5-field cron expression"),
        tables: int(1, 50, "a number of tables").default(3).describe("largest tables whose row counts are compared"),
        tolerance: z.union([z.number().min(0).max(100), z.string().regex(/^\d+(\.\d+)?$/).transform(Number).pipe(z.number().max(100))], { error: "a percentage from 0 to 100" }).default(1).describe("percent of rows the restored copy may lag the live database"),
      })
      .prefault({}),
  }, {
    replicas: "Litestream's replicas list is one replica here: replica: { type: s3, bucket, region, endpoint }",
    dbs: "=databases",
    bucket: "goes under replica: replica: { type: s3, bucket: ... }",
    endpoint: "goes under replica: replica: { type: s3, endpoint: ... }",
    path: "=storage",
    sync_interval: "=syncInterval",
    snapshot_interval: "=snapshotInterval",
  })
  .optional();

export const litestream: Section = {
  key: "litestream",
  schema: litestreamSchema,
  examples: [
    [/^litestream\.replica\.(accessKeyId|secretAccessKey)/, "accessKeyId: [LITESTREAM_ACCESS_KEY_ID], secretAccessKey: [LITESTREAM_SECRET_ACCESS_KEY]   then: pulumi config set --secret --path 'railhead:secrets.LITESTREAM_ACCESS_KEY_ID' <key>"],
    [/^litestream\.replica\.endpoint/, "endpoint: https://fsn1.your-objectstorage.com"],
    [/^litestream\.replica/, "replica: { type: s3, bucket: acme-demo-litestream, region: fsn1, endpoint: https://fsn1.your-objectstorage.com, accessKeyId: [LITESTREAM_ACCESS_KEY_ID], secretAccessKey: [LITESTREAM_SECRET_ACCESS_KEY] }"],
    [/^litestream\.drill/, 'drill: { schedule: "17 3 * * *", tables: 3, tolerance: 1 }'],
    [/^litestream\.databases/, "databases: [production.sqlite3, production_queue.sqlite3]"],
    [/^litestream\.(syncInterval|snapshotInterval|retention|validationInterval)/, "syncInterval: 1s   (a Go duration: 500ms, 1s, 10m, 72h)"],
    [/^litestream\.prefix/, "prefix: demo/production"],
    [/^litestream/, "railhead:litestream: { databases: [production.sqlite3], replica: { type: file, path: /var/lib/railhead-replicas } }"],
  ],
};

export type LitestreamConfig = z.infer<typeof litestreamSchema>;
export type LitestreamSettings = NonNullable<LitestreamConfig>;
export type ReplicaConfig = LitestreamSettings["replica"];

export interface LitestreamValidationContext {
  readonly hosts: string[];
  readonly roles: RoleConfig[];
  readonly secretNames: ReadonlySet<string>;
  readonly problems: ConfigProblem[];
  readonly keyPath: (path: ReadonlyArray<string | number>) => string;
}


/** The roles that mount the SQLite volume. */
export function sqliteRoles(ls: LitestreamSettings, roles: RoleConfig[]): RoleConfig[] {
  return roles.filter((r) => !ls.roles || ls.roles.includes(r.name));
}

export function validateLitestream(ls: LitestreamConfig, ctx: LitestreamValidationContext): void {
  if (!ls || !ls.enabled) return;
  const p = (path: Array<string | number>, message: string, example?: string) => ctx.problems.push({ path: ctx.keyPath(["litestream", ...path]), message, example });
  const roleNames = ctx.roles.map((r) => r.name);
  (ls.roles ?? []).forEach((r, i) => {
    if (!roleNames.includes(r)) p(["roles", i], `unknown role "${r}"; roles are: ${roleNames.join(", ")}`, `roles: [${roleNames[0] ?? "web"}]`);
  });
  const roles = sqliteRoles(ls, ctx.roles);
  const hosts = new Set(roles.flatMap((r) => r.hosts));
  if (hosts.size > 1) {
    p(
      ["roles"],
      `SQLite roles (${roles.map((r) => r.name).join(", ")}) run on ${hosts.size} hosts (${[...hosts].join(", ")}); a SQLite database lives on one host, so every role that mounts it must run on the same single host`,
      "servers: { web: { hosts: [app-1] }, job: { hosts: [app-1], cmd: bin/jobs } }",
    );
  }
  if (roles.length === 0) p(["roles"], "no role mounts the SQLite volume, so there is nothing to replicate", "roles: [web]");
  const dup = ls.databases.find((d, i) => ls.databases.indexOf(d) !== i);
  if (dup) p(["databases"], `"${dup}" is listed twice; two replicators on one database lose data silently`, "databases: [production.sqlite3, production_queue.sqlite3]");
  const cron = cronProblem(ls.drill.schedule);
  if (cron) p(["drill", "schedule"], cron, 'schedule: "17 3 * * *"   (or hourly, daily, weekly)');
  if (ls.replica.type === "s3") {
    const r = ls.replica;
    // Plain http only to loopback or a private network (e.g. MinIO beside the app); never across the internet.
    if (r.endpoint && !endpointOk(r.endpoint)) {
      p(["replica", "endpoint"], "must be https:// (credentials and data travel over it); plain http only to loopback or a private network address", "endpoint: https://fsn1.your-objectstorage.com");
    }
    if (!r.createBucket && !r.bucket) p(["replica", "bucket"], "required when createBucket is false (the bucket exists)", "bucket: acme-demo-litestream");
    if (Boolean(r.accessKeyId) !== Boolean(r.secretAccessKey)) {
      p(["replica", r.accessKeyId ? "secretAccessKey" : "accessKeyId"], "accessKeyId and secretAccessKey go together", "accessKeyId: [LITESTREAM_ACCESS_KEY_ID], secretAccessKey: [LITESTREAM_SECRET_ACCESS_KEY]");
    }
    for (const k of ["accessKeyId", "secretAccessKey"] as const) {
      const name = r[k];
      const example = `${k}: [LITESTREAM_${k === "accessKeyId" ? "ACCESS_KEY_ID" : "SECRET_ACCESS_KEY"}]`;
      if (!name) {
        if (r.endpoint) p(["replica", k], "required for an S3-compatible endpoint (there is no IAM there to make a key)", example);
      } else if (!ctx.secretNames.has(name)) {
        p(["replica", k], `names secret "${name}", which is not set`, `pulumi config set --secret --path 'railhead:secrets.${name}' <value>`);
      }
    }
  }
}

/** https anywhere; plain http only to loopback or a private address, parsed (userinfo cannot hide the host). */
export function endpointOk(endpoint: string): boolean {
  let u: URL;
  try {
    u = new URL(endpoint);
  } catch {
    return false;
  }
  if (u.username || u.password) return false;
  if (u.protocol === "https:") return true;
  return u.protocol === "http:" && (isLoopback(u.hostname) || isPrivateIpv4(u.hostname));
}
