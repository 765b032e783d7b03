// Problems found in a stack file: each names the key path as written (`railhead:hosts.web-2.hcloud.location`,
// `[n]` for list indices), what is wrong, and an example of right. Every problem carries an example.

export const NAMESPACE = "railhead";

export type Path = ReadonlyArray<string | number>;

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

export function keyPath(path: Path): string {
  let out = `${NAMESPACE}:`;
  path.forEach((seg, i) => {
    if (typeof seg === "number") out += `[${seg}]`;
    else out += i === 0 ? seg : `.${seg}`;
  });
  return out;
}

/** Collects problems; an example is required, so no problem goes out without one. */
export class Problems {
  readonly list: ConfigProblem[] = [];
  private readonly seen = new Set<string>();

  add(path: Path, message: string, example: string): void {
    const p = keyPath(path);
    const key = `${p}|${message}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.list.push({ path: p, message, example });
  }

  /** Number of problems whose path is `path` or lies under it. */
  countUnder(path: Path): number {
    const p = keyPath(path);
    return this.list.filter((x) => x.path === p || x.path.startsWith(`${p}.`) || x.path.startsWith(`${p}[`)).length;
  }

  get size(): number {
    return this.list.length;
  }
}

export function secretCommand(name: string): string {
  return `pulumi config set --secret --path '${NAMESPACE}:secrets.${name}' <value>`;
}
