// LitestreamReplica: SQLite durability on the one host that runs the SQLite roles
// (DESIGN.md decision 8). Children, in the order they happen on the host:
//   restore   `litestream restore`: each missing database is restored before the first release
//   replicate `litestream replicate`: one long-lived replicator for the service on the host
//   drill     `drill schedule`: the backup drill from cron (restore + integrity + row counts)
// The program makes releases depend on `ready` (the restore). Config and credentials travel on
// stdin; the credentials only ever in the env part (components/litestream-render.ts).
import * as pulumi from "@pulumi/pulumi";
import { hostCommand, type HostCommand, type HostHandle } from "./host-command";
import type { LitestreamSettings } from "./litestream-config";
import { drillCron, renderCredentialsEnv, renderLitestreamStdin, renderLitestreamYml, replicaPath, type RenderReplica } from "./litestream-render";

export interface LitestreamReplicaArgs {
  readonly service: string;
  readonly stack: string;
  readonly host: HostHandle;
  readonly settings: LitestreamSettings;
  /** The storage volume the SQLite roles mount (also returned by dataPath as roleVolumes). */
  readonly volume: string;
  /** Where replicas go: a host directory or a bucket (from BackupBucket). */
  readonly replica: { readonly type: "file"; readonly dir: string } | { readonly type: "s3"; readonly bucket: pulumi.Input<string>; readonly region: string; readonly endpoint?: string; readonly forcePathStyle?: boolean };
  /** S3 credentials (secret). */
  readonly credentials?: { readonly accessKeyId: pulumi.Input<string>; readonly secretAccessKey: pulumi.Input<string> };
  /** Image with sqlite3 (or python3) for the drill: the app image by default. */
  readonly sqliteImage: pulumi.Input<string>;
  /** Everything the restore waits for (the bucket, the host's network...). */
  readonly dependsOn?: pulumi.Input<pulumi.Resource>[];
}

/** The per-stack prefix: config `prefix`, else `<service>/<stack>`. */
export function litestreamPrefix(settings: LitestreamSettings, service: string, stack: string): string {
  return settings.prefix ?? `${service}/${stack}`;
}

export class LitestreamReplica extends pulumi.ComponentResource {
  public readonly restore: HostCommand;
  public readonly replicate: HostCommand;
  public readonly drill: HostCommand;
  /** Releases wait for these: the databases exist (restored) or are known to have no replica. */
  public readonly ready: pulumi.Resource[];
  public readonly prefix: string;
  /** Replica path per database (inside the bucket or under the file replica dir). */
  public readonly replicaPaths: Record<string, string>;
  /** The rendered litestream.yml (no secrets). */
  public readonly configYml: pulumi.Output<string>;

  constructor(name: string, args: LitestreamReplicaArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("railhead:index:LitestreamReplica", name, {}, opts);
    const s = args.settings;
    this.prefix = litestreamPrefix(s, args.service, args.stack);
    this.replicaPaths = Object.fromEntries(s.databases.map((db) => [db, replicaPath(this.prefix, db)]));
    const r = args.replica;
    const replica: pulumi.Output<RenderReplica> =
      r.type === "file" ? pulumi.output({ type: "file" as const, dir: r.dir }) : pulumi.output(r.bucket).apply((bucket) => ({ type: "s3" as const, bucket, region: r.region, endpoint: r.endpoint, forcePathStyle: r.forcePathStyle }));
    this.configYml = replica.apply((rep) =>
      renderLitestreamYml({
        storage: s.storage,
        databases: s.databases,
        replica: rep,
        prefix: this.prefix,
        syncInterval: s.syncInterval,
        snapshotInterval: s.snapshotInterval,
        retention: s.retention,
        validationInterval: s.validationInterval,
      }),
    );
    const env = args.credentials
      ? pulumi.all([args.credentials.accessKeyId, args.credentials.secretAccessKey]).apply(([accessKeyId, secretAccessKey]) => renderCredentialsEnv({ accessKeyId, secretAccessKey }))
      : pulumi.output("");
    const stdin = pulumi.secret(pulumi.all([this.configYml, env]).apply(([yml, e]) => renderLitestreamStdin(yml, e)));

    const common = ["--service", args.service, "--volume", args.volume, "--uid", String(s.uid), "--image", s.image];
    const identity = args.host.identity;
    const child = { parent: this };
    this.restore = hostCommand(args.host, `${name}/restore`, { create: ["litestream", "restore", ...common, "--host-identity", identity], stdin }, { ...child, dependsOn: args.dependsOn });
    this.replicate = hostCommand(
      args.host,
      `${name}/replicate`,
      { create: ["litestream", "replicate", ...common, "--host-identity", identity], delete: ["litestream", "remove", "--service", args.service], stdin },
      { ...child, dependsOn: [this.restore] },
    );
    const drillArgs: pulumi.Input<string>[] = ["--service", args.service, "--volume", args.volume, "--uid", String(s.uid), "--image", s.image, "--sqlite-image", args.sqliteImage, "--tables", String(s.drill.tables), "--tolerance", String(s.drill.tolerance)];
    this.drill = hostCommand(
      args.host,
      `${name}/drill`,
      {
        create: ["drill", "schedule", "--service", args.service, "--kind", "sqlite", "--cron", drillCron(s.drill.schedule, `${args.service}/${args.stack}`), "--", ...drillArgs],
        delete: ["drill", "unschedule", "--service", args.service, "--kind", "sqlite"],
      },
      { ...child, dependsOn: [this.replicate] },
    );
    this.ready = [this.restore];
    this.registerOutputs({ prefix: this.prefix, replicaPaths: this.replicaPaths, configYml: this.configYml });
  }
}
