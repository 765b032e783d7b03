// Config for accessories (Postgres, Redis, or a generic container) under `railhead:accessories`.
// Presets are data over one Accessory implementation (components/accessory.ts): a preset only
// fills defaults (image, port, healthcheck, volume, env, the URL the app roles get).
import { z } from "zod";
import type { ConfigProblem } from "./problems";
import type { RoleConfig } from "./types";
import type { LitestreamConfig } from "./litestream";
import { envSchema } from "./env";
import { command, dockerOptions, int, nameKey, obj, oneLine, secretRef } from "./shared";
import { cronProblem } from "./hardening";
import type { Section } from "./section";

const VOLUME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*:\/[^:]*$/;
const secretName = secretRef;
const oneHost = "one host per accessory here: host: db-1 (Kamal's hosts/roles placement); for a second host add a second accessory";

export const accessorySchema = obj({
    preset: z.enum(["postgres", "redis"]).optional().describe("fills image, port, healthcheck, volume and the URL env for you"),
    image: z.string().min(1).optional().describe("image, required without a preset (an official, pinned tag, e.g. postgres:16.4)"),
    host: z.string().min(1).describe("host name from railhead:hosts"),
    cmd: command("cmd").optional().describe("container command (redis preset: built from maxmemory/appendonly)"),
    port: z
      .union([int(1, 65535, "a port"), z.string().regex(/^(\d{1,5})(:\d{1,5})?$/)], {
        error: (iss) =>
          typeof iss.input === "string" && /^[\d.]+:\d+:\d+$/.test(iss.input)
            ? `${JSON.stringify(iss.input)} names a bind address; Railhead binds loopback and the host's private IP itself (publicBind: true adds all interfaces), so write the port alone`
            : `expected a port (5432) or host:container ("15432:5432"), got ${JSON.stringify(iss.input)}`,
      })
      .optional()
      .describe("publish the container port on loopback and on the host's private IP: `5432` or `15432:5432`; needed when a role on another host uses it"),
    publicBind: z.boolean().default(false).describe("also publish on all interfaces (0.0.0.0); off by default, the tool warns when on"),
    env: envSchema
      .prefault({ clear: {}, secret: [] })
      .describe("container env: `clear` values, `secret` names of railhead:secrets (sent on stdin only)"),
    volumes: z.array(z.string().regex(VOLUME_RE, { error: (iss) => `${JSON.stringify(iss.input)} is not a named volume \`name:/absolute/path\` (host paths are not mounted)` })).default([]).describe("named volumes `name:/path`, prefixed with the service name on the host; kept on delete unless purgeOnDelete"),
    options: dockerOptions(),
    healthCmd: oneLine("healthCmd").min(1).optional().describe("a shell command run in the container that exits 0 when it serves (presets: pg_isready / redis-cli ping)"),
    protect: z.boolean().optional().describe("refuse to delete the accessory (pulumi protect); default: on for the production stack"),
    purgeOnDelete: z.boolean().default(false).describe("remove the data volumes when the accessory is removed (off: data outlives the accessory)"),
    roles: z.array(z.string()).optional().describe("roles that get DATABASE_URL / REDIS_URL (default: all)"),
    urlEnv: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: "an env name, e.g. DATABASE_URL" }).optional().describe("name of the URL env var given to the roles (default DATABASE_URL / REDIS_URL; none without a preset)"),
    // preset knobs
    password: secretName.optional().describe("postgres: secret holding the password (required for postgres)"),
    database: z.string().regex(/^[a-zA-Z_][a-zA-Z0-9_]*$/).optional().describe("postgres: database name (default <service>_production)"),
    user: z.string().regex(/^[a-zA-Z_][a-zA-Z0-9_]*$/).optional().describe("postgres: user (default <service>)"),
    maxmemory: z.string().regex(/^\d+(kb|mb|gb)?$/i).optional().describe("redis: maxmemory, e.g. 256mb"),
    maxmemoryPolicy: z.enum(["noeviction", "allkeys-lru", "allkeys-lfu", "volatile-lru", "volatile-lfu", "allkeys-random", "volatile-random", "volatile-ttl"]).optional().describe("redis: maxmemory-policy"),
    appendonly: z.boolean().default(true).describe("redis: AOF persistence so data survives a restart (default true)"),
    backup: obj({ schedule: z
        .string()
        .min(1)
        .check((ctx) => {
          const p = cronProblem(ctx.value);
          if (p) ctx.issues.push({ code: "custom", input: ctx.value, message: p, params: { example: 'schedule: "17 3 * * *"   (or hourly, daily, weekly)' } });
        })
        .default("daily").describe("cron schedule or daily/hourly for pg-dump + restore drill") })
      .optional()
      .describe("postgres: dump to the litestream replica target and drill the restore on a schedule"),
}, {
    hosts: oneHost,
    directories: "Kamal's directories are named volumes here: volumes: [data:/var/lib/postgresql/data] (kept on delete unless purgeOnDelete)",
    files: "not supported: files are not uploaded; use env, or bake them into the image",
    service: "the container is named <service>-<accessory name>",
    labels: "not supported: accessories carry railhead.* labels",
    servers: oneHost,
    tags: oneHost,
    ports: "=port",
    volume: "=volumes",
    environment: "=env",
    command: "=cmd",
    max_memory: "=maxmemory",
  });

export const accessoriesSchema = z.record(nameKey, accessorySchema).prefault({});

export const accessories: Section = {
  key: "accessories",
  schema: accessoriesSchema,
  entries: { name: nameKey, value: accessorySchema },
  examples: [
    [/^accessories\.[^.]+\.password/, "password: [POSTGRES_PASSWORD]   then: pulumi config set --secret --path 'railhead:secrets.POSTGRES_PASSWORD' <value>"],
    [/^accessories\.[^.]+\.(host|hosts|servers|roles)\b/, "db: { preset: postgres, host: db-1, password: [POSTGRES_PASSWORD] }"],
    [/^accessories\.[^.]+\.(volumes|directories)/, "volumes: [data:/var/lib/postgresql/data]"],
    [/^accessories\.[^.]+\.port/, "port: 5432   or   port: \"15432:5432\""],
    [/^accessories\.[^.]+\.env/, "env: { clear: { POSTGRES_INITDB_ARGS: --data-checksums }, secret: [POSTGRES_PASSWORD] }"],
    [/^accessories\.[^.]+\.backup/, "backup: { schedule: daily }"],
    [/^accessories\.[^.]+\.(maxmemory|maxmemoryPolicy|appendonly)/, "redis: { preset: redis, host: db-1, maxmemory: 256mb, maxmemoryPolicy: allkeys-lru }"],
    [/^accessories\.[^.]+\.preset/, "preset: postgres   (or redis)"],
    [/^accessories/, "railhead:accessories: { db: { preset: postgres, host: db-1, port: 5432, password: [POSTGRES_PASSWORD] } }"],
  ],
};

export type AccessoryConfig = z.infer<typeof accessorySchema>;
export type AccessoriesConfig = z.infer<typeof accessoriesSchema>;

/** The protocol-level facts of a preset: pure data, consumed by components/accessory.ts. */
export interface AccessoryPreset {
  readonly image: string;
  readonly containerPort: number;
  readonly dataPath: string;
  readonly healthCmd: string;
  readonly urlEnv: string;
}

export const PRESETS: Record<"postgres" | "redis", AccessoryPreset> = {
  postgres: { image: "postgres:16.4", containerPort: 5432, dataPath: "/var/lib/postgresql/data", healthCmd: 'pg_isready -q -h 127.0.0.1 -U "$POSTGRES_USER" -d "$POSTGRES_DB"', urlEnv: "DATABASE_URL" },
  redis: { image: "redis:7.4", containerPort: 6379, dataPath: "/data", healthCmd: "redis-cli ping | grep -q PONG", urlEnv: "REDIS_URL" },
};

export function validateAccessories(
  accessories: AccessoriesConfig,
  hostNames: string[],
  secretNames: ReadonlySet<string>,
  problems: ConfigProblem[],
  keyPath: (path: ReadonlyArray<string | number>) => string,
  /** Cross-checks that need other sections: the roles (URLs, `roles`) and Litestream (backup target). */
  context: { readonly roles?: RoleConfig[]; readonly litestream?: LitestreamConfig } = {},
): void {
  const roles = context.roles;
  const secretProblem = (path: Array<string | number>, s: string) =>
    problems.push({ path: keyPath(path), message: `names secret "${s}", which is not set`, example: `pulumi config set --secret --path 'railhead:secrets.${s}' <value>` });
  for (const [name, a] of Object.entries(accessories)) {
    const at = (...p: Array<string | number>) => ["accessories", name, ...p];
    if (!hostNames.includes(a.host)) {
      problems.push({ path: keyPath(at("host")), message: `unknown host "${a.host}"; hosts are: ${hostNames.join(", ")}`, example: `host: ${hostNames[0] ?? "db-1"}` });
    }
    if (!a.preset && !a.image) problems.push({ path: keyPath(at("image")), message: "required without a preset", example: "image: postgres:16.4   or   preset: postgres" });
    a.env.secret.forEach((s, i) => secretNames.has(s) || secretProblem(at("env", "secret", i), s));
    if (a.password && !secretNames.has(a.password)) secretProblem(at("password"), a.password);
    if (a.preset === "postgres" && !a.password) {
      problems.push({ path: keyPath(at("password")), message: "required for the postgres preset (the server refuses to start without one)", example: "password: [POSTGRES_PASSWORD]" });
    }
    if (a.preset !== "postgres") {
      for (const k of ["password", "database", "user", "backup"] as const) {
        if (a[k] !== undefined) problems.push({ path: keyPath(at(k)), message: `only applies to preset: postgres`, example: "preset: postgres" });
      }
    }
    if (a.preset !== "redis") {
      for (const k of ["maxmemory", "maxmemoryPolicy"] as const) {
        if (a[k] !== undefined) problems.push({ path: keyPath(at(k)), message: `only applies to preset: redis`, example: "preset: redis" });
      }
    }
    if (a.backup) {
      const ls = context.litestream;
      // Dumps go where the SQLite replicas go: the file replica dir or the S3 bucket (same prefix).
      if (!ls || !ls.enabled) {
        problems.push({
          path: keyPath(at("backup")),
          message: "Postgres dumps go to the Litestream replica target (a file dir or an S3 bucket), and this stack has no Litestream replica",
          example: "railhead:litestream: { replica: { type: s3, bucket: my-backups, region: fsn1, endpoint: https://fsn1.your-objectstorage.com } }",
        });
      }
    }
    const volNames = a.volumes.map((v) => v.split(":")[0]);
    const dupVol = volNames.find((v, i) => volNames.indexOf(v) !== i);
    if (dupVol) problems.push({ path: keyPath(at("volumes")), message: `volume "${dupVol}" is listed twice`, example: "volumes: [data:/var/lib/postgresql/data]" });
    if (!roles) continue;
    const roleNames = roles.map((r) => r.name);
    (a.roles ?? []).forEach((r, i) => {
      if (!roleNames.includes(r)) problems.push({ path: keyPath(at("roles", i)), message: `unknown role "${r}"; roles are: ${roleNames.join(", ")}`, example: `roles: [${roleNames[0] ?? "web"}]` });
    });
    // A role on another host reaches the accessory only through a published port on the private network.
    const users = roles.filter((r) => !a.roles || a.roles.includes(r.name));
    const remote = users.filter((r) => r.hosts.some((h) => h !== a.host));
    if (remote.length > 0 && a.port === undefined && (a.preset || a.urlEnv)) {
      problems.push({
        path: keyPath(at("port")),
        message: `roles ${remote.map((r) => r.name).join(", ")} run on other hosts than "${a.host}", so the accessory must be published on the private network`,
        example: `port: ${a.preset ? PRESETS[a.preset].containerPort : 5432}`,
      });
    }
  }
}
