// Turns zod issues into problems at the full path as written. Messages come from zod's error
// customisation (the per-parse `messages` map below, and `error` on the shapes in ./shared.ts);
// this file only places them: it follows unions into the branch the value was meant for, names
// unknown keys one by one (and drops the "missing" report for the key a misspelling stands for),
// and turns a pasted secret into the command that stores it.
import { z } from "zod";
import { describeValue, getAt, nearest, looksLikeCredential, SECRET_MARK, UNKNOWN_MARK, type UnknownKeysInfo } from "./shared";
import { keyPath, secretCommand, type Path, type Problems } from "./problems";

type Issue = z.core.$ZodIssue;

const article = (t: string) => (/^[aeiou]/.test(t) ? `an ${t}` : `a ${t}`);

/** Zod's per-parse error map: what each generic issue says. Shapes with their own `error` win. */
export const messages: z.core.$ZodErrorMap = (iss) => {
  switch (iss.code) {
    case "invalid_type":
      if (iss.input === undefined) return `required key is missing (expected ${article(iss.expected)})`;
      return `expected ${article(iss.expected === "tuple" ? "list" : iss.expected)}, got ${describeValue(iss.input)}`;
    case "too_small":
      if (iss.origin === "string") return iss.minimum === 1 ? "must not be empty" : `must be at least ${String(iss.minimum)} characters`;
      if (iss.origin === "array") return `needs at least ${String(iss.minimum)} entr${iss.minimum === 1 ? "y" : "ies"}`;
      return `${JSON.stringify(iss.input)} is too small: at least ${String(iss.minimum)}`;
    case "too_big":
      if (iss.origin === "string") return `is longer than ${String(iss.maximum)} characters`;
      if (iss.origin === "array") return `has more than ${String(iss.maximum)} entries`;
      return `${JSON.stringify(iss.input)} is too large: at most ${String(iss.maximum)}`;
    case "invalid_value": {
      const values = iss.values.map((v) => String(v));
      const near = typeof iss.input === "string" ? nearest(iss.input, values) : undefined;
      return `${describeValue(iss.input)} is not one of: ${values.join(", ")}${near ? `; did you mean "${near}"?` : ""}`;
    }
    case "invalid_format":
      return `${describeValue(iss.input)} is not ${article(iss.format === "regex" ? "valid value" : iss.format)}`;
    case "invalid_key":
      return `"${String(iss.input)}" is not a valid name`;
    default:
      return undefined;
  }
};

export interface TranslateContext {
  readonly problems: Problems;
  /** The example shown with a problem at this path. */
  readonly exampleFor: (path: Path) => string;
  /** Messages for Kamal keys that live elsewhere, by bare dotted path pattern of the parent. */
  readonly hintFor?: (parent: Path, key: string) => string | undefined;
}

/** Places `issues` (from parsing `input`, which sits at `base`) as problems. */
export function translate(issues: readonly Issue[], input: unknown, base: Path, ctx: TranslateContext): void {
  // A misspelled key stands for a missing one: report the misspelling only.
  const suppressed = new Set<string>();
  for (const iss of issues) {
    if (iss.code !== "unrecognized_keys") continue;
    const info = unknownInfo(iss.message);
    for (const k of iss.keys) {
      const near = info && (aliasTarget(info.hints[k]) ?? nearest(k, info.known));
      if (near) suppressed.add(keyPath([...base, ...rel(iss.path), near]));
    }
  }
  for (const iss of issues) {
    const path: Path = [...base, ...rel(iss.path)];
    const value = getAt(input, iss.path);
    switch (iss.code) {
      case "unrecognized_keys": {
        const info = unknownInfo(iss.message);
        for (const k of iss.keys) unknownKey([...path, k], k, info, ctx);
        break;
      }
      case "invalid_union": {
        if (value === undefined && suppressed.has(keyPath(path))) break;
        const { branch, tied } = bestBranch(iss.errors, value);
        const custom = iss.message !== "Invalid input";
        if (branch && tied) {
          // The value fits no branch at its own level (e.g. a host with neither hcloud, ssh nor local):
          // name its unknown keys, and say what the value can be unless a misspelling explains it.
          const unknown = branch.filter((i) => i.path.length === 0 && i.code === "unrecognized_keys");
          translate(unknown, value, path, ctx);
          const explained = unknown.some((i) => i.code === "unrecognized_keys" && i.keys.some((k) => { const info = unknownInfo(i.message); return info && (aliasTarget(info.hints[k]) ?? nearest(k, info.known)); }));
          if (!explained) leaf(path, custom ? iss.message : `${describeValue(value)} is not a valid value here`, value, ctx);
        } else if (branch && !(custom && branch.every((i) => i.path.length === 0 && i.code !== "unrecognized_keys"))) {
          translate(branch, value, path, ctx);
        } else if (iss.message === SECRET_MARK || !custom) {
          leaf(path, iss.message === SECRET_MARK ? SECRET_MARK : `${describeValue(value)} is not a valid value here`, value, ctx);
        } else leaf(path, iss.message, value, ctx);
        break;
      }
      case "invalid_key": {
        const inner = iss.issues.map((i) => i.message).filter((m) => m && m !== "Invalid input");
        leaf(path, `"${String(iss.input ?? path[path.length - 1])}" is not a valid name${inner.length ? `: ${inner.join("; ")}` : ""}`, value, ctx);
        break;
      }
      case "invalid_type":
        if (value === undefined && suppressed.has(keyPath(path))) break;
        leaf(path, iss.message, value, ctx);
        break;
      case "invalid_value":
        if (value === undefined && suppressed.has(keyPath(path))) break;
        leaf(path, value === undefined ? `required key is missing (one of: ${iss.values.map(String).join(", ")})` : iss.message, value, ctx);
        break;
      default:
        if (value === undefined && suppressed.has(keyPath(path))) break;
        leaf(path, iss.message, value, ctx, (iss as { params?: { example?: string } }).params?.example);
    }
  }
}

const rel = (p: readonly PropertyKey[]): Path => p.map((s) => (typeof s === "number" ? s : String(s)));

function leaf(path: Path, message: string, value: unknown, ctx: TranslateContext, example?: string): void {
  if (message === SECRET_MARK) {
    secretProblem(path, value, ctx);
    return;
  }
  ctx.problems.add(path, message, example ?? ctx.exampleFor(path));
}

/** A suggested secret name for a key that holds one: `registry.password` -> REGISTRY_PASSWORD. */
export function secretNameFor(path: Path): string {
  const words = path.filter((s): s is string => typeof s === "string").slice(-2);
  const snake = words.map((w) => w.replace(/([a-z0-9])([A-Z])/g, "$1_$2").replace(/-/g, "_").toUpperCase());
  if (snake[0] === "REPLICA") snake[0] = "LITESTREAM";
  if (snake[1] === "SECRET" || snake[0] === "ENV") return snake[1] === "SECRET" ? "APP_SECRET" : snake[1];
  return snake.join("_");
}

/** A string where a secret reference belongs: a pasted credential, or a name without brackets. */
export function secretProblem(path: Path, value: unknown, ctx: TranslateContext): void {
  const name = secretNameFor(path);
  const last = path[path.length - 1];
  const field = typeof last === "number" ? keyPath(path.slice(0, -1)).replace(/^[^:]+:/, "") : String(last);
  if (typeof value === "string" && /^[A-Z][A-Z0-9_]*$/.test(value)) {
    ctx.problems.add(path, `names a secret without brackets; write it as [${value}] (Kamal's form)`, `${field}: [${value}]`);
    return;
  }
  if (typeof value === "string" && (looksLikeCredential(value) || value.length > 0)) {
    ctx.problems.add(
      path,
      "this is a secret pasted as plain text: it is now in your stack file (and its git history), so rotate it; then store the new value encrypted and name it here",
      `${secretCommand(name)}   then: ${typeof last === "number" ? name : `${field}: [${name}]`}`,
    );
    return;
  }
  ctx.problems.add(path, `names a secret as [NAME], got ${describeValue(value)}`, `${field}: [${name}]   then: ${secretCommand(name)}`);
}

function unknownInfo(message: string): UnknownKeysInfo | undefined {
  if (!message.startsWith(UNKNOWN_MARK)) return undefined;
  return JSON.parse(message.slice(UNKNOWN_MARK.length)) as UnknownKeysInfo;
}

/** A hint of the form `=key` means "this Kamal key is Railhead's `key`". */
function aliasTarget(hint: string | undefined): string | undefined {
  return hint?.startsWith("=") ? hint.slice(1) : undefined;
}

function unknownKey(path: Path, key: string, info: UnknownKeysInfo | undefined, ctx: TranslateContext): void {
  const parent = path.slice(0, -1);
  const where = keyPath(parent);
  const hint = info?.hints[key] ?? ctx.hintFor?.(parent, key);
  const alias = aliasTarget(hint);
  if (hint && !alias) {
    ctx.problems.add(path, `unknown key "${key}": ${hint}`, ctx.exampleFor(path));
    return;
  }
  const near = alias ?? (info ? nearest(key, info.known) : undefined);
  if (near) {
    const kamal = /_/.test(key) || alias ? " (Kamal's spelling; Railhead writes camelCase)" : "";
    ctx.problems.add(path, `unknown key "${key}"; did you mean "${near}"?${alias && !/_/.test(key) ? ` (Kamal's "${key}" is "${near}" here)` : kamal}`, ctx.exampleFor([...parent, near]));
    return;
  }
  ctx.problems.add(path, `unknown key "${key}"${info ? `; keys here (${where}) are: ${info.known.join(", ")}` : ""}`, ctx.exampleFor(parent.length ? parent : path));
}

/** The union branch the value was meant for: the one failing least at the union's own level. */
function bestBranch(branches: readonly (readonly Issue[])[], value: unknown): { branch?: readonly Issue[]; tied: boolean } {
  let best: readonly Issue[] | undefined;
  let bestScore = Infinity;
  const scores: number[] = [];
  for (const b of branches) {
    let score = b.length / 1000;
    for (const i of b) {
      if (i.path.length === 0) {
        if (i.code === "invalid_type" || i.code === "invalid_union") score += 1000;
        else if (i.code === "unrecognized_keys") score += i.keys.length;
        else score += 1;
      } else if (i.path.length === 1 && (i.code === "invalid_value" || i.code === "invalid_key" || (i.code === "invalid_type" && getAt(value, i.path) === undefined))) score += 1;
    }
    scores.push(Math.floor(score));
    if (score < bestScore) {
      best = b;
      bestScore = score;
    }
  }
  if (bestScore >= 1000) return { tied: false };
  const floor = Math.floor(bestScore);
  return { branch: best, tied: floor >= 1 && scores.filter((s) => s === floor).length > 1 };
}
