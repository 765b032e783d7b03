// The deploy description: one zod schema under the `railhead` config namespace, in Kamal's
// vocabulary. This module is the only reader of pulumi.Config. Every problem in a stack file is
// reported at once, each naming the key path, what is wrong and an example of right, before any
// resource is registered.
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { accessoriesSchema, validateAccessories, type AccessoriesConfig } from "./accessory-config";
import { litestreamSchema, validateLitestream, type LitestreamConfig } from "./litestream-config";

export const NAMESPACE = "railhead";

/** Config keys under `railhead:`; each is one top-level key of the stack file's `config:`. */
export const CONFIG_KEYS = [
  "service",
  "image",
  "version",
  "registry",
  "builder",
  "ssh",
  "hosts",
  "network",
  "servers",
  "proxy",
  "env",
  "boot",
  "retain",
  "migrate",
  "readinessDelay",
  "stopTimeout",
  "accessories",
  "litestream",
  "secrets",
] as const;

// ---------------------------------------------------------------------------------------------
// Small shared shapes

const NAME_RE = /^[a-z0-9][a-z0-9_-]*$/;
const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const DOMAIN_RE = /^(?=.{1,253}$)(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const CIDR_RE = /^(\d{1,3}(\.\d{1,3}){3}\/\d{1,2}|[0-9a-fA-F:]+\/\d{1,3})$/;

/**
 * An image reference as Docker's distribution grammar has it: `[registry[:port]/]path[:tag][@digest]`.
 * Lower-case path components, a tag of at most 128 word characters, a sha256 digest.
 */
export const IMAGE_RE =
  /^(?:(?<registry>(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?|\[[0-9a-fA-F:]+\](?::[0-9]+)?)\/)?(?<path>[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)(?::(?<tag>[\w][\w.-]{0,127}))?(?:@(?<digest>sha256:[a-f0-9]{64}))?$/;

export interface ImageRef {
  readonly registry?: string;
  readonly path: string;
  readonly tag?: string;
  readonly digest?: string;
}

export function parseImageRef(ref: string): ImageRef | undefined {
  const m = IMAGE_RE.exec(ref);
  if (!m || !m.groups) return undefined;
  const { registry, path, tag, digest } = m.groups;
  // A first component without a dot, colon or "localhost" is a path component, not a registry.
  if (registry && !/[.:]/.test(registry) && registry !== "localhost" && !registry.startsWith("[")) {
    return { path: `${registry}/${path}`, tag, digest };
  }
  return { registry, path, tag, digest };
}

/** `[NAME]` (Kamal's form) or `{ secret: NAME }`: names a key of `railhead:secrets`. */
const secretRef = z
  .union([
    z.tuple([z.string().regex(ENV_NAME_RE)]).transform(([name]) => name),
    z.object({ secret: z.string().regex(ENV_NAME_RE) }).strict().transform((o) => o.secret),
  ])
  .describe("names a secret: `[NAME]`, whose value is set with `pulumi config set --secret --path 'railhead:secrets.NAME'`");

/** Marks a field that must name a secret so a plain string there is reported as a leaked secret. */
const SECRET_FIELDS = new Set(["registry.password", "ssh.privateKey"]);

const envSchema = z
  .union([
    z
      .object({
        clear: z.record(z.string().regex(ENV_NAME_RE), z.union([z.string(), z.number(), z.boolean()])).default({}).describe("plain values, stored in state as they are"),
        secret: z.array(z.string().regex(ENV_NAME_RE)).default([]).describe("names of keys in `railhead:secrets`; sent to hosts only on stdin into a 0600 env file"),
      })
      .strict(),
    z.record(z.string().regex(ENV_NAME_RE), z.union([z.string(), z.number(), z.boolean()])).transform((clear) => ({ clear, secret: [] as string[] })),
  ])
  .describe("env: `{ clear: {KEY: value}, secret: [NAME] }` or a plain `{KEY: value}` map");

const seconds = (def: number, what: string) => z.number().int().min(1).max(3600).default(def).describe(`${what}, seconds (default ${def})`);

// ---------------------------------------------------------------------------------------------
// Sections

const hostSchema = z
  .union([
    z
      .object({
        hcloud: z
          .object({
            serverType: z.string().min(1).describe("Hetzner server type, e.g. cx23"),
            location: z.string().min(1).describe("Hetzner location, e.g. fsn1"),
            image: z.string().min(1).default("ubuntu-24.04").describe("OS image name (default ubuntu-24.04)"),
          })
          .strict(),
        privateIp: z.string().ip({ version: "v4" }).optional().describe("the host's address on the private network (default: assigned)"),
        labels: z.record(z.string()).default({}).describe("Hetzner labels"),
      })
      .strict(),
    z
      .object({
        ssh: z
          .object({
            address: z.string().min(1).describe("IP address or DNS name"),
            user: z.string().min(1).optional().describe("SSH user (default: ssh.user)"),
            port: z.number().int().min(1).max(65535).optional().describe("SSH port (default: ssh.port)"),
            hostKey: z.string().min(1).optional().describe("the host's public key line (`ssh-ed25519 AAAA...`); pins the host"),
          })
          .strict(),
        privateIp: z.string().ip({ version: "v4" }).optional().describe("the host's address on a private network shared with the other hosts"),
        labels: z.record(z.string()).default({}),
      })
      .strict(),
    z
      .object({
        local: z.object({}).strict().describe("this machine, through local.Command and its Docker engine"),
        labels: z.record(z.string()).default({}),
      })
      .strict(),
  ])
  .describe("one of `hcloud: {serverType, location, image}`, `ssh: {address, user, port, hostKey}`, `local: {}`");

const roleSchema = z
  .union([
    z.array(z.string()).transform((hosts) => ({ hosts })),
    z
      .object({
        hosts: z.array(z.string()).min(1).describe("host names from `railhead:hosts`"),
        cmd: z.string().min(1).optional().describe("container command, e.g. bin/jobs"),
        options: z.record(z.string().regex(/^[a-z][a-z0-9-]*$/), z.union([z.string(), z.number(), z.boolean()])).default({}).describe("docker run options, e.g. memory: 512m"),
        env: envSchema.optional(),
        proxy: z
          .union([
            z.boolean(),
            z
              .object({
                hosts: z.array(z.string()).optional().describe("domains for this role (default railhead:proxy.hosts)"),
                ssl: z.boolean().optional().describe("default railhead:proxy.ssl"),
                appPort: z.number().int().min(1).max(65535).optional().describe("default railhead:proxy.appPort"),
              })
              .strict(),
          ])
          .optional()
          .describe("proxy this role (default: only the primary role `web`)"),
        stopTimeout: z.number().int().min(1).max(3600).optional().describe("docker stop -t for this role (default railhead:stopTimeout)"),
      })
      .strict(),
  ])
  .describe("a role: a host list, or `{hosts, cmd, options, env, proxy}`");

const proxySchema = z
  .object({
    hosts: z.array(z.string()).default([]).describe("domains routed to the app (Kamal `host`/`hosts`); empty = catch-all"),
    host: z.string().optional().describe("a single domain (same as hosts: [x])"),
    ssl: z.boolean().default(false).describe("automatic HTTPS through a Caddy front; needs at least one domain"),
    appPort: z.number().int().min(1).max(65535).default(80).describe("the port the app listens on in its container (default 80)"),
    healthcheck: z
      .object({
        path: z.string().startsWith("/").default("/up").describe("answers 2xx when the app is up (Rails 8: /up)"),
        interval: seconds(1, "longest pause between checks (the first pauses are shorter: 0.05 s, doubling)"),
        timeout: seconds(5, "per check"),
      })
      .strict()
      .default({}),
    responseTimeout: seconds(30, "longest request"),
    deployTimeout: seconds(30, "for a new release to become healthy"),
    drainTimeout: seconds(30, "for in-flight requests on the old release"),
    httpPort: z.number().int().min(1).max(65535).default(80).describe("host port for HTTP"),
    httpsPort: z.number().int().min(1).max(65535).default(443).describe("host port for HTTPS (with ssl)"),
    bindIps: z.array(z.string().ip()).default([]).describe("host addresses to publish the proxy on (default all)"),
    image: z.string().default("haproxy:2.6-bookworm").describe("HAProxy image (an official, pinned tag)"),
    tlsImage: z.string().default("caddy:2.10-alpine").describe("Caddy image for the TLS front"),
  })
  .strict();

const registrySchema = z
  .object({
    server: z.string().min(1).describe("registry host, e.g. ghcr.io"),
    username: z.string().min(1).describe("registry user"),
    password: secretRef,
  })
  .strict();

const builderSchema = z
  .object({
    context: z.string().default(".").describe("build context, relative to the project"),
    dockerfile: z.string().default("Dockerfile").describe("Dockerfile path inside the context"),
    target: z.string().optional().describe("build stage"),
    args: z.record(z.string()).default({}).describe("build args (not secret)"),
    secrets: z.array(z.string().regex(ENV_NAME_RE)).default([]).describe("names of keys in railhead:secrets exposed as build secrets"),
    platform: z.string().default("linux/amd64").describe("target platform of the hosts"),
  })
  .strict();

const sshSchema = z
  .object({
    user: z.string().min(1).default("deploy").describe("SSH user (default deploy; hcloud hosts get it from cloud-init)"),
    port: z.number().int().min(1).max(65535).default(22).describe("SSH port"),
    privateKey: secretRef.optional(),
    publicKey: z.string().regex(/^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp\d+) [A-Za-z0-9+/=]+/).optional().describe("public half of privateKey; installed on hcloud hosts"),
    allowFrom: z.array(z.string().regex(CIDR_RE)).default(["0.0.0.0/0", "::/0"]).describe("CIDRs the firewall lets reach port 22"),
  })
  .strict();

const networkSchema = z
  .object({
    ipRange: z.string().regex(CIDR_RE).default("10.0.0.0/16").describe("the private network"),
    subnet: z.string().regex(CIDR_RE).default("10.0.1.0/24").describe("the hosts' subnet inside it"),
    zone: z.string().default("eu-central").describe("Hetzner network zone of the locations used"),
    confirmRangeChange: z.boolean().optional().describe("allow an ipRange change of an existing network (Hetzner replaces it: private networking is down during the deploy)"),
  })
  .strict();

const bootSchema = z
  .object({
    limit: z
      .union([z.number().int(), z.string().regex(/^\d+%$/, "a percentage like \"25%\"")])
      .optional()
      .describe("hosts per boot group: a count or a percentage"),
    wait: z.number().int().min(0).max(3600).default(0).describe("seconds between boot groups"),
  })
  .strict();

export const configSchema = z
  .object({
    service: z.string().regex(NAME_RE, "lower-case letters, digits, - and _").max(40).describe("the app's name; container prefix"),
    image: z.string().describe("the app image, e.g. ghcr.io/acme/demo:1.4.2 (or the repository to push to when builder is set)"),
    version: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/).optional().describe("release version (default: the image tag or digest)"),
    registry: registrySchema.optional(),
    builder: builderSchema.optional(),
    ssh: sshSchema.default({}),
    hosts: z.record(z.string().regex(NAME_RE), hostSchema).refine((h) => Object.keys(h).length > 0, "at least one host"),
    network: networkSchema.optional().describe("a Hetzner private network for the hcloud hosts"),
    servers: z.record(z.string().regex(NAME_RE), roleSchema).refine((s) => Object.keys(s).length > 0, "at least one role"),
    proxy: proxySchema.default({}),
    env: envSchema.default({ clear: {}, secret: [] }),
    boot: bootSchema.default({}),
    retain: z.number().int().min(1).max(100).default(5).describe("stopped releases kept for rollback"),
    migrate: z.union([z.string().min(1), z.literal(false)]).default("bin/rails db:prepare").describe("run once per release before the web cutover; false to skip"),
    readinessDelay: z.number().int().min(0).max(600).default(7).describe("seconds a role without proxy or Docker healthcheck must stay running"),
    stopTimeout: z.number().int().min(1).max(3600).default(10).describe("docker stop -t for old releases"),
    accessories: accessoriesSchema,
    litestream: litestreamSchema,
  })
  .strict();

type RawConfig = z.infer<typeof configSchema>;

// ---------------------------------------------------------------------------------------------
// The normalized result components consume

export type HostKind = "hcloud" | "ssh" | "local";

export interface HostConfig {
  readonly name: string;
  readonly kind: HostKind;
  readonly hcloud?: { serverType: string; location: string; image: string };
  readonly ssh?: { address: string; user: string; port: number; hostKey?: string };
  readonly privateIp?: string;
  readonly labels: Record<string, string>;
}

export interface RoleProxy {
  readonly domains: string[];
  readonly ssl: boolean;
  readonly appPort: number;
}

export interface RoleConfig {
  readonly name: string;
  readonly hosts: string[];
  readonly cmd?: string;
  readonly options: Record<string, string>;
  readonly env: { clear: Record<string, string>; secret: string[] };
  /** Set for proxied (web) roles. */
  readonly proxy?: RoleProxy;
  readonly stopTimeout: number;
}

export interface ProxySettings {
  readonly healthcheck: { path: string; interval: number; timeout: number };
  readonly responseTimeout: number;
  readonly deployTimeout: number;
  readonly drainTimeout: number;
  readonly httpPort: number;
  readonly httpsPort: number;
  readonly bindIps: string[];
  readonly image: string;
  readonly tlsImage: string;
}

export interface DeployConfig {
  readonly project: string;
  readonly stack: string;
  readonly service: string;
  readonly image: string;
  readonly imageRef: ImageRef;
  readonly version: string;
  readonly registry?: { server: string; username: string; passwordSecret: string };
  readonly builder?: RawConfig["builder"];
  readonly ssh: { user: string; port: number; privateKeySecret?: string; publicKey?: string; allowFrom: string[] };
  readonly hosts: Record<string, HostConfig>;
  readonly network?: { ipRange: string; subnet: string; zone: string; confirmRangeChange?: boolean };
  /** Roles in stack-file order; the primary role (`web`, else the first proxied) first. */
  readonly roles: RoleConfig[];
  /** The service-wide env (`railhead:env`); a role's own env is laid over it. */
  readonly env: { clear: Record<string, string>; secret: string[] };
  readonly primaryRole: string;
  readonly proxy: ProxySettings;
  readonly boot: { limit?: number | string; wait: number };
  readonly retain: number;
  readonly migrate: string | false;
  readonly readinessDelay: number;
  readonly stopTimeout: number;
  readonly accessories: AccessoriesConfig;
  readonly litestream: LitestreamConfig;
  /** Names of keys present in `railhead:secrets`. */
  readonly secretNames: string[];
}

export interface ConfigProblem {
  /** e.g. `railhead:servers.web.hosts[1]` */
  readonly path: string;
  readonly message: string;
  readonly example?: string;
}

export class ConfigError extends Error {
  constructor(readonly problems: ConfigProblem[]) {
    super(formatProblems(problems));
    this.name = "ConfigError";
  }
}

export function formatProblems(problems: ConfigProblem[]): string {
  const lines = problems.map((p) => `  - ${p.path}: ${p.message}${p.example ? `\n      example: ${p.example}` : ""}`);
  const n = problems.length;
  return `Railhead config has ${n} problem${n === 1 ? "" : "s"}; nothing was changed:\n${lines.join("\n")}`;
}

// ---------------------------------------------------------------------------------------------
// Examples shown next to errors, by the first key path segments that match.

const EXAMPLES: Array<[RegExp, string]> = [
  [/^service$/, "railhead:service: demo"],
  [/^image$/, "railhead:image: ghcr.io/acme/demo:1.4.2"],
  [/^version$/, "railhead:version: 1.4.2"],
  [/^registry\.password/, "password: [REGISTRY_PASSWORD]   then: pulumi config set --secret --path 'railhead:secrets.REGISTRY_PASSWORD' <token>"],
  [/^registry/, "railhead:registry: { server: ghcr.io, username: acme, password: [REGISTRY_PASSWORD] }"],
  [/^ssh\.privateKey/, "privateKey: [SSH_PRIVATE_KEY]   then: pulumi config set --secret --path 'railhead:secrets.SSH_PRIVATE_KEY' < ~/.ssh/id_ed25519"],
  [/^ssh\.allowFrom/, "allowFrom: [203.0.113.0/24]"],
  [/^ssh/, "railhead:ssh: { user: deploy, privateKey: [SSH_PRIVATE_KEY], publicKey: 'ssh-ed25519 AAAA...' }"],
  [/^hosts\.[^.]+\.hcloud/, "web-1: { hcloud: { serverType: cx23, location: fsn1, image: ubuntu-24.04 } }"],
  [/^hosts\.[^.]+\.ssh/, "web-1: { ssh: { address: 203.0.113.10, user: deploy, port: 22 } }"],
  [/^hosts/, "railhead:hosts: { web-1: { hcloud: { serverType: cx23, location: fsn1 } } }"],
  [/^servers\.[^.]+\.hosts/, "web: { hosts: [web-1, web-2] }"],
  [/^servers\.[^.]+\.proxy/, "web: { hosts: [web-1], proxy: { hosts: [app.example.com], ssl: true } }"],
  [/^servers/, "railhead:servers: { web: { hosts: [web-1] }, job: { hosts: [web-1], cmd: bin/jobs } }"],
  [/^proxy\.(hosts|host|ssl)/, "railhead:proxy: { hosts: [app.example.com], ssl: true }"],
  [/^proxy\.healthcheck/, "healthcheck: { path: /up, interval: 1, timeout: 5 }"],
  [/^proxy/, "railhead:proxy: { hosts: [app.example.com], appPort: 80, deployTimeout: 30 }"],
  [/^env|\.env/, "env: { clear: { RAILS_ENV: production }, secret: [RAILS_MASTER_KEY] }"],
  [/^boot\.limit/, "boot: { limit: 2 }   or   boot: { limit: \"25%\" }"],
  [/^boot/, "railhead:boot: { limit: \"50%\", wait: 2 }"],
  [/^retain/, "railhead:retain: 5"],
  [/^migrate/, "railhead:migrate: bin/rails db:prepare   (or false)"],
  [/^network/, "railhead:network: { ipRange: 10.0.0.0/16, subnet: 10.0.1.0/24, zone: eu-central }"],
  [/^builder/, "railhead:builder: { context: ., dockerfile: Dockerfile, args: { RUBY_VERSION: 3.3.5 } }"],
  [/^secrets/, "pulumi config set --secret --path 'railhead:secrets.RAILS_MASTER_KEY' <value>"],
];

export function exampleFor(path: string): string | undefined {
  const bare = path.replace(/^railhead:/, "");
  return EXAMPLES.find(([re]) => re.test(bare))?.[1];
}

function keyPath(path: ReadonlyArray<string | number>): string {
  let out = `${NAMESPACE}:`;
  path.forEach((seg, i) => {
    if (typeof seg === "number") out += `[${seg}]`;
    else out += i === 0 ? seg : `.${seg}`;
  });
  return out;
}

function problem(path: ReadonlyArray<string | number>, message: string): ConfigProblem {
  const p = keyPath(path);
  return { path: p, message, example: exampleFor(p) };
}

function describeZodIssue(issue: z.ZodIssue, raw: Record<string, unknown>): ConfigProblem[] {
  const dotted = issue.path.filter((s) => typeof s === "string").join(".");
  if (SECRET_FIELDS.has(dotted)) {
    const value = getAt(raw, issue.path);
    if (typeof value === "string") {
      return [problem(issue.path, "a secret given as plain text; this value is now in your stack file and should be rotated. Name a secret instead and set its value with `pulumi config set --secret`")];
    }
  }
  switch (issue.code) {
    case "unrecognized_keys":
      return issue.keys.map((k) => problem([...issue.path, k], `unknown key "${k}"${suggest(k, issue.path, raw)}`));
    case "invalid_type":
      if (issue.received === "undefined") return [problem(issue.path, `required key is missing (expected ${issue.expected})`)];
      return [problem(issue.path, `expected ${issue.expected}, got ${issue.received}`)];
    case "invalid_union": {
      // Report the branch that got furthest, so "hcloud.serverType missing" beats "not a list".
      const branches = issue.unionErrors.map((e) => e.issues);
      const best = branches.sort((a, b) => depth(b) - depth(a) || a.length - b.length)[0] ?? [];
      const deeper = best.filter((i) => i.path.length > issue.path.length);
      if (deeper.length > 0) return deeper.flatMap((i) => describeZodIssue(i, raw));
      return [problem(issue.path, `not a valid value: ${describeExpected(issue.path)}`)];
    }
    default:
      return [problem(issue.path, issue.message)];
  }
}

function depth(issues: z.ZodIssue[]): number {
  return Math.max(0, ...issues.map((i) => i.path.length));
}

function describeExpected(path: ReadonlyArray<string | number>): string {
  const top = String(path[0] ?? "");
  if (top === "hosts") return "a host is one of `hcloud: {...}`, `ssh: {...}` or `local: {}`";
  if (top === "servers") return "a role is a list of hosts or `{ hosts: [...], cmd, options, env }`";
  if (top === "env" || path.includes("env")) return "`{ clear: {...}, secret: [...] }` or a `{KEY: value}` map";
  return "see the configuration reference in README.md";
}

function suggest(key: string, path: ReadonlyArray<string | number>, _raw: Record<string, unknown>): string {
  if (path.length === 0) {
    const close = CONFIG_KEYS.find((k) => levenshtein(k.toLowerCase(), key.toLowerCase()) <= 2);
    if (close) return `; did you mean "${close}"?`;
    return `; known keys: ${CONFIG_KEYS.join(", ")}`;
  }
  return "";
}

function levenshtein(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++)
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
  return d[a.length][b.length];
}

function getAt(obj: unknown, path: ReadonlyArray<string | number>): unknown {
  let cur: unknown = obj;
  for (const seg of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string | number, unknown>)[seg];
  }
  return cur;
}

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

function parseValue(v: string): unknown {
  try {
    return JSON.parse(v);
  } catch {
    return v; // plain strings (service: demo) arrive unquoted
  }
}

export interface LoadedConfig {
  readonly config: DeployConfig;
  /** Secret values by name, each a secret Output; only ever sent to hosts on stdin. */
  readonly secrets: Record<string, pulumi.Output<string>>;
}

/**
 * Validates the whole stack config. Throws ConfigError with every problem found; never registers
 * anything itself.
 */
export function loadConfig(raw: RawStackConfig = readRawStackConfig()): LoadedConfig {
  const problems: ConfigProblem[] = [];
  const input: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw.values)) {
    const key = k.slice(NAMESPACE.length + 1);
    if (key === "secrets") continue;
    input[key] = parseValue(v);
  }

  // Secrets: one secret object, `railhead:secrets`, set with --secret --path.
  let secretValues: Record<string, string> = {};
  const secretsRaw = raw.values[`${NAMESPACE}:secrets`];
  if (secretsRaw !== undefined) {
    if (!raw.secretKeys.has(`${NAMESPACE}:secrets`)) {
      problems.push(problem(["secrets"], "holds secret values but is stored as plain text in the stack file; remove it and set each value with --secret (rotate any value that was committed)"));
    }
    const parsed = parseValue(secretsRaw);
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
      problems.push(problem(["secrets"], "must be a map of NAME: value"));
    } else {
      secretValues = Object.fromEntries(Object.entries(parsed as Record<string, unknown>).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]));
    }
  }
  for (const k of Object.keys(raw.values)) {
    const key = k.slice(NAMESPACE.length + 1);
    if (raw.secretKeys.has(k) && key !== "secrets") {
      problems.push(problem([key], "is stored as a secret but Railhead reads secrets only from railhead:secrets; keep this key plain and put secret values under railhead:secrets"));
    }
  }

  // Each top-level key is checked on its own so one bad section does not hide the problems of
  // the others; a section that fails is replaced by its default (or left out) for the cross-checks.
  const shape = configSchema.shape;
  const partial: Record<string, unknown> = {};
  let essentialsOk = true;
  for (const key of Object.keys(input)) {
    if (!(key in shape)) problems.push(...describeZodIssue({ code: "unrecognized_keys", keys: [key], path: [], message: "" }, input));
  }
  for (const [key, schema] of Object.entries(shape) as Array<[string, z.ZodTypeAny]>) {
    const r = schema.safeParse(input[key]);
    if (r.success) {
      partial[key] = r.data;
      continue;
    }
    for (const issue of r.error.issues) problems.push(...describeZodIssue({ ...issue, path: [key, ...issue.path] } as z.ZodIssue, input));
    const fallback = schema.safeParse(undefined);
    if (fallback.success) partial[key] = fallback.data;
    // A placeholder keeps the cross-checks running, so one missing name does not hide the rest.
    else if (key === "image" || key === "service") partial[key] = "invalid";
    else essentialsOk = false;
  }
  if (!essentialsOk) throw new ConfigError(dedupe(problems));
  const c = partial as RawConfig;
  const config = normalize(c, raw, Object.keys(secretValues), problems);
  if (problems.length > 0) throw new ConfigError(dedupe(problems));
  const secrets = Object.fromEntries(Object.entries(secretValues).map(([k, v]) => [k, pulumi.secret(v)]));
  return { config, secrets };
}

function dedupe(problems: ConfigProblem[]): ConfigProblem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const key = `${p.path}|${p.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

const str = (v: string | number | boolean): string => String(v);

function normalize(c: RawConfig, raw: RawStackConfig, secretNames: string[], problems: ConfigProblem[]): DeployConfig {
  const hostNames = Object.keys(c.hosts);
  const secretSet = new Set(secretNames);
  const requireSecret = (path: Array<string | number>, name: string) => {
    if (!secretSet.has(name)) {
      problems.push({
        path: keyPath(path),
        message: `names secret "${name}", which is not set`,
        example: `pulumi config set --secret --path 'railhead:secrets.${name}' <value>`,
      });
    }
  };

  // Image
  const imageRef = parseImageRef(c.image);
  if (!imageRef) {
    problems.push(problem(["image"], `"${c.image}" is not an image reference ([registry/]repository[:tag][@sha256:digest], lower-case repository)`));
  } else if (!c.builder && !imageRef.tag && !imageRef.digest && !c.version) {
    problems.push(problem(["image"], `"${c.image}" has no tag or digest, so a release cannot be named or rolled back; pin a tag or a digest, or set railhead:version`));
  }
  const version = c.version ?? deriveVersion(imageRef);

  // Hosts
  const hosts: Record<string, HostConfig> = {};
  for (const [name, h] of Object.entries(c.hosts)) {
    if ("hcloud" in h) hosts[name] = { name, kind: "hcloud", hcloud: h.hcloud, privateIp: h.privateIp, labels: h.labels };
    else if ("ssh" in h)
      hosts[name] = {
        name,
        kind: "ssh",
        ssh: { address: h.ssh.address, user: h.ssh.user ?? c.ssh.user, port: h.ssh.port ?? c.ssh.port, hostKey: h.ssh.hostKey },
        privateIp: h.privateIp,
        labels: h.labels,
      };
    else hosts[name] = { name, kind: "local", labels: h.labels };
  }
  const kinds = new Set(Object.values(hosts).map((h) => h.kind));
  if (kinds.has("hcloud") && !c.ssh.publicKey) problems.push(problem(["ssh", "publicKey"], "required when any host is hcloud (it is installed for the deploy user)"));
  if ((kinds.has("hcloud") || kinds.has("ssh")) && !c.ssh.privateKey) problems.push(problem(["ssh", "privateKey"], "required when any host is reached over SSH"));
  if (c.ssh.privateKey) requireSecret(["ssh", "privateKey"], c.ssh.privateKey);
  if (c.registry) requireSecret(["registry", "password"], c.registry.password);

  // Roles
  const roleNames = Object.keys(c.servers);
  const primaryRole = roleNames.includes("web") ? "web" : roleNames[0];
  const roles: RoleConfig[] = [];
  const domainOwners = new Map<string, string>();
  const topDomains = [...c.proxy.hosts, ...(c.proxy.host ? [c.proxy.host] : [])];
  for (const [roleName, r] of Object.entries(c.servers)) {
    const full = "cmd" in r || "options" in r ? r : { hosts: r.hosts };
    const rr = full as { hosts: string[]; cmd?: string; options?: Record<string, string | number | boolean>; env?: { clear: Record<string, string | number | boolean>; secret: string[] }; proxy?: boolean | { hosts?: string[]; ssl?: boolean; appPort?: number }; stopTimeout?: number };
    rr.hosts.forEach((h, i) => {
      if (!hosts[h]) problems.push({ path: keyPath(["servers", roleName, "hosts", i]), message: `unknown host "${h}"; hosts are: ${hostNames.join(", ")}`, example: `hosts: [${hostNames[0] ?? "web-1"}]` });
    });
    const dup = rr.hosts.find((h, i) => rr.hosts.indexOf(h) !== i);
    if (dup) problems.push(problem(["servers", roleName, "hosts"], `host "${dup}" is listed twice`));
    const proxied = rr.proxy === undefined ? roleName === primaryRole : rr.proxy !== false;
    let proxy: RoleProxy | undefined;
    if (proxied) {
      const po = typeof rr.proxy === "object" ? rr.proxy : {};
      const domains = (po.hosts ?? topDomains).map((d) => d.toLowerCase());
      const ssl = po.ssl ?? c.proxy.ssl;
      proxy = { domains, ssl, appPort: po.appPort ?? c.proxy.appPort };
      const where = typeof rr.proxy === "object" && rr.proxy.hosts ? ["servers", roleName, "proxy", "hosts"] : ["proxy", "hosts"];
      domains.forEach((d, i) => {
        if (!DOMAIN_RE.test(d)) problems.push(problem([...where, i], `"${d}" is not a domain name`));
        const owner = domainOwners.get(d);
        if (owner && owner !== roleName) problems.push(problem([...where, i], `domain "${d}" is routed to both "${owner}" and "${roleName}"; a domain belongs to one service`));
        domainOwners.set(d, roleName);
      });
      if (ssl && domains.length === 0) {
        problems.push(problem(typeof rr.proxy === "object" && rr.proxy.ssl !== undefined ? ["servers", roleName, "proxy", "ssl"] : ["proxy", "ssl"], "ssl needs at least one domain to request a certificate for"));
      }
    }
    const env = rr.env ?? { clear: {}, secret: [] };
    env.secret.forEach((name, i) => requireSecret(["servers", roleName, "env", "secret", i], name));
    roles.push({
      name: roleName,
      hosts: rr.hosts,
      cmd: rr.cmd,
      options: Object.fromEntries(Object.entries(rr.options ?? {}).map(([k, v]) => [k, str(v)])),
      env: { clear: Object.fromEntries(Object.entries(env.clear).map(([k, v]) => [k, str(v)])), secret: env.secret },
      proxy,
      stopTimeout: rr.stopTimeout ?? c.stopTimeout,
    });
  }
  roles.sort((a, b) => (a.name === primaryRole ? -1 : b.name === primaryRole ? 1 : 0));
  if (!roles.some((r) => r.proxy) && c.proxy.hosts.length > 0) problems.push(problem(["proxy", "hosts"], "no role is proxied, so these domains route nowhere"));

  c.env.secret.forEach((name, i) => requireSecret(["env", "secret", i], name));
  // An env file holds one KEY=VALUE line per variable; a line break would split a value.
  const lineBreaks = (clear: Record<string, string | number | boolean>, at: Array<string | number>) => {
    for (const [k, v] of Object.entries(clear)) {
      if (typeof v === "string" && /[\r\n\0]/.test(v)) problems.push(problem([...at, k], "contains a line break; an env file holds one line per variable (encode it, e.g. base64)"));
    }
  };
  lineBreaks(c.env.clear, ["env", "clear"]);
  for (const [roleName, r] of Object.entries(c.servers)) {
    if ("env" in r && r.env) lineBreaks(r.env.clear, ["servers", roleName, "env", "clear"]);
  }
  for (const k of c.env.secret) if (k in c.env.clear) problems.push(problem(["env", "clear", k], `"${k}" is both clear and secret; keep it only in env.secret`));

  // Boot limit
  const webHosts = roles.find((r) => r.name === primaryRole)?.hosts.length ?? 0;
  if (c.boot.limit !== undefined) {
    if (typeof c.boot.limit === "number") {
      if (c.boot.limit < 1 || c.boot.limit > Math.max(1, webHosts))
        problems.push(problem(["boot", "limit"], `${c.boot.limit} is out of range: between 1 and the number of ${primaryRole} hosts (${webHosts})`));
    } else {
      const pct = Number(c.boot.limit.slice(0, -1));
      if (pct < 1 || pct > 100) problems.push(problem(["boot", "limit"], `${c.boot.limit} is out of range: between 1% and 100%`));
    }
  }

  if (c.registry && imageRef && imageRef.registry && imageRef.registry !== c.registry.server)
    problems.push(problem(["image"], `the image is on "${imageRef.registry}" but railhead:registry.server is "${c.registry.server}"`));

  validateAccessories(c.accessories, hostNames, secretSet, problems, keyPath, { roles, litestream: c.litestream });
  validateLitestream(c.litestream, { hosts: hostNames, roles, secretNames: secretSet, problems, keyPath });

  return {
    project: raw.project,
    stack: raw.stack,
    service: c.service,
    image: c.image,
    imageRef: imageRef ?? { path: c.image },
    version,
    registry: c.registry ? { server: c.registry.server, username: c.registry.username, passwordSecret: c.registry.password } : undefined,
    builder: c.builder,
    ssh: { user: c.ssh.user, port: c.ssh.port, privateKeySecret: c.ssh.privateKey, publicKey: c.ssh.publicKey, allowFrom: c.ssh.allowFrom },
    hosts,
    network: c.network,
    roles,
    env: { clear: Object.fromEntries(Object.entries(c.env.clear).map(([k, v]) => [k, str(v)])), secret: c.env.secret },
    primaryRole,
    proxy: {
      healthcheck: c.proxy.healthcheck,
      responseTimeout: c.proxy.responseTimeout,
      deployTimeout: c.proxy.deployTimeout,
      drainTimeout: c.proxy.drainTimeout,
      httpPort: c.proxy.httpPort,
      httpsPort: c.proxy.httpsPort,
      bindIps: c.proxy.bindIps,
      image: c.proxy.image,
      tlsImage: c.proxy.tlsImage,
    },
    boot: c.boot,
    retain: c.retain,
    migrate: c.migrate,
    readinessDelay: c.readinessDelay,
    stopTimeout: c.stopTimeout,
    accessories: c.accessories,
    litestream: c.litestream,
    secretNames,
  };
}

/** The image tag, else the first 12 hex digits of its digest, else "latest". */
export function deriveVersion(ref: ImageRef | undefined): string {
  if (ref?.digest) return ref.digest.slice("sha256:".length, "sha256:".length + 12);
  if (ref?.tag) return ref.tag;
  return "latest";
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
