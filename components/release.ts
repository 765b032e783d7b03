// The release machinery WebRole and JobRole share: the exact tool argv of a release, a migration and
// a role removal (pure, so tests read the words a host will run, as Kamal's command objects do), the
// env file sent on stdin, and the per-host release commands in boot groups.
//
// A release command carries no triggers (DESIGN.md decision 3): everything that defines a release is
// in its arguments or its stdin, so a new version, image, option or env value is an update that
// re-runs the release on the host, and the delete (`role remove`) runs only when the role leaves it.
import * as pulumi from "@pulumi/pulumi";
import { bootGroups, type ProxySettings, type RoleConfig } from "./config";
import { hostCommand, type HostCommand } from "./host-command";
import type { ReleaseHost } from "./host";

export interface ReleaseSpec {
  readonly service: string;
  /** What the hosts run: a digest-pinned ref when the program built or resolved it (components/image.ts). */
  readonly image: pulumi.Input<string>;
  /** The release version (container name suffix); an Output when it comes from a build's digest. */
  readonly version: pulumi.Input<string>;
  readonly retain: number;
  readonly readinessDelay: number;
  readonly role: RoleConfig;
  /** Health and timing of the proxied cutover; set for proxied (web) roles. */
  readonly web?: ProxySettings;
  /**
   * Named volumes the role's containers mount, `name:/path` (dataPath's `roleVolumes`: the SQLite
   * storage volume the Litestream replicator shares). Each becomes `--volume`; part of the spec.
   */
  readonly volumes?: readonly string[];
}

/** `release ...` without `--host-identity` (added per host). Pure (image and version may be Outputs, passed through). */
export function releaseArgv(spec: ReleaseSpec): pulumi.Input<string>[] {
  const r = spec.role;
  const web =
    spec.web && r.proxy
      ? [
          "--web",
          "--app-port",
          String(r.proxy.appPort),
          "--health-path",
          spec.web.healthcheck.path,
          "--health-interval",
          String(spec.web.healthcheck.interval),
          "--health-timeout",
          String(spec.web.healthcheck.timeout),
          "--deploy-timeout",
          String(spec.web.deployTimeout),
          "--drain-timeout",
          String(spec.web.drainTimeout),
        ]
      : [];
  // `flag: true` is `--flag` (docker reads `--init true` as the image); `flag: false` is docker's default.
  const options = Object.keys(r.options)
    .sort()
    .filter((k) => r.options[k] !== "false")
    .flatMap((k) => ["--option", r.options[k] === "true" ? k : `${k}=${r.options[k]}`]);
  return [
    "release",
    "--service",
    spec.service,
    "--role",
    r.name,
    "--version",
    spec.version,
    "--image",
    spec.image,
    ...web,
    "--stop-timeout",
    String(r.stopTimeout),
    "--retain",
    String(spec.retain),
    ...(r.cmd ? ["--cmd", r.cmd] : []),
    ...options,
    ...volumeArgs(spec.volumes),
    "--readiness-delay",
    String(spec.readinessDelay),
  ];
}

/** `role remove ...`: stops and removes only this role's containers of this service. Pure. */
export function roleRemoveArgv(service: string, role: string): string[] {
  return ["role", "remove", "--service", service, "--role", role];
}

/** `migrate ...`, with the primary role's volumes (the same SQLite files). Pure (image and version may be Outputs, passed through). */
export function migrateArgv(service: string, version: pulumi.Input<string>, image: pulumi.Input<string>, cmd: string, volumes: readonly string[] = []): pulumi.Input<string>[] {
  return ["migrate", "--service", service, "--version", version, "--image", image, ...volumeArgs(volumes), "--cmd", cmd];
}

/** `--volume name:/path` per volume, in the given order (the tool sorts them for its spec). */
function volumeArgs(volumes: readonly string[] = []): string[] {
  return volumes.flatMap((v) => ["--volume", v]);
}

/** `--wait-after N` for every boot group but the last when `boot.wait` > 0 (Kamal sleeps between groups). */
export function waitAfterArgv(group: number, groups: number, bootWait: number | undefined): string[] {
  return bootWait && bootWait > 0 && group < groups - 1 ? ["--wait-after", String(bootWait)] : [];
}

// ---------------------------------------------------------------------------------------------
// Env file

export interface RoleEnv {
  readonly clear: Record<string, string>;
  /** Names of keys in `railhead:secrets`. */
  readonly secret: string[];
}

/** The service's env with the role's on top (a role value wins; a role secret replaces a clear). */
export function mergeEnv(global: RoleEnv, role: RoleEnv): RoleEnv {
  const clear = { ...global.clear, ...role.clear };
  const secret = [...new Set([...global.secret, ...role.secret])];
  for (const name of secret) delete clear[name];
  return { clear, secret };
}

const LINE_BREAK = /[\r\n\0]/;

/**
 * The env file a release writes (0600) from stdin: `KEY=VALUE` lines in key order. Always a secret
 * Output, since it holds secret values; they are joined inside `pulumi.all`, never unwrapped
 * elsewhere. A value with a line break cannot be one line, so it is refused (its name is reported,
 * never its value).
 */
export function envFile(env: RoleEnv, secrets: Record<string, pulumi.Output<string>>, extra: Record<string, pulumi.Output<string>> = {}): pulumi.Output<string> {
  for (const [k, v] of Object.entries(env.clear)) {
    if (LINE_BREAK.test(v)) throw new Error(`env value ${k} contains a line break; an env file holds one line per variable`);
  }
  const secretOutputs = env.secret.map((name) => {
    const value = secrets[name];
    if (!value) throw new Error(`env names secret ${name}, which is not set in railhead:secrets`);
    return value.apply((v) => {
      if (LINE_BREAK.test(v)) throw new Error(`secret ${name} contains a line break; an env file holds one line per variable (encode it, e.g. base64)`);
      return [name, v] as const;
    });
  });
  // Values the deploy derives (an accessory's DATABASE_URL) give way to what the config sets.
  const derived = Object.entries(extra)
    .filter(([k]) => !(k in env.clear) && !env.secret.includes(k))
    .map(([k, o]) => o.apply((v) => [k, v] as const));
  const text = pulumi.all([pulumi.all(secretOutputs), pulumi.all(derived)]).apply(([pairs, more]) => {
    const all: Record<string, string> = { ...env.clear };
    for (const [k, v] of [...more, ...pairs]) all[k] = v;
    return Object.keys(all)
      .sort()
      .map((k) => `${k}=${all[k]}\n`)
      .join("");
  });
  return pulumi.secret(text);
}

// ---------------------------------------------------------------------------------------------
// Release commands

export interface RoleArgs {
  readonly spec: ReleaseSpec;
  /** Hosts by name; must hold every host of the role. */
  readonly hosts: Record<string, ReleaseHost>;
  /** `railhead:boot.limit`. */
  readonly bootLimit?: number | string;
  /** `railhead:boot.wait`: seconds a group's releases wait after releasing before the next group starts. */
  readonly bootWait?: number;
  /** The env file (secret), sent on stdin. */
  readonly env: pulumi.Output<string>;
  /** Every release of the role waits for these (image build, migration, accessories, an earlier role's group). */
  readonly after: pulumi.Resource[];
}

export interface RoleReleases {
  /** Release commands per boot group, in order; each group waits for the whole previous group. */
  readonly groups: HostCommand[][];
  /** Release command per host name. */
  readonly byHost: Record<string, HostCommand>;
}

/**
 * Registers one release command per host of the role, `<component>-<host>/release`, children of
 * `parent`. `perHost` adds what a release waits for on its own host (the proxy's backend).
 */
export function registerReleases(
  parent: pulumi.ComponentResource,
  name: string,
  args: RoleArgs,
  perHost: (host: string) => pulumi.Resource[] = () => [],
): RoleReleases {
  const groups: HostCommand[][] = [];
  const byHost: Record<string, HostCommand> = {};
  const argv = releaseArgv(args.spec);
  let previous: HostCommand[] = [];
  const all = bootGroups(args.spec.role.hosts, args.bootLimit);
  all.forEach((group, index) => {
    const wait = waitAfterArgv(index, all.length, args.bootWait);
    const current = group.map((hostName) => {
      const host = args.hosts[hostName];
      if (!host) throw new Error(`role ${args.spec.role.name}: unknown host ${hostName}`);
      const cmd = hostCommand(
        host,
        `${name}-${hostName}/release`,
        {
          create: [...argv, ...wait, "--host-identity", host.identity],
          delete: roleRemoveArgv(args.spec.service, args.spec.role.name),
          stdin: args.env,
        },
        { parent, dependsOn: [...host.pullReady, ...args.after, ...perHost(hostName), ...previous] },
      );
      byHost[hostName] = cmd;
      return cmd;
    });
    groups.push(current);
    previous = current;
  });
  return { groups, byHost };
}

// ---------------------------------------------------------------------------------------------
// Migration

export interface MigrateArgs {
  /** The primary role's first host. */
  readonly host: ReleaseHost;
  readonly service: string;
  readonly version: pulumi.Input<string>;
  readonly image: pulumi.Input<string>;
  /** `railhead:migrate`, e.g. `bin/rails db:prepare`. */
  readonly cmd: string;
  /** The primary role's env file (secret). */
  readonly env: pulumi.Output<string>;
  /** The primary role's volumes, `name:/path` (the SQLite storage), mounted as its releases mount them. */
  readonly volumes?: readonly string[];
  /** The image build, proxies, accessories and restores it waits for. */
  readonly after: pulumi.Resource[];
}

/**
 * Runs the migration once per version, on one host, before any web release. The version is in its
 * arguments, so a new version is an update that runs it again; no delete.
 */
export class Migrate extends pulumi.ComponentResource {
  readonly run: HostCommand;

  constructor(name: string, args: MigrateArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("railhead:index:Migrate", name, {}, opts);
    this.run = hostCommand(
      args.host,
      `${name}/run`,
      { create: migrateArgv(args.service, args.version, args.image, args.cmd, args.volumes), stdin: args.env },
      { parent: this, dependsOn: [...args.host.pullReady, ...args.after] },
    );
    this.registerOutputs({});
  }
}
