// Accessory: a long-lived service container on one host (Postgres, Redis, or any image), run by
// the host tool's `accessory boot` (DESIGN.md decision 7). Presets are data (PRESETS in
// accessory-config.ts) over this one implementation.
// - Ports are published on loopback and on the host's private IP only; all interfaces only with
//   `publicBind: true` (the tool warns).
// - Data lives on named volumes `<service>-<name>-<volume>`; the delete removes the container and
//   keeps the volumes unless `purgeOnDelete: true`.
// - `protect` (production) makes `pulumi destroy` refuse to remove it at all.
import * as pulumi from "@pulumi/pulumi";
import { PRESETS, type AccessoryConfig } from "./accessory-config";
import { hostCommand, type HostCommand, type HostHandle } from "./host-command";

export interface AccessoryArgs {
  readonly service: string;
  readonly host: HostHandle;
  readonly config: AccessoryConfig;
  /** Secret values by name (railhead:secrets); only the ones the config names are used. */
  readonly secrets: Record<string, pulumi.Output<string>>;
  /** The app network on the host (default railhead). */
  readonly network?: string;
  /** `protect` the accessory (production stacks). */
  readonly protect: boolean;
}

/** Everything `accessory boot` gets, derived from config alone (pure; tested directly). */
export interface AccessorySpec {
  readonly container: string;
  readonly image: string;
  readonly containerPort?: number;
  readonly hostPort?: number;
  readonly volumes: string[];
  readonly cmd?: string;
  readonly healthCmd?: string;
  readonly options: string[];
  readonly clearEnv: Record<string, string>;
  /** env name -> secret name */
  readonly secretEnv: Record<string, string>;
  readonly urlEnv?: string;
  readonly publicBind: boolean;
  readonly purgeOnDelete: boolean;
}

export function accessorySpec(service: string, name: string, c: AccessoryConfig): AccessorySpec {
  const preset = c.preset ? PRESETS[c.preset] : undefined;
  let containerPort = preset?.containerPort;
  let hostPort: number | undefined;
  if (c.port !== undefined) {
    const [h, cp] = String(c.port).split(":");
    hostPort = Number(h);
    containerPort = Number(cp ?? h);
  }
  const volumes = c.volumes.map((v) => `${service}-${name}-${v.slice(0, v.indexOf(":"))}:${v.slice(v.indexOf(":") + 1)}`);
  if (preset && !c.volumes.some((v) => v.endsWith(`:${preset.dataPath}`))) volumes.unshift(`${service}-${name}-data:${preset.dataPath}`);
  const clearEnv: Record<string, string> = Object.fromEntries(Object.entries(c.env.clear).map(([k, v]) => [k, String(v)]));
  const secretEnv: Record<string, string> = Object.fromEntries(c.env.secret.map((s) => [s, s]));
  let cmd = c.cmd;
  if (c.preset === "postgres") {
    clearEnv.POSTGRES_USER = postgresUser(service, c);
    clearEnv.POSTGRES_DB = postgresDatabase(service, c);
    if (c.password) secretEnv.POSTGRES_PASSWORD = c.password;
  }
  if (c.preset === "redis" && !cmd) {
    cmd = ["redis-server", "--protected-mode", "no", "--appendonly", c.appendonly ? "yes" : "no"]
      .concat(c.maxmemory ? ["--maxmemory", c.maxmemory] : [])
      .concat(c.maxmemoryPolicy ? ["--maxmemory-policy", c.maxmemoryPolicy] : [])
      .join(" ");
  }
  return {
    container: `${service}-${name}`,
    image: c.image ?? preset?.image ?? "",
    containerPort,
    hostPort: hostPort ?? (c.port !== undefined ? containerPort : undefined),
    volumes,
    cmd,
    healthCmd: c.healthCmd ?? preset?.healthCmd,
    options: Object.entries(c.options).map(([k, v]) => `${k}=${String(v)}`),
    clearEnv,
    secretEnv,
    urlEnv: c.urlEnv ?? preset?.urlEnv,
    publicBind: c.publicBind,
    purgeOnDelete: c.purgeOnDelete,
  };
}

export function postgresUser(service: string, c: AccessoryConfig): string {
  return c.user ?? service.replace(/[^a-zA-Z0-9_]/g, "_");
}

export function postgresDatabase(service: string, c: AccessoryConfig): string {
  return c.database ?? `${service.replace(/[^a-zA-Z0-9_]/g, "_")}_production`;
}

/** The `--port` binds: loopback and the private IP; all interfaces only when asked. */
export function portBinds(spec: AccessorySpec, privateIp: string | undefined): string[] {
  if (spec.hostPort === undefined || spec.containerPort === undefined) return [];
  const tail = `${spec.hostPort}:${spec.containerPort}`;
  if (spec.publicBind) return [`0.0.0.0:${tail}`];
  return [`127.0.0.1:${tail}`, ...(privateIp && privateIp !== "127.0.0.1" ? [`${privateIp}:${tail}`] : [])];
}

/**
 * The tool's argv for `accessory boot` (no secrets: those are in stdin). The private IP may be
 * unknown until the host exists, so its bind is one element that is empty when the host has no
 * private address (the tool ignores an empty `--port`).
 */
export function bootArgv(
  service: string,
  name: string,
  spec: AccessorySpec,
  privateIp: pulumi.Input<string | undefined>,
  network: string,
  identity: pulumi.Input<string>,
): pulumi.Input<string>[] {
  const argv: pulumi.Input<string>[] = ["accessory", "boot", "--service", service, "--name", name, "--image", spec.image, "--network", network];
  if (spec.hostPort !== undefined) {
    if (spec.publicBind) argv.push("--port", portBinds(spec, undefined)[0], "--allow-public");
    else argv.push("--port", portBinds(spec, undefined)[0], "--port", pulumi.output(privateIp).apply((ip) => portBinds(spec, ip)[1] ?? ""));
  }
  for (const v of spec.volumes) argv.push("--volume", v);
  if (spec.cmd) argv.push("--cmd", spec.cmd);
  for (const o of spec.options) argv.push("--option", o);
  if (spec.healthCmd) argv.push("--health-cmd", spec.healthCmd);
  argv.push("--host-identity", identity);
  return argv;
}

export class Accessory extends pulumi.ComponentResource {
  public readonly hostName: string;
  public readonly spec: AccessorySpec;
  /** Roles that get the URL (undefined: all). */
  public readonly roles?: string[];
  /** The boot command; healthy when it has run. */
  public readonly boot: HostCommand;
  /** Wait on these before anything uses the accessory (migrate, releases). */
  public readonly ready: pulumi.Resource[];
  /** URL for roles on the accessory's host (network alias on the app network); secret. */
  public readonly localUrl?: pulumi.Output<string>;
  /** URL for roles on other hosts (private IP and published port); secret. */
  public readonly privateUrl?: pulumi.Output<string>;

  constructor(name: string, args: AccessoryArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("railhead:index:Accessory", `${args.service}-${name}`, {}, opts);
    const c = args.config;
    const spec = accessorySpec(args.service, name, c);
    this.spec = spec;
    this.hostName = args.host.hostName;
    this.roles = c.roles;
    const network = args.network ?? "railhead";
    const secretOf = (n: string): pulumi.Output<string> => {
      const v = args.secrets[n];
      if (!v) throw new Error(`accessory ${name}: secret "${n}" is not set (config validation should have caught this)`);
      return v;
    };

    const envLines = pulumi
      .all(Object.entries(spec.secretEnv).map(([k, s]) => secretOf(s).apply((v) => `${k}=${v}`)))
      .apply((secretLines) => [...Object.entries(spec.clearEnv).map(([k, v]) => `${k}=${v}`), ...secretLines].join("\n") + "\n");
    const argv = bootArgv(args.service, name, spec, args.host.privateAddress, network, args.host.identity);
    const del = ["accessory", "remove", "--service", args.service, "--name", name, ...(spec.purgeOnDelete ? ["--purge"] : [])];
    this.boot = hostCommand(
      args.host,
      `${args.service}-${name}/boot`,
      { create: argv, delete: del, stdin: pulumi.secret(envLines) },
      { parent: this, protect: args.protect },
    );
    this.ready = [this.boot];

    const cport = spec.containerPort;
    if (spec.urlEnv && cport !== undefined) {
      const local = `${spec.container}:${cport}`;
      const remote = spec.hostPort !== undefined ? args.host.privateAddress.apply((ip) => `${ip ?? "127.0.0.1"}:${spec.hostPort}`) : undefined;
      if (c.preset === "postgres" && c.password) {
        const pw = secretOf(c.password);
        const u = encodeURIComponent(postgresUser(args.service, c));
        const db = postgresDatabase(args.service, c);
        this.localUrl = pulumi.secret(pulumi.interpolate`postgres://${u}:${pw.apply(encodeURIComponent)}@${local}/${db}`);
        if (remote) this.privateUrl = pulumi.secret(pulumi.interpolate`postgres://${u}:${pw.apply(encodeURIComponent)}@${remote}/${db}`);
      } else if (c.preset === "redis") {
        this.localUrl = pulumi.secret(pulumi.output(`redis://${local}/0`));
        if (remote) this.privateUrl = pulumi.secret(pulumi.interpolate`redis://${remote}/0`);
      }
    }
    this.registerOutputs({ container: spec.container, localUrl: this.localUrl, privateUrl: this.privateUrl });
  }

  /** The env a role gets: the URL through the alias when the role shares the host, else the private one. */
  envFor(roleName: string, roleHosts: readonly string[]): Record<string, pulumi.Output<string>> {
    if (!this.spec.urlEnv || (this.roles && !this.roles.includes(roleName))) return {};
    const url = roleHosts.every((h) => h === this.hostName) ? this.localUrl : this.privateUrl;
    return url ? { [this.spec.urlEnv]: url } : {};
  }
}
