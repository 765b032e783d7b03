// The whole deploy as one graph (DESIGN.md decision 5):
//   host ready -> host tool -> app network -> proxy; accessories -> Litestream restore
//   -> migrate once on the primary host -> web releases in boot groups -> job releases;
//   the app image (components/image.ts: built and pushed, or a tag pinned to its registry digest)
//   before the migration and every release, which run the ref it returns.
//
// When a tag is resolved to a digest (decided by planImage in components/image.ts):
//   - `railhead:builder` set: the image is built (and pushed unless the stack is all-local without
//     a registry); releases run the build's `repoDigest` (`repo@sha256:...`, or the local image id).
//   - a plain tag (`repo:tag`) on a registry: resolved BY DEFAULT, through the
//     `docker:index/getRegistryImage:getRegistryImage` invoke, at preview and at up, so a preview
//     shows the exact `repo:tag@sha256:...` every host will pull. This needs read access to the
//     registry from the machine running Pulumi.
//   - the opt-out: `railhead:image` given with a digest (`repo@sha256:...` or `repo:tag@sha256:...`,
//     with `railhead:version` to name the release) is used as is: no invoke, no build, nothing
//     registered for the image. So is a local image id (`sha256:...`), and, on an all-local stack
//     without a registry, a tag with no registry host (an image only in this machine's engine).
// Everything that can be wrong with the config is found before the first resource is registered.
import * as pulumi from "@pulumi/pulumi";
import { ConfigError, loadConfig, type ConfigProblem, type DeployConfig, type LoadedConfig, type RoleConfig } from "./config";
import { bundleHostTool, type HostToolBundle } from "./host-tool/bundle";
import { HcloudBase, hcloudName } from "./hcloud-base";
import { Host } from "./host";
import { Proxy, type ProxyService } from "./proxy";
import { envFile, mergeEnv, Migrate, type ReleaseSpec } from "./release";
import { WebRole } from "./web-role";
import { JobRole } from "./job-role";
import { dataPath } from "./data-path";
import { planImage, resolveImage, type ResolvedImage } from "./image";

export interface RailheadOptions {
  /** The host tool to upload; default: bundled from components/host-tool. */
  readonly tool?: HostToolBundle;
}

export interface HostOutput {
  readonly kind: string;
  readonly address: pulumi.Output<string>;
  readonly privateAddress: pulumi.Output<string | undefined>;
  /** The host key connections pin (the day-2 CLI writes its known_hosts from it). */
  readonly hostKey: pulumi.Output<string | undefined>;
}

export interface RailheadOutputs {
  readonly service: string;
  readonly stack: string;
  /** The ref releases run: digest-pinned when built or resolved (see the header). */
  readonly image: pulumi.Output<string>;
  /** The release version: from config, or from the build's digest. */
  readonly version: pulumi.Output<string>;
  readonly hosts: Record<string, HostOutput>;
  /** Where the app answers: its domains, or each proxied host's address. */
  readonly urls: pulumi.Output<string[]>;
}

export function railhead(loaded?: LoadedConfig, options: RailheadOptions = {}): RailheadOutputs {
  // Nothing below may register a resource before every check has passed.
  const { config, secrets } = loaded ?? loadConfig();
  const plan = planDeploy(config);
  const tool = options.tool ?? bundleHostTool();

  // 0. The app image: built and pushed, or its tag pinned to a digest. The migration and every
  //    release wait for its resources and run its ref (see the header for when a tag is resolved).
  const image = new AppImage("image", { config, secrets });

  // 1. What Hetzner hosts share.
  const base = plan.hcloudPrefix
    ? new HcloudBase("hcloud", {
        prefix: plan.hcloudPrefix,
        publicKey: config.ssh.publicKey ?? "",
        sshAllowFrom: config.ssh.allowFrom,
        network: config.network,
      })
    : undefined;

  // 2. Hosts: ready, tool uploaded, checked, app network, registry login.
  const privateKey = config.ssh.privateKeySecret ? secrets[config.ssh.privateKeySecret] : undefined;
  const registry = config.registry
    ? { server: config.registry.server, username: config.registry.username, password: secrets[config.registry.passwordSecret] }
    : undefined;
  const hosts: Record<string, Host> = {};
  for (const h of Object.values(config.hosts)) {
    hosts[h.name] = new Host(`host-${h.name}`, {
      config: h,
      sshUser: config.ssh.user,
      privateKey,
      tool,
      hcloud: h.kind === "hcloud" && base && config.ssh.publicKey ? { base, publicKey: config.ssh.publicKey, protectAddress: plan.dnsHosts.has(h.name) } : undefined,
      registry,
    });
  }

  // 3. A proxy on every host of a proxied role, with a backend per proxied role there.
  const proxies: Record<string, Proxy> = {};
  for (const [hostName, services] of plan.proxyServices) {
    proxies[hostName] = new Proxy(`proxy-${hostName}`, { host: hosts[hostName], settings: config.proxy, services });
  }
  const proxyReady = Object.values(proxies).flatMap((p) => p.ready);

  // 4. The data path (components/data-path.ts): accessories healthy, then the Litestream
  //    restore-if-missing, after the hosts' app network; migrate and every release wait for it.
  const data = dataPath({ config, hosts, secrets, appImage: image.ref });
  const dataReady = data.ready;
  const envByRole = Object.fromEntries(config.roles.map((r) => [r.name, envFile(mergeEnv(config.env, r.env), secrets, data.roleEnv[r.name])]));

  // 5. The migration, once, on the primary role's first host, before any web release.
  const primary = config.roles.find((r) => r.name === config.primaryRole);
  let migrate: Migrate | undefined;
  if (config.migrate !== false && primary) {
    migrate = new Migrate("migrate", {
      host: hosts[primary.hosts[0]],
      service: config.service,
      version: image.version,
      image: image.ref,
      cmd: config.migrate,
      env: envByRole[primary.name],
      volumes: data.roleVolumes[primary.name],
      after: [...image.resources, ...proxyReady, ...dataReady],
    });
  }
  const afterMigrate = [...image.resources, ...(migrate ? [migrate.run] : []), ...dataReady];

  // 6. Web roles (proxied), in boot groups; then job roles after the primary role's first group.
  const spec = (role: RoleConfig): ReleaseSpec => ({
    service: config.service,
    image: image.ref,
    version: image.version,
    retain: config.retain,
    readinessDelay: config.readinessDelay,
    role,
    web: role.proxy ? config.proxy : undefined,
    volumes: data.roleVolumes[role.name],
  });
  const webRoles: Record<string, WebRole> = {};
  for (const role of config.roles.filter((r) => r.proxy)) {
    webRoles[role.name] = new WebRole(role.name, {
      spec: spec(role),
      hosts,
      bootLimit: config.boot.limit,
      bootWait: config.boot.wait,
      env: envByRole[role.name],
      after: afterMigrate,
      proxies,
    });
  }
  const firstWebGroup = primary && webRoles[primary.name] ? webRoles[primary.name].groups[0] ?? [] : [];
  for (const role of config.roles.filter((r) => !r.proxy)) {
    new JobRole(role.name, {
      spec: spec(role),
      hosts,
      bootLimit: config.boot.limit,
      bootWait: config.boot.wait,
      env: envByRole[role.name],
      after: [...afterMigrate, ...firstWebGroup],
    });
  }

  return {
    service: config.service,
    stack: config.stack,
    image: image.ref,
    version: pulumi.output(image.version),
    hosts: Object.fromEntries(
      Object.values(hosts).map((h) => [h.hostName, { kind: h.kind, address: h.address, privateAddress: h.privateAddress, hostKey: h.hostKey }]),
    ),
    urls: appUrls(config, hosts),
  };
}

// ---------------------------------------------------------------------------------------------
// The app image

export interface AppImageArgs {
  readonly config: DeployConfig;
  /** Secret values by name (the registry password, when the image is pushed or read with a login). */
  readonly secrets: Record<string, pulumi.Output<string>>;
}

/**
 * The component the image resources nest under (`image/<service>-image`, a docker.Image, when
 * built; `image/<service>-registry`, a docker provider holding the login, when a tag is resolved on
 * a configured registry); nothing under it when the image is pinned or used as given.
 */
export class AppImage extends pulumi.ComponentResource implements ResolvedImage {
  readonly ref: pulumi.Output<string>;
  readonly version: pulumi.Output<string> | string;
  readonly resources: pulumi.Resource[];

  constructor(name: string, args: AppImageArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("railhead:index:Image", name, {}, opts);
    const r = resolveImage(args.config, args.secrets, { parent: this, name: `${name}/${args.config.service}` });
    this.ref = r.ref;
    this.version = r.version;
    this.resources = r.resources;
    this.registerOutputs({ ref: r.ref, version: r.version });
  }
}

// ---------------------------------------------------------------------------------------------
// Planning: pure, before any resource

export interface DeployPlan {
  /** `<service>-<stack>` for Hetzner names, when any host is hcloud. */
  readonly hcloudPrefix?: string;
  /** Proxy backends per host, for hosts of proxied roles. */
  readonly proxyServices: Map<string, ProxyService[]>;
  /** Hosts whose address a DNS record names (they serve a domain): their PrimaryIp is protected. */
  readonly dnsHosts: Set<string>;
}

/** Checks what the schema cannot see (names the graph derives) and lays out the proxies. */
export function planDeploy(config: DeployConfig): DeployPlan {
  const problems: ConfigProblem[] = [];
  const hostList = Object.values(config.hosts);
  const hcloudPrefix = hostList.some((h) => h.kind === "hcloud") ? `${config.service}-${config.stack}` : undefined;
  if (hcloudPrefix) {
    for (const h of hostList.filter((x) => x.kind === "hcloud")) {
      try {
        hcloudName(hcloudPrefix, h.name);
      } catch (e) {
        problems.push({ path: `railhead:hosts.${h.name}`, message: (e as Error).message, example: "railhead:service: demo" });
      }
    }
  }

  // Release commands are named `<role>-<host>/release` under their role; roles of one kind share a
  // namespace, so `web` + host `a-1` and `web-a` + host `1` would be the same resource.
  for (const proxied of [true, false]) {
    const seen = new Map<string, string>();
    for (const r of config.roles.filter((x) => Boolean(x.proxy) === proxied)) {
      for (const h of r.hosts) {
        const name = `${r.name}-${h}`;
        const other = seen.get(name);
        if (other) problems.push({ path: `railhead:servers.${r.name}`, message: `role "${r.name}" on host "${h}" and ${other} would share the resource name "${name}/release"; rename the role or the host` });
        seen.set(name, `role "${r.name}" on host "${h}"`);
      }
    }
  }
  // How the image is obtained; what planImage refuses (builder.secrets) is a config problem, found
  // here rather than after the first resource.
  try {
    planImage(config);
  } catch (e) {
    problems.push({ path: "railhead:builder.secrets", message: (e as Error).message });
  }
  if (problems.length > 0) throw new ConfigError(problems);

  const proxyServices = new Map<string, ProxyService[]>();
  const dnsHosts = new Set<string>();
  for (const r of config.roles) {
    if (!r.proxy) continue;
    const primary = r.name === config.primaryRole;
    for (const h of r.hosts) {
      const list = proxyServices.get(h) ?? [];
      list.push({
        name: primary ? config.service : `${config.service}-${r.name}`,
        role: r.name,
        primary,
        appPort: r.proxy.appPort,
        domains: r.proxy.domains,
        ssl: r.proxy.ssl,
      });
      proxyServices.set(h, list);
      if (r.proxy.domains.length > 0) dnsHosts.add(h);
    }
  }
  return { hcloudPrefix, proxyServices, dnsHosts };
}

/** The app's URLs: `https://domain` per domain, or the proxied hosts' addresses without domains. */
function appUrls(config: DeployConfig, hosts: Record<string, Host>): pulumi.Output<string[]> {
  const port = (ssl: boolean) => {
    const p = ssl ? config.proxy.httpsPort : config.proxy.httpPort;
    return p === (ssl ? 443 : 80) ? "" : `:${p}`;
  };
  const urls: pulumi.Output<string>[] = [];
  for (const r of config.roles) {
    if (!r.proxy) continue;
    if (r.proxy.domains.length > 0) {
      for (const d of r.proxy.domains) urls.push(pulumi.output(`${r.proxy.ssl ? "https" : "http"}://${d}${port(r.proxy.ssl)}`));
    } else {
      for (const h of r.hosts) urls.push(hosts[h].address.apply((a) => `http://${a}${port(false)}`));
    }
  }
  return pulumi.all(urls).apply((u) => [...new Set(u)]);
}
