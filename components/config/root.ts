// The root: composes the sections, reads the raw `railhead:*` values, parses each section on its own
// (record sections entry by entry), then runs the cross-section checks on what parsed, skipping what
// depends on a broken section. Throws ConfigError with every problem; never registers anything.
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { ConfigError, keyPath, NAMESPACE, Problems, secretCommand, type ConfigProblem, type Path } from "./problems";
import { messages, translate, type TranslateContext } from "./issues";
import { exampleIn, type Section } from "./section";
import { cidrHasIp, ipv4ToInt, isPrivateIpv4, nearest, parseCidr } from "./shared";
import { deriveVersion, image, parseImageRef, service, version } from "./image";
import { registry } from "./registry";
import { builder } from "./builder";
import { ssh } from "./ssh";
import { HCLOUD_LOCATIONS, hosts, type hostSchema } from "./hosts";
import { network } from "./network";
import { DOMAIN_RE, servers, type RoleInput } from "./servers";
import { proxy } from "./proxy";
import { env, type EnvConfig } from "./env";
import { boot } from "./boot";
import { migrate, readinessDelay, retain, stopTimeout } from "./release";
import { accessories, PRESETS, validateAccessories, type AccessoriesConfig } from "./accessories";
import { litestream, validateLitestream, type LitestreamConfig } from "./litestream";
import type { DeployConfig, HostConfig, ProxySettings, RoleConfig, RoleProxy, BuilderConfig } from "./types";

export const SECTIONS: readonly Section[] = [
  service,
  image,
  version,
  registry,
  builder,
  ssh,
  hosts,
  network,
  servers,
  proxy,
  env,
  boot,
  retain,
  migrate,
  readinessDelay,
  stopTimeout,
  accessories,
  litestream,
];

/** Config keys under `railhead:`; each is one top-level key of the stack file's `config:`. */
export const CONFIG_KEYS: readonly string[] = [...SECTIONS.map((s) => s.key), "secrets"];

const SECRETS_DESCRIPTION = "every secret value, by name; set each with `pulumi config set --secret --path 'railhead:secrets.NAME' <value>`; other keys name them as `[NAME]`";

/** The whole stack file's `railhead:` keys as one schema: the source of the README reference and the JSON Schema. */
export const configSchema = z.strictObject({
  ...Object.fromEntries(SECTIONS.map((s) => [s.key, s.schema])),
  secrets: z.record(z.string(), z.string()).optional().describe(SECRETS_DESCRIPTION),
});

/** Kamal's top-level keys that live elsewhere here, or have no Railhead counterpart. `=key` is a rename. */
const TOP_HINTS: Record<string, string> = {
  deploy_timeout: "Kamal's deploy_timeout is railhead:proxy.deployTimeout here",
  drain_timeout: "Kamal's drain_timeout is railhead:proxy.drainTimeout here",
  readiness_delay: "=readinessDelay",
  stop_timeout: "=stopTimeout",
  retain_containers: "=retain",
  primary_role: "not needed: the primary role is `web` if there is one, else the first role in railhead:servers; name your main role web",
  require_destination: "not needed: every Pulumi command acts on the selected stack",
  hooks_path: "not supported: the graph runs the steps in order; railhead:migrate runs once per release before the cutover",
  aliases: "not supported: `npm run railhead -- console` and `exec` are built in",
  minimum_version: "not needed: the Railhead version is the one in package.json",
  asset_path: "not supported: there is no asset bridging yet",
  labels: "not supported: containers carry railhead.* labels; host labels go in railhead:hosts.<host>.labels",
  logging: "not supported: containers log through Docker's json-file driver with a size cap",
  volumes: "not supported for the app containers: SQLite storage is railhead:litestream.volume, accessories have their own volumes",
  healthcheck: "Kamal's healthcheck is railhead:proxy.healthcheck here",
  run_directory: "not needed: the host tool keeps its state under /var/lib/railhead",
  secrets_path: "secrets live in railhead:secrets (pulumi config set --secret --path)",
  error_pages_path: "not supported",
  allow_empty_roles: "not supported: every role needs at least one host",
  sshkit: "not supported: connections go through @pulumi/command",
  accessory: "=accessories",
  server: "=servers",
  host: "=hosts",
  destinations: "Kamal destinations are Pulumi stacks here: Pulumi.<stack>.yaml",
};

const SECTION_BY_KEY = new Map(SECTIONS.map((s) => [s.key, s]));

/** The example for a problem at `path`: the section's, else the closest documented form. */
export function exampleFor(path: Path): string {
  const bare = keyPath(path).slice(NAMESPACE.length + 1);
  const top = String(path[0] ?? "");
  const sec = SECTION_BY_KEY.get(top);
  const found = sec ? exampleIn(sec.examples, bare) : undefined;
  if (found) return found;
  if (top === "secrets") return secretCommand("RAILS_MASTER_KEY");
  return "railhead:service: demo   (see the configuration reference in README.md for every key)";
}

const tctx = (problems: Problems): TranslateContext => ({ problems, exampleFor });

// ---------------------------------------------------------------------------------------------
// Reading

export interface RawStackConfig {
  /** `railhead:<key>` values as the engine hands them over: strings, JSON for objects. */
  readonly values: Record<string, string>;
  /** Keys the engine marked secret (`railhead:secrets`, ...). */
  readonly secretKeys: ReadonlySet<string>;
  readonly project: string;
  readonly stack: string;
}

/** Reads the raw `railhead:*` config of the running stack (engine or mock runtime). */
export function readRawStackConfig(): RawStackConfig {
  const all = pulumi.runtime.allConfig();
  const values: Record<string, string> = {};
  const secretKeys = new Set<string>();
  for (const [k, v] of Object.entries(all)) {
    if (!k.startsWith(`${NAMESPACE}:`)) continue;
    values[k] = v;
    if (isConfigSecret(k)) secretKeys.add(k);
  }
  return { values, secretKeys, project: pulumi.getProject(), stack: pulumi.getStack() };
}

// `isConfigSecret` is exported by the SDK's runtime/config module but missing from its .d.ts.
function isConfigSecret(key: string): boolean {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const cfg = require("@pulumi/pulumi/runtime/config") as { isConfigSecret?: (k: string) => boolean };
  return cfg.isConfigSecret ? cfg.isConfigSecret(key) : false;
}

function parseJson(v: string): unknown {
  try {
    return JSON.parse(v);
  } catch {
    return v; // plain strings (service: demo) arrive unquoted
  }
}

/** A top-level value as the section expects it: string keys as written, the others JSON. */
function decode(sec: Section | undefined, v: string): unknown {
  if (sec?.raw !== "string") return parseJson(v);
  if (sec.key === "migrate" && (v === "false" || v === "true")) return v === "true";
  // A map or a list written where a string belongs arrives as JSON; show it as written.
  if (/^[[{]/.test(v)) {
    const j = parseJson(v);
    if (j !== null && typeof j === "object") return j;
  }
  return v;
}

export interface LoadedConfig {
  readonly config: DeployConfig;
  /** Secret values by name, each a secret Output; only ever sent to hosts on stdin. */
  readonly secrets: Record<string, pulumi.Output<string>>;
}

interface Parsed {
  /** Parsed values of the sections that parsed (record sections: the entries that parsed). */
  readonly data: Record<string, unknown>;
  /** Sections with a problem anywhere. */
  readonly broken: Set<string>;
  /** Entries of record sections with a problem, as `section.name`. */
  readonly brokenEntries: Set<string>;
  /** Every entry name written in a record section, parsed or not. */
  readonly names: Record<string, string[]>;
}

function parseSections(input: Record<string, unknown>, problems: Problems): Parsed {
  const parsed: Parsed = { data: {}, broken: new Set(), brokenEntries: new Set(), names: {} };
  const ctx = tctx(problems);
  for (const sec of SECTIONS) {
    const value = input[sec.key];
    const before = problems.size;
    if (sec.entries && value !== null && typeof value === "object" && !Array.isArray(value) && Object.keys(value).length > 0) {
      const out: Record<string, unknown> = {};
      parsed.names[sec.key] = Object.keys(value);
      for (const [name, v] of Object.entries(value as Record<string, unknown>)) {
        const n = sec.entries.name.safeParse(name, { error: messages });
        const r = sec.entries.value.safeParse(v, { error: messages });
        if (!n.success) problems.add([sec.key, name], `"${name}" is not a valid name: ${n.error.issues.map((i) => i.message).join("; ")}`, exampleFor([sec.key]));
        if (r.success && n.success) out[name] = r.data;
        else {
          if (!r.success) translate(r.error.issues, v, [sec.key, name], ctx);
          parsed.brokenEntries.add(`${sec.key}.${name}`);
        }
      }
      parsed.data[sec.key] = out;
    } else {
      const r = sec.schema.safeParse(value, { error: messages });
      if (r.success) parsed.data[sec.key] = r.data;
      else translate(r.error.issues, value, [sec.key], ctx);
      if (sec.entries && value !== null && typeof value === "object" && !Array.isArray(value)) parsed.names[sec.key] = Object.keys(value);
    }
    if (problems.size > before) parsed.broken.add(sec.key);
  }
  return parsed;
}

/**
 * Validates the whole stack config. Throws ConfigError with every problem found; never registers
 * anything itself.
 */
export function loadConfig(raw: RawStackConfig = readRawStackConfig()): LoadedConfig {
  const problems = new Problems();
  const input: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw.values)) {
    const key = k.slice(NAMESPACE.length + 1);
    if (key === "secrets") continue;
    if (!CONFIG_KEYS.includes(key)) {
      unknownTopKey(key, problems);
      continue;
    }
    input[key] = decode(SECTION_BY_KEY.get(key), v);
  }

  // Secrets: one secret object, `railhead:secrets`, set with --secret --path.
  let secretValues: Record<string, string> = {};
  let secretsKnown = true;
  const secretsRaw = raw.values[`${NAMESPACE}:secrets`];
  if (secretsRaw !== undefined) {
    if (!raw.secretKeys.has(`${NAMESPACE}:secrets`)) {
      problems.add(["secrets"], "holds secret values but is stored as plain text in the stack file; remove it, rotate every value that was committed, and set each with --secret", secretCommand("RAILS_MASTER_KEY"));
    }
    const parsed = parseJson(secretsRaw);
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
      problems.add(["secrets"], "must be a map of NAME: value", secretCommand("RAILS_MASTER_KEY"));
      secretsKnown = false;
    } else {
      secretValues = Object.fromEntries(Object.entries(parsed as Record<string, unknown>).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]));
    }
  }
  for (const k of Object.keys(raw.values)) {
    const key = k.slice(NAMESPACE.length + 1);
    if (raw.secretKeys.has(k) && key !== "secrets") {
      problems.add([key], "is stored as a secret but Railhead reads secrets only from railhead:secrets; keep this key plain and put secret values under railhead:secrets", secretCommand("NAME"));
    }
  }

  const p = parseSections(input, problems);
  const config = crossCheck(p, raw, Object.keys(secretValues), secretsKnown, problems);
  if (problems.size > 0 || !config) throw new ConfigError(problems.list);
  const secrets = Object.fromEntries(Object.entries(secretValues).map(([k, v]) => [k, pulumi.secret(v)]));
  return { config, secrets };
}

function unknownTopKey(key: string, problems: Problems): void {
  const hint = TOP_HINTS[key];
  if (hint && !hint.startsWith("=")) {
    const target = /railhead:([A-Za-z.]+)/.exec(hint)?.[1];
    problems.add([key], `unknown key "${key}": ${hint}`, target ? exampleFor(target.split(".")) : exampleFor([key]));
    return;
  }
  const near = hint ? hint.slice(1) : nearest(key, CONFIG_KEYS);
  if (near) {
    problems.add([key], `unknown key "${key}"; did you mean "railhead:${near}"?${/_/.test(key) ? " (Kamal's spelling; Railhead writes camelCase)" : ""}`, exampleFor([near]));
    return;
  }
  problems.add([key], `unknown key "${key}"; keys are: ${CONFIG_KEYS.join(", ")}`, exampleFor([key]));
}

// ---------------------------------------------------------------------------------------------
// Cross-section checks and normalisation

type HostIn = z.output<typeof hostSchema>;
const str = (v: string | number | boolean): string => String(v);
const strMap = (m: Record<string, string | number | boolean>) => Object.fromEntries(Object.entries(m).map(([k, v]) => [k, str(v)]));

function crossCheck(p: Parsed, raw: RawStackConfig, secretNames: string[], secretsKnown: boolean, problems: Problems): DeployConfig | undefined {
  const ok = (k: string) => !p.broken.has(k);
  const d = p.data as {
    service?: string;
    image?: string;
    version?: string;
    registry?: { server: string; username: string; password: string };
    builder?: BuilderConfig;
    ssh?: { user: string; port: number; privateKey?: string; publicKey?: string; allowFrom: string[] };
    hosts?: Record<string, HostIn>;
    network?: { ipRange: string; subnet: string; zone: string; confirmRangeChange?: boolean };
    servers?: Record<string, RoleInput>;
    proxy?: Omit<ProxySettings, "healthcheck"> & { hosts: string[]; host?: string; ssl: boolean; appPort: number; healthcheck: ProxySettings["healthcheck"] };
    env?: EnvConfig;
    boot?: { limit?: number | string; wait: number };
    retain?: number;
    migrate?: string | false;
    readinessDelay?: number;
    stopTimeout?: number;
    accessories?: AccessoriesConfig;
    litestream?: LitestreamConfig;
  };
  const secretSet = new Set(secretNames);
  const requireSecret = (path: Path, name: string) => {
    if (secretsKnown && !secretSet.has(name)) problems.add(path, `names secret "${name}", which is not set`, secretCommand(name));
  };
  const hostNames = p.names.hosts ?? Object.keys(d.hosts ?? {});
  const hostsOk = (p.names.hosts?.length ?? 0) > 0;

  // Image: Kamal's rule, a repository without a registry host is on registry.server.
  let imageName = d.image;
  let imageRef = d.image !== undefined ? parseImageRef(d.image) : undefined;
  if (imageRef && d.registry && ok("registry")) {
    if (!imageRef.registry && !/^(docker\.io|index\.docker\.io|registry-1\.docker\.io)$/.test(d.registry.server)) {
      imageName = `${d.registry.server}/${d.image}`;
      imageRef = parseImageRef(imageName);
    } else if (imageRef.registry && imageRef.registry !== d.registry.server && !(imageRef.registry === "docker.io" && /docker\.io$/.test(d.registry.server))) {
      problems.add(["image"], `the image is on "${imageRef.registry}" but railhead:registry.server is "${d.registry.server}"`, `railhead:image: ${d.registry.server}/${imageRef.path}${imageRef.tag ? `:${imageRef.tag}` : ""}`);
    }
  }
  if (imageRef && ok("builder") && ok("version") && !d.builder && !imageRef.tag && !imageRef.digest && !d.version) {
    problems.add(["image"], `"${d.image}" has no tag or digest, so a release cannot be named or rolled back; pin a tag or a digest, or set railhead:version`, `railhead:image: ${d.image}:1.4.2`);
  }

  // Hosts
  const hostsOut: Record<string, HostConfig> = {};
  const sshIn = d.ssh;
  for (const [name, h] of Object.entries(d.hosts ?? {})) {
    const labels = strMap(h.labels);
    if ("hcloud" in h) hostsOut[name] = { name, kind: "hcloud", hcloud: h.hcloud, privateIp: h.privateIp, labels };
    else if ("ssh" in h)
      hostsOut[name] = {
        name,
        kind: "ssh",
        ssh: { address: h.ssh.address, user: h.ssh.user ?? sshIn?.user ?? "deploy", port: h.ssh.port ?? sshIn?.port ?? 22, hostKey: h.ssh.hostKey },
        privateIp: h.privateIp,
        labels,
      };
    else hostsOut[name] = { name, kind: "local", labels };
  }
  const kinds = new Set(Object.values(hostsOut).map((h) => h.kind));
  if (sshIn && ok("ssh")) {
    if (kinds.has("hcloud") && !sshIn.publicKey) problems.add(["ssh", "publicKey"], "required when any host is hcloud (it is installed for the deploy user)", exampleFor(["ssh", "publicKey"]));
    if ((kinds.has("hcloud") || kinds.has("ssh")) && !sshIn.privateKey) problems.add(["ssh", "privateKey"], "required when any host is reached over SSH", exampleFor(["ssh", "privateKey"]));
    if (sshIn.privateKey) requireSecret(["ssh", "privateKey"], sshIn.privateKey);
  }
  if (d.registry && ok("registry")) requireSecret(["registry", "password"], d.registry.password);

  // Network: private addresses inside the subnet, locations inside the zone.
  const net = ok("network") ? d.network : undefined;
  const subnet = net ? parseCidr(net.subnet) : undefined;
  const seenIp = new Map<string, string>();
  for (const h of Object.values(hostsOut)) {
    if (h.privateIp && !isPrivateIpv4(h.privateIp)) {
      problems.add(["hosts", h.name, "privateIp"], `${h.privateIp} is not a private address (10/8, 172.16/12, 192.168/16, 100.64/10); accessories publish on it, so a public address would expose them`, `privateIp: ${subnetHost(net?.subnet ?? "10.0.1.0/24")}`);
    } else if (h.privateIp) {
      const ip = ipv4ToInt(h.privateIp);
      if (subnet && typeof subnet !== "string" && ip !== undefined && !cidrHasIp(subnet, ip) && h.kind === "hcloud") {
        problems.add(["hosts", h.name, "privateIp"], `${h.privateIp} is not inside railhead:network.subnet ${net?.subnet}`, `privateIp: ${subnetHost(net?.subnet ?? "10.0.1.0/24")}`);
      }
      const other = seenIp.get(h.privateIp);
      if (other) problems.add(["hosts", h.name, "privateIp"], `${h.privateIp} is also the private address of "${other}"`, `privateIp: ${subnetHost(net?.subnet ?? "10.0.1.0/24")}`);
      seenIp.set(h.privateIp, h.name);
    }
    if (h.hcloud && net && HCLOUD_LOCATIONS[h.hcloud.location] !== net.zone) {
      problems.add(["hosts", h.name, "hcloud", "location"], `${h.hcloud.location} is in network zone ${HCLOUD_LOCATIONS[h.hcloud.location]}, but railhead:network.zone is ${net.zone}`, `location: ${Object.keys(HCLOUD_LOCATIONS).find((l) => HCLOUD_LOCATIONS[l] === net.zone) ?? "fsn1"}`);
    }
  }

  // Roles
  const proxyIn = ok("proxy") ? d.proxy : undefined;
  const roleNames = p.names.servers ?? Object.keys(d.servers ?? {});
  const primaryRole = roleNames.includes("web") ? "web" : (roleNames[0] ?? "web");
  const roles: RoleConfig[] = [];
  const domainOwners = new Map<string, string>();
  const topDomains = proxyIn ? [...proxyIn.hosts, ...(proxyIn.host ? [proxyIn.host] : [])] : [];
  for (const [roleName, r] of Object.entries(d.servers ?? {})) {
    const rr = r as { hosts: string[]; cmd?: string; options?: Record<string, string | number | boolean>; env?: EnvConfig; proxy?: boolean | { hosts?: string[]; ssl?: boolean; appPort?: number }; stopTimeout?: number };
    if (hostsOk)
      rr.hosts.forEach((h, i) => {
        if (!hostNames.includes(h)) {
          const near = nearest(h, hostNames);
          const ipHint = ipv4ToInt(h) !== undefined ? "; a role lists host names: name the server in railhead:hosts (e.g. web-1: { ssh: { address: " + h + " } })" : "";
          problems.add(["servers", roleName, "hosts", i], `unknown host "${h}"${near ? `; did you mean "${near}"?` : ""}${ipHint}; hosts are: ${hostNames.join(", ")}`, `hosts: [${hostNames[0] ?? "web-1"}]`);
        }
      });
    const dup = rr.hosts.find((h, i) => rr.hosts.indexOf(h) !== i);
    if (dup) problems.add(["servers", roleName, "hosts"], `host "${dup}" is listed twice`, `hosts: [${[...new Set(rr.hosts)].join(", ")}]`);
    const proxied = rr.proxy === undefined ? roleName === primaryRole : rr.proxy !== false;
    let roleProxy: RoleProxy | undefined;
    if (proxied && (proxyIn || (typeof rr.proxy === "object" && rr.proxy.hosts))) {
      const po = typeof rr.proxy === "object" ? rr.proxy : {};
      const domains = (po.hosts ?? topDomains).map((x) => x.toLowerCase());
      const ssl = po.ssl ?? proxyIn?.ssl ?? false;
      roleProxy = { domains, ssl, appPort: po.appPort ?? proxyIn?.appPort ?? 80 };
      const where = typeof rr.proxy === "object" && rr.proxy.hosts ? ["servers", roleName, "proxy", "hosts"] : ["proxy", "hosts"];
      domains.forEach((dm, i) => {
        if (!DOMAIN_RE.test(dm)) return;
        const owner = domainOwners.get(dm);
        if (owner && owner !== roleName) problems.add([...where, i], `domain "${dm}" is routed to both "${owner}" and "${roleName}"; a domain belongs to one role`, `${roleName}: { hosts: [...], proxy: { hosts: [${roleName}.example.com] } }`);
        domainOwners.set(dm, roleName);
      });
      if (ssl && domains.length === 0 && (proxyIn || po.ssl !== undefined)) {
        problems.add(typeof rr.proxy === "object" && rr.proxy.ssl !== undefined ? ["servers", roleName, "proxy", "ssl"] : ["proxy", "ssl"], "ssl needs at least one domain to request a certificate for", "railhead:proxy: { hosts: [app.example.com], ssl: true }");
      }
    }
    const renv = rr.env ?? { clear: {}, secret: [] };
    const envAt = (i: number): Path => (renv.flat ? ["servers", roleName, "env", "secret", i] : ["servers", roleName, "env", "secret", i]);
    renv.secret.forEach((name, i) => requireSecret(envAt(i), name));
    roles.push({
      name: roleName,
      hosts: rr.hosts,
      cmd: rr.cmd,
      options: strMap(rr.options ?? {}),
      env: { clear: strMap(renv.clear), secret: renv.secret },
      proxy: roleProxy,
      stopTimeout: rr.stopTimeout ?? d.stopTimeout ?? 10,
    });
  }
  roles.sort((a, b) => (a.name === primaryRole ? -1 : b.name === primaryRole ? 1 : 0));
  const serversOk = ok("servers");
  if (serversOk && proxyIn && !roles.some((r) => r.proxy) && topDomains.length > 0) problems.add(["proxy", "hosts"], "no role is proxied, so these domains route nowhere", "railhead:servers: { web: { hosts: [web-1] } }   (web is proxied by default)");

  if (d.env && ok("env")) d.env.secret.forEach((name, i) => requireSecret(["env", "secret", i], name));

  // Boot limit
  if (d.boot && ok("boot") && serversOk && d.boot.limit !== undefined) {
    const webHosts = roles.find((r) => r.name === primaryRole)?.hosts.length ?? 0;
    if (typeof d.boot.limit === "number") {
      if (d.boot.limit < 1 || d.boot.limit > Math.max(1, webHosts))
        problems.add(["boot", "limit"], `${d.boot.limit} is out of range: between 1 and the number of ${primaryRole} hosts (${webHosts})`, `boot: { limit: ${Math.max(1, webHosts - 1)} }   or   boot: { limit: "50%" }`);
    } else {
      const pct = Number(d.boot.limit.slice(0, -1));
      if (pct < 1 || pct > 100) problems.add(["boot", "limit"], `${d.boot.limit} is out of range: between 1% and 100%`, 'boot: { limit: "25%" }');
    }
  }

  // Accessories and Litestream, with what they need from the other sections.
  const accessoriesIn = d.accessories ?? {};
  const litestreamIn = ok("litestream") ? d.litestream : undefined;
  const list: ConfigProblem[] = [];
  if (hostsOk && ok("accessories") !== undefined) {
    validateAccessories(accessoriesIn, hostNames, secretsKnown ? secretSet : new Set([...secretSet, ...allSecretRefs(accessoriesIn)]), list, keyPath, {
      roles: serversOk ? roles : undefined,
      litestream: ok("litestream") ? litestreamIn : { enabled: true } as LitestreamConfig,
    });
  }
  if (litestreamIn && serversOk && hostsOk) validateLitestream(litestreamIn, { hosts: hostNames, roles, secretNames: secretsKnown ? secretSet : new Set(["*"]), problems: list, keyPath });
  for (const x of list) problems.add(pathOf(x.path), x.message, x.example ?? exampleFor(pathOf(x.path)));

  // Host ports: two accessories, or an accessory and the proxy, cannot publish one port on one host.
  if (proxyIn && ok("accessories")) {
    const proxyHosts = new Set(roles.filter((r) => r.proxy).flatMap((r) => r.hosts));
    const anySsl = roles.some((r) => r.proxy?.ssl);
    const taken = new Map<string, string>();
    for (const h of proxyHosts) {
      taken.set(`${h}:${proxyIn.httpPort}`, `the proxy (railhead:proxy.httpPort)`);
      if (anySsl) taken.set(`${h}:${proxyIn.httpsPort}`, `the TLS front (railhead:proxy.httpsPort)`);
    }
    for (const [name, a] of Object.entries(accessoriesIn)) {
      if (a.port === undefined) continue;
      const hostPort = Number(String(a.port).split(":")[0]);
      const k = `${a.host}:${hostPort}`;
      const other = taken.get(k);
      if (other) problems.add(["accessories", name, "port"], `host port ${hostPort} on "${a.host}" is already published by ${other}`, `port: "${hostPort + 10000 > 65535 ? hostPort - 1 : hostPort + 10000}:${a.preset ? PRESETS[a.preset].containerPort : String(a.port).split(":").pop()}"`);
      else taken.set(k, `accessory "${name}"`);
    }
  }

  if (problems.size > 0) return undefined;
  const dd = d as Required<typeof d>;
  return {
    project: raw.project,
    stack: raw.stack,
    service: dd.service,
    image: imageName ?? dd.image,
    imageRef: imageRef ?? { path: dd.image },
    version: d.version ?? deriveVersion(imageRef),
    registry: d.registry ? { server: d.registry.server, username: d.registry.username, passwordSecret: d.registry.password } : undefined,
    builder: d.builder,
    ssh: { user: dd.ssh.user, port: dd.ssh.port, privateKeySecret: dd.ssh.privateKey, publicKey: dd.ssh.publicKey, allowFrom: dd.ssh.allowFrom },
    hosts: hostsOut,
    network: d.network,
    roles,
    env: { clear: strMap(dd.env.clear), secret: dd.env.secret },
    primaryRole,
    proxy: {
      healthcheck: dd.proxy.healthcheck,
      responseTimeout: dd.proxy.responseTimeout,
      deployTimeout: dd.proxy.deployTimeout,
      drainTimeout: dd.proxy.drainTimeout,
      httpPort: dd.proxy.httpPort,
      httpsPort: dd.proxy.httpsPort,
      bindIps: dd.proxy.bindIps,
      image: dd.proxy.image,
      tlsImage: dd.proxy.tlsImage,
    },
    boot: dd.boot,
    retain: dd.retain,
    migrate: dd.migrate,
    readinessDelay: dd.readinessDelay,
    stopTimeout: dd.stopTimeout,
    accessories: accessoriesIn,
    litestream: d.litestream,
    secretNames,
  };
}

function allSecretRefs(a: AccessoriesConfig): string[] {
  return Object.values(a).flatMap((x) => [...x.env.secret, ...(x.password ? [x.password] : [])]);
}

function subnetHost(subnet: string): string {
  const c = parseCidr(subnet);
  if (typeof c === "string" || c.v !== 4) return "10.0.1.11";
  const n = c.base + 11;
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

/** Parses `railhead:a.b[1].c` back into a path. */
function pathOf(p: string): Path {
  const bare = p.slice(NAMESPACE.length + 1);
  const out: Array<string | number> = [];
  for (const m of bare.matchAll(/([^.[\]]+)|\[(\d+)\]/g)) out.push(m[2] !== undefined ? Number(m[2]) : m[1]);
  return out;
}

/** Splits a role's hosts into boot groups per `boot.limit` (a count or a percentage). */
export function bootGroups(hosts: string[], limit: number | string | undefined): string[][] {
  if (hosts.length === 0) return [];
  let size = hosts.length;
  if (typeof limit === "number") size = Math.max(1, Math.min(limit, hosts.length));
  else if (typeof limit === "string") size = Math.max(1, Math.floor((hosts.length * Number(limit.slice(0, -1))) / 100));
  const groups: string[][] = [];
  for (let i = 0; i < hosts.length; i += size) groups.push(hosts.slice(i, i + size));
  return groups;
}
