// The data path, composed for the program (components/program.ts calls dataPath once):
// accessories healthy -> Litestream restore -> (the program's migrate and releases).
//
// What is protected, and how:
// - `protect` on what holds data (accessory boot commands, the bucket and its settings): on by
//   default when the stack is named `production`; `railhead:accessories.<n>.protect` and
//   `railhead:litestream.protect` turn it on or off explicitly for any stack.
// - Volumes are never removed by a delete unless `purgeOnDelete: true`; buckets are
//   `retainOnDelete: true` on every stack and never `forceDestroy`.
import * as pulumi from "@pulumi/pulumi";
import { Accessory } from "./accessory";
import { BackupBucket } from "./buckets";
import type { DeployConfig } from "./config";
import { hostCommand, type HostHandle } from "./host-command";
import { sqliteRoles, type LitestreamSettings } from "./litestream-config";
import { LitestreamReplica, litestreamPrefix } from "./litestream-replica";
import { drillCron, renderCredentialsEnv, renderLitestreamStdin } from "./litestream-render";

export interface DataPathArgs {
  readonly config: DeployConfig;
  /** Host handles by host name (every host the config names). */
  readonly hosts: Record<string, HostHandle>;
  /** Secret values by name (LoadedConfig.secrets). */
  readonly secrets: Record<string, pulumi.Output<string>>;
  /** Per host: what must exist before an accessory or the replicator starts there (the app network). */
  readonly hostReady?: Record<string, pulumi.Resource[]>;
  /** The app image (resolved ref), used by the drill for sqlite3. */
  readonly appImage: pulumi.Input<string>;
  /** The app network name on the hosts (default railhead). */
  readonly network?: string;
  readonly parent?: pulumi.Resource;
}

export interface DataPath {
  readonly accessories: Record<string, Accessory>;
  readonly litestream?: LitestreamReplica;
  readonly bucket?: BackupBucket;
  /** migrate and every release depend on these: accessories healthy, SQLite restored. */
  readonly ready: pulumi.Resource[];
  /** Extra env per role (DATABASE_URL, REDIS_URL...): secret Outputs, to be sent on stdin only. */
  readonly roleEnv: Record<string, Record<string, pulumi.Output<string>>>;
  /** Volumes per role, `name:/path` (the SQLite storage volume), for `release --volume`. */
  readonly roleVolumes: Record<string, string[]>;
  /** The stack's default for protecting data-holding resources (config keys may override per resource). */
  readonly protect: boolean;
}

/** The default for `protect`: production stacks protect what holds data; see the header. */
export function protectData(stack: string): boolean {
  return stack === "production";
}

export function storageVolume(service: string, ls: LitestreamSettings): string {
  return ls.volume ?? `${service}-storage`;
}

export function defaultBucketName(service: string, stack: string): string {
  return `${service}-${stack}-litestream`.toLowerCase().replace(/[^a-z0-9.-]/g, "-").slice(0, 63);
}

/** The `drill postgres` arguments of a scheduled backup: the file replica dir, or the bucket (`--s3`, config on stdin). */
export function backupDrillArgs(service: string, name: string, ls: LitestreamSettings, prefix: string): string[] {
  const target = ls.replica.type === "file" ? ["--target", ls.replica.path] : ["--s3"];
  return ["--service", service, "--name", name, ...target, "--prefix", prefix, "--dump"];
}

export function dataPath(args: DataPathArgs): DataPath {
  const { config: cfg, hosts, secrets } = args;
  const protect = protectData(cfg.stack);
  const network = args.network ?? "railhead";
  const parent = args.parent ? { parent: args.parent } : {};
  const handle = (name: string): HostHandle => {
    const h = hosts[name];
    if (!h) throw new Error(`dataPath: no host handle for "${name}"`);
    return h;
  };

  const accessories: Record<string, Accessory> = {};
  const ready: pulumi.Resource[] = [];
  const ls = cfg.litestream && cfg.litestream.enabled ? cfg.litestream : undefined;
  for (const [name, a] of Object.entries(cfg.accessories)) {
    const acc = new Accessory(name, { service: cfg.service, host: handle(a.host), config: a, secrets, network, protect: a.protect ?? protect }, { ...parent, dependsOn: args.hostReady?.[a.host] ?? [] });
    accessories[name] = acc;
    ready.push(...acc.ready);
  }

  const roleEnv: Record<string, Record<string, pulumi.Output<string>>> = {};
  const roleVolumes: Record<string, string[]> = {};
  for (const role of cfg.roles) {
    roleEnv[role.name] = {};
    roleVolumes[role.name] = [];
    for (const acc of Object.values(accessories)) Object.assign(roleEnv[role.name], acc.envFor(role.name, role.hosts));
  }

  let litestream: LitestreamReplica | undefined;
  let bucket: BackupBucket | undefined;
  if (ls) {
    const roles = sqliteRoles(ls, cfg.roles);
    const hostName = roles[0]?.hosts[0];
    if (!hostName) throw new Error("dataPath: litestream is enabled but no role mounts the SQLite volume (config validation should have caught this)");
    const volume = storageVolume(cfg.service, ls);
    const prefix = litestreamPrefix(ls, cfg.service, cfg.stack);
    for (const r of roles) roleVolumes[r.name].push(`${volume}:${ls.storage}`);
    const secretOf = (n: string) => {
      const v = secrets[n];
      if (!v) throw new Error(`dataPath: secret "${n}" is not set (config validation should have caught this)`);
      return v;
    };
    let replica: ConstructorParameters<typeof LitestreamReplica>[1]["replica"];
    let credentials: { accessKeyId: pulumi.Input<string>; secretAccessKey: pulumi.Input<string> } | undefined;
    const dependsOn: pulumi.Resource[] = [...(args.hostReady?.[hostName] ?? [])];
    if (ls.replica.type === "file") {
      replica = { type: "file", dir: ls.replica.path };
    } else {
      const r = ls.replica;
      const given = r.accessKeyId && r.secretAccessKey ? { accessKeyId: secretOf(r.accessKeyId), secretAccessKey: secretOf(r.secretAccessKey) } : undefined;
      bucket = new BackupBucket(
        `${cfg.service}-replicas`,
        { bucket: r.bucket ?? defaultBucketName(cfg.service, cfg.stack), createBucket: r.createBucket, region: r.region, endpoint: r.endpoint, forcePathStyle: r.forcePathStyle, prefix, credentials: given, protect: ls.protect ?? protect },
        parent,
      );
      replica = { type: "s3", bucket: bucket.bucketName, region: r.region, endpoint: r.endpoint, forcePathStyle: bucket.forcePathStyle };
      credentials = { accessKeyId: bucket.accessKeyId, secretAccessKey: bucket.secretAccessKey };
      dependsOn.push(...bucket.ready);
    }
    litestream = new LitestreamReplica(
      `${cfg.service}-litestream`,
      { service: cfg.service, stack: cfg.stack, host: handle(hostName), settings: ls, volume, replica, credentials, sqliteImage: ls.sqliteImage ?? args.appImage, dependsOn },
      parent,
    );
    ready.push(...litestream.ready);
    // Postgres backups: pg-dump + restore drill on a schedule, to the same replica target and
    // per-stack prefix. For S3 the host keeps the same stdin document as `litestream replicate`
    // (YAML, separator, credentials env) for the cron run; the credentials are never in argv.
    const lsStdin = credentials
      ? pulumi.secret(
          pulumi
            .all([litestream.configYml, credentials.accessKeyId, credentials.secretAccessKey])
            .apply(([yml, accessKeyId, secretAccessKey]) => renderLitestreamStdin(yml, renderCredentialsEnv({ accessKeyId, secretAccessKey }))),
        )
      : undefined;
    for (const [name, a] of Object.entries(cfg.accessories)) {
      if (!a.backup) continue;
      const acc = accessories[name];
      hostCommand(
        handle(a.host),
        `${cfg.service}-${name}/backup`,
        {
          create: ["drill", "schedule", "--service", cfg.service, "--kind", "postgres", "--id", name, "--cron", drillCron(a.backup.schedule, `${cfg.service}/${cfg.stack}/${name}`), "--", ...backupDrillArgs(cfg.service, name, ls, prefix)],
          delete: ["drill", "unschedule", "--service", cfg.service, "--kind", "postgres", "--id", name],
          ...(lsStdin ? { stdin: lsStdin } : {}),
        },
        { parent: acc, dependsOn: [...acc.ready, ...(bucket?.ready ?? [])] },
      );
    }
  } else {
    // validateAccessories reports a backup without a Litestream replica before anything is registered.
    const missing = Object.entries(cfg.accessories).find(([, a]) => a.backup);
    if (missing) throw new Error(`accessory ${missing[0]}: backup needs the Litestream replica (config validation should have caught this)`);
  }
  return { accessories, litestream, bucket, ready, roleEnv, roleVolumes, protect };
}
