// Shapes used by several sections, defined once: names, secret references, whole numbers that may
// arrive quoted, durations in seconds, ports, CIDRs and addresses, the line-break rule, string maps,
// and the strict object that names unknown keys (with "did you mean" and Kamal's spellings).
import { z } from "zod";
import { splitWords } from "./words";
import { REFUSED_OPTIONS, volumeOptionProblem } from "./hardening";

export const NAME_RE = /^[a-z0-9][a-z0-9_-]*$/;
export const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

// ---------------------------------------------------------------------------------------------
// Markers the issue translator (./issues.ts) turns into full messages once it knows the path.

/** A string where a secret reference (`[NAME]`) belongs. */
export const SECRET_MARK = "\u0000railhead:secret-ref";
/** Prefix of an unrecognized-keys message: JSON with the known keys and hints follows. */
export const UNKNOWN_MARK = "\u0000railhead:unknown-keys";

export interface UnknownKeysInfo {
  readonly known: string[];
  readonly hints: Record<string, string>;
}

/**
 * A strict object: a key it does not know is reported at its own path with the nearest known key,
 * the camelCase name of a Kamal snake_case key, or `hints[key]` (where Kamal's key lives here).
 */
export function obj<S extends z.ZodRawShape>(shape: S, hints: Record<string, string> = {}): z.ZodObject<S, z.core.$strict> {
  const info: UnknownKeysInfo = { known: Object.keys(shape), hints };
  return z.strictObject(shape, {
    error: (iss) => (iss.code === "unrecognized_keys" ? `${UNKNOWN_MARK}${JSON.stringify(info)}` : undefined),
  });
}

// ---------------------------------------------------------------------------------------------
// Values

/** Whether a string looks like a credential rather than a name, a path or a word. */
export function looksLikeCredential(v: string): boolean {
  if (/-----BEGIN [A-Z ]*(PRIVATE KEY|CERTIFICATE)-----/.test(v)) return true;
  if (/^(ghp|gho|ghs|github_pat|glpat|sk_live|sk_test|rk_live|xox[bap]|AKIA|ASIA|dckr_pat)[-_A-Za-z0-9]{8,}/.test(v)) return true;
  if (/^[a-z][a-z0-9+.-]*:\/\/[^/\s:@]*:[^/\s@]+@/i.test(v)) return true; // a URL with a password
  if (v.length < 16 || /\s/.test(v) || /^[./~]/.test(v) || /^[a-z][a-z0-9+.-]*:\/\//i.test(v)) return false;
  if (/^[0-9a-f]{24,}$/i.test(v)) return true; // hex: Rails master keys, API tokens
  const classes = [/[a-z]/, /[A-Z]/, /[0-9]/].filter((re) => re.test(v)).length;
  return classes === 3 && /^[A-Za-z0-9+/=_-]+$/.test(v) && !/^[A-Za-z]+(_[A-Za-z0-9]+)*$/.test(v);
}

/** The name of a key in `railhead:secrets`. A credential pasted here is reported as one. */
export const secretName = z.string().check((ctx) => {
  if (ENV_NAME_RE.test(ctx.value)) return;
  ctx.issues.push({
    code: "custom",
    input: ctx.value,
    message: looksLikeCredential(ctx.value) ? SECRET_MARK : `"${ctx.value}" is not a secret name (letters, digits and _, not starting with a digit)`,
  });
});

/** `[NAME]` (Kamal's form) or `{ secret: NAME }`: names a key of `railhead:secrets`. */
export const secretRef = z
  .union([z.tuple([secretName]).transform(([name]) => name), obj({ secret: secretName }).transform((o) => o.secret)], { error: () => SECRET_MARK })
  .describe("names a secret: `[NAME]`, whose value is set with `pulumi config set --secret --path 'railhead:secrets.NAME'`");

/** A name (hosts, roles, accessories): lower-case letters, digits, - and _. */
export const nameKey = z
  .string()
  .regex(NAME_RE, { error: "lower-case letters, digits, - and _, starting with a letter or digit" })
  .max(63, { error: "is longer than 63 characters (a container or DNS name label)" });

/** A container command: one line, split at config time exactly as the host tool will split it. */
export const command = (what: string) =>
  oneLine(what)
    .min(1)
    .check((ctx) => {
      const w = splitWords(ctx.value);
      if (typeof w === "string") ctx.issues.push({ code: "custom", input: ctx.value, message: w, params: { example: `${what}: bin/rails runner 'Job.perform_now'` } });
    });

/** docker run options: `KEY: value`, `KEY: true` for a flag; options that change exposure or isolation are refused. */
export const dockerOptions = () =>
  z
    .record(z.string().regex(/^[a-zA-Z][a-zA-Z0-9-]*$/, { error: "a docker run option without dashes, e.g. memory or cpus" }), plainValue)
    .check((ctx) => {
      for (const [k, v] of Object.entries(ctx.value)) {
        const why = REFUSED_OPTIONS[k];
        if (why) ctx.issues.push({ code: "custom", input: v, path: [k], message: `the "${k}" option is refused: ${why}`, params: { example: "options: { memory: 1g, cpus: 2 }" } });
        else if ((k === "volume" || k === "v") && typeof v === "string") {
          const p = volumeOptionProblem(v);
          if (p) ctx.issues.push({ code: "custom", input: v, path: [k], message: p, params: { example: "volumes: [data:/var/lib/postgresql/data]   (accessories)" } });
        }
      }
    })
    .default({})
    .describe("docker run options, e.g. memory: 512m; `flag: true` renders as --flag; publish, network, privileged, pid, ipc, userns, cap-add, device, security-opt and host-path volumes are refused");

/** An env variable name. */
export const envName = z.string().regex(ENV_NAME_RE, { error: "an env name: letters, digits and _, not starting with a digit" });

/** A whole number that may arrive quoted (`"5432"`). */
export function int(min: number, max: number, what = "a whole number") {
  const range = z.int().min(min).max(max);
  return z.union([range, z.string().regex(/^-?\d+$/).transform(Number).pipe(range)], {
    error: (iss) => {
      const got = iss.input;
      const shown = typeof got === "string" ? `"${got}"` : JSON.stringify(got);
      return `expected ${what} from ${min} to ${max}, got ${shown}`;
    },
  });
}

export const port = () => int(1, 65535, "a port number");

export const seconds = (def: number, what: string, max = 3600) =>
  int(1, max, "a number of seconds").default(def).describe(`${what}, seconds (default ${def})`);

/** The line-break rule: a value written into a line-based file (env file, crontab, service file). */
export const LINE_BREAK_RE = /[\r\n\0]/;
export const oneLine = (what = "a value") =>
  z.string().refine((v) => !LINE_BREAK_RE.test(v), { error: `contains a line break or NUL; ${what} is written as one line` });

/** A plain value in a string map: strings, numbers and booleans become strings. */
export const plainValue = z.union([oneLine(), z.number(), z.boolean()], {
  error: (iss) => `expected a string, number or boolean, got ${describeValue(iss.input)}`,
});

export function describeValue(v: unknown): string {
  if (v === undefined) return "nothing";
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a map";
  if (typeof v === "string") return `the string "${v.length > 40 ? `${v.slice(0, 37)}...` : v}"`;
  return `${typeof v} ${JSON.stringify(v)}`;
}

// ---------------------------------------------------------------------------------------------
// Addresses

export function ipv4ToInt(ip: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return undefined;
  return ((parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3]) >>> 0;
}

export interface Cidr {
  readonly v: 4 | 6;
  readonly base: number;
  readonly prefix: number;
}

/** Parses an IPv4 or IPv6 CIDR; returns a message saying what is wrong otherwise. */
export function parseCidr(s: string): Cidr | string {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(s);
  if (!m) return `"${s}" is not a CIDR (an address, "/", a prefix length)`;
  const prefix = Number(m[2]);
  if (m[1].includes(":")) {
    if (!/^[0-9a-fA-F:]+$/.test(m[1]) || (m[1].match(/::/g) ?? []).length > 1) return `"${m[1]}" is not an IPv6 address`;
    if (prefix > 128) return `/${prefix} is not an IPv6 prefix length (0 to 128)`;
    return { v: 6, base: 0, prefix };
  }
  const base = ipv4ToInt(m[1]);
  if (base === undefined) return `"${m[1]}" is not an IPv4 address`;
  if (prefix > 32) return `/${prefix} is not an IPv4 prefix length (0 to 32)`;
  return { v: 4, base, prefix };
}

export function cidrContains(outer: Cidr, inner: Cidr): boolean {
  if (outer.v !== 4 || inner.v !== 4 || inner.prefix < outer.prefix) return false;
  const mask = outer.prefix === 0 ? 0 : (~0 << (32 - outer.prefix)) >>> 0;
  return ((outer.base & mask) >>> 0) === ((inner.base & mask) >>> 0);
}

export function cidrHasIp(c: Cidr, ip: number): boolean {
  return cidrContains(c, { v: 4, base: ip, prefix: 32 });
}

export const cidr = (v: 4 | 6 | "any" = "any") =>
  z.string().check((ctx) => {
    const c = parseCidr(ctx.value);
    if (typeof c === "string") ctx.issues.push({ code: "custom", input: ctx.value, message: c });
    else if (v !== "any" && c.v !== v) ctx.issues.push({ code: "custom", input: ctx.value, message: `"${ctx.value}" is not an IPv${v} CIDR` });
  });

export const ipv4 = () => z.ipv4({ error: (iss) => `${describeValue(iss.input)} is not an IPv4 address` });

export function isPrivateIpv4(ip: string): boolean {
  const n = ipv4ToInt(ip);
  if (n === undefined) return false;
  const inRange = (base: string, prefix: number) => cidrHasIp({ v: 4, base: ipv4ToInt(base) as number, prefix }, n);
  // RFC 1918, plus RFC 6598 shared space (100.64/10: carrier-grade NAT, WireGuard/Tailscale meshes).
  return inRange("10.0.0.0", 8) || inRange("172.16.0.0", 12) || inRange("192.168.0.0", 16) || inRange("100.64.0.0", 10);
}

export function isLoopback(host: string): boolean {
  if (host === "localhost" || host === "[::1]" || host === "::1") return true;
  const n = ipv4ToInt(host);
  return n !== undefined && n >>> 24 === 127;
}

// ---------------------------------------------------------------------------------------------
// Suggestions

export function levenshtein(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
  return d[a.length][b.length];
}

export const camel = (k: string): string => k.replace(/[_-]+([a-z0-9])/g, (_, c: string) => c.toUpperCase());

/** The known key `key` most likely means: its camelCase form, or the nearest by edit distance. */
export function nearest(key: string, known: readonly string[]): string | undefined {
  const c = camel(key);
  const exact = known.find((k) => k === c || k.toLowerCase() === key.toLowerCase() || k.toLowerCase() === c.toLowerCase());
  if (exact) return exact;
  const limit = key.length <= 4 ? 1 : key.length <= 8 ? 2 : 3;
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const dist = levenshtein(k.toLowerCase(), c.toLowerCase());
    if (dist <= limit && dist < bestD) {
      best = k;
      bestD = dist;
    }
  }
  return best;
}

export function getAt(obj: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let cur: unknown = obj;
  for (const seg of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[seg];
  }
  return cur;
}
