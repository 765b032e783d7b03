// Pure renderers for Litestream 0.3.13: the litestream.yml a host receives, the credentials env,
// and the one stdin document the host tool splits into both. No Pulumi here: tested directly.
//
// Rules (research/litestream.md A1, B3, "Implications"):
// - absolute database and replica paths (0.3.13 resolves relative ones against the CWD);
// - one replica path per database, `<prefix>/<db>`, never shared (two writers lose data silently);
// - explicit endpoint, region and force-path-style for S3-compatible stores (0.3.13 would otherwise
//   call GetBucketLocation against us-east-1);
// - credentials only in the environment (LITESTREAM_ACCESS_KEY_ID / LITESTREAM_SECRET_ACCESS_KEY,
//   which 0.3.13 copies to AWS_*), never in the YAML;
// - a single-item `replicas:` list, which 0.5 still accepts when the image is upgraded.

export type RenderReplica =
  | { readonly type: "file"; readonly dir: string }
  | { readonly type: "s3"; readonly bucket: string; readonly region: string; readonly endpoint?: string; readonly forcePathStyle?: boolean };

export interface LitestreamRenderInput {
  /** Absolute directory of the SQLite files inside the containers (the storage volume's mount). */
  readonly storage: string;
  readonly databases: readonly string[];
  readonly replica: RenderReplica;
  /** Per-stack path prefix, e.g. `demo/production`. */
  readonly prefix: string;
  readonly syncInterval: string;
  readonly snapshotInterval: string;
  readonly retention: string;
  readonly validationInterval?: string;
  /** db-level monitor interval (litestream default 1s); tests and benchmarks lower it. */
  readonly monitorInterval?: string;
}

/** Separates litestream.yml from the env file in the host tool's stdin. */
export const STDIN_ENV_SEPARATOR = "### railhead:env ###";

export function replicaPath(prefix: string, database: string): string {
  return `${trimSlashes(prefix)}/${database}`;
}

/** The absolute paths of the databases as the replicator sees them. */
export function databasePaths(input: Pick<LitestreamRenderInput, "storage" | "databases">): string[] {
  return input.databases.map((db) => `${input.storage.replace(/\/+$/, "")}/${db}`);
}

export function renderLitestreamYml(input: LitestreamRenderInput): string {
  if (!input.storage.startsWith("/")) throw new Error(`storage must be absolute, got "${input.storage}"`);
  if (input.replica.type === "file" && !input.replica.dir.startsWith("/")) throw new Error(`file replica dir must be absolute, got "${input.replica.dir}"`);
  const seen = new Set<string>();
  for (const db of input.databases) {
    if (seen.has(db)) throw new Error(`database "${db}" listed twice: one replicator and one replica path per database`);
    if (db.includes("/")) throw new Error(`database "${db}" must be a file name under storage`);
    seen.add(db);
  }
  const q = (s: string) => JSON.stringify(s); // a JSON string is a valid YAML double-quoted scalar
  const lines = [
    "# litestream 0.3.13 config rendered by Railhead (components/litestream-render.ts); do not edit on the host.",
    "# Credentials come from LITESTREAM_ACCESS_KEY_ID / LITESTREAM_SECRET_ACCESS_KEY in the environment.",
    "dbs:",
  ];
  const paths = databasePaths(input);
  input.databases.forEach((db, i) => {
    lines.push(`  - path: ${q(paths[i])}`);
    if (input.monitorInterval) lines.push(`    monitor-interval: ${input.monitorInterval}`);
    lines.push("    replicas:");
    const r = input.replica;
    if (r.type === "file") {
      lines.push("      - name: file", "        type: file", `        path: ${q(`${r.dir.replace(/\/+$/, "")}/${replicaPath(input.prefix, db)}`)}`);
    } else {
      lines.push("      - name: s3", "        type: s3", `        bucket: ${q(r.bucket)}`, `        path: ${q(replicaPath(input.prefix, db))}`, `        region: ${q(r.region)}`);
      if (r.endpoint) lines.push(`        endpoint: ${q(r.endpoint)}`);
      lines.push(`        force-path-style: ${r.forcePathStyle ?? Boolean(r.endpoint)}`);
    }
    lines.push(`        sync-interval: ${input.syncInterval}`, `        snapshot-interval: ${input.snapshotInterval}`, `        retention: ${input.retention}`);
    if (input.validationInterval) lines.push(`        validation-interval: ${input.validationInterval}`);
  });
  return `${lines.join("\n")}\n`;
}

export interface ReplicaCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

/** The env file (KEY=VALUE lines) with the replica credentials; empty for a file replica. */
export function renderCredentialsEnv(creds: ReplicaCredentials | undefined): string {
  if (!creds) return "";
  for (const v of [creds.accessKeyId, creds.secretAccessKey]) {
    if (/[\r\n]/.test(v)) throw new Error("credentials must be single-line values");
  }
  return `LITESTREAM_ACCESS_KEY_ID=${creds.accessKeyId}\nLITESTREAM_SECRET_ACCESS_KEY=${creds.secretAccessKey}\n`;
}

/** What `railhead-host litestream ...` and `drill sqlite` read on stdin: the YAML, the separator, the env. */
export function renderLitestreamStdin(yml: string, env: string): string {
  if (yml.split("\n").includes(STDIN_ENV_SEPARATOR)) throw new Error("litestream.yml must not contain the env separator line");
  return `${yml.endsWith("\n") ? yml : `${yml}\n`}${STDIN_ENV_SEPARATOR}\n${env}`;
}

/** The drill schedule as a cron expression (the host tool installs it). */
export function drillCron(schedule: string, seed: string): string {
  // Spread hosts and stacks over the hour so drills do not all hit the bucket at once.
  let h = 0;
  for (const c of seed) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  const minute = h % 60;
  const hour = 2 + (h % 4); // 02:00-05:59 host time
  switch (schedule) {
    case "hourly":
      return `${minute} * * * *`;
    case "daily":
      return `${minute} ${hour} * * *`;
    case "weekly":
      return `${minute} ${hour} * * 0`;
    default:
      return schedule;
  }
}

function trimSlashes(s: string): string {
  return s.replace(/^\/+|\/+$/g, "");
}
