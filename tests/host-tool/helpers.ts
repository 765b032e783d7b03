// Shared helpers for the host-tool tests: upload the bundled tool to a rig host, run it there,
// and reset the host between suites. Test equipment.
import { strict as assert } from "node:assert";
import { bundleHostTool } from "../../components/host-tool/bundle";
import { httpGet, loadRig, rigHost, rigImage, sshRun, startLoad, type LoadResult, type RigHost, type RunResult } from "../rig/rig";

/** Quotes one word for a POSIX shell. */
export function shq(word: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

export interface ToolHost {
  host: RigHost;
  /** Absolute path of the uploaded tool on the host. */
  toolPath: string;
  /** Runs the tool with these arguments (and stdin); never rejects on a non-zero exit. */
  tool(args: string[], stdin?: string, timeoutMs?: number): Promise<RunResult>;
  /** Runs a shell command on the host. */
  sh(command: string, stdin?: string, timeoutMs?: number): Promise<RunResult>;
  /** http://<public ip> */
  baseUrl: string;
}

/** Uploads the bundle (as a host receives it) and returns helpers bound to that host. */
export async function prepareHost(name: string): Promise<ToolHost> {
  const rig = loadRig();
  const host = rigHost(name, rig);
  const bundle = bundleHostTool();
  const toolPath = `${host.home}/.railhead/bin/railhead-host-${bundle.hash}`;
  // Suites on the same host upload in parallel: write a temporary file and rename it into place,
  // so a run never executes a file another upload is still writing (it read as empty, exit 0).
  const tmp = `${toolPath}.${process.pid}.tmp`;
  const up = await sshRun(host, `mkdir -p ${shq(`${host.home}/.railhead/bin`)} && cat > ${shq(tmp)} && chmod 0755 ${shq(tmp)} && mv -f ${shq(tmp)} ${shq(toolPath)}`, {
    stdin: bundle.text,
  });
  if (up.code !== 0) throw new Error(`upload to ${name} failed: ${up.stderr}`);
  const sh = (command: string, stdin?: string, timeoutMs?: number) => sshRun(host, command, { stdin, timeoutMs: timeoutMs ?? 120_000 });
  return {
    host,
    toolPath,
    baseUrl: `http://${host.publicIp}`,
    sh,
    tool: (args, stdin, timeoutMs) => sh([toolPath, "--host-label", name, ...args].map(shq).join(" "), stdin, timeoutMs),
  };
}

/**
 * Removes what earlier runs of these tests left for SERVICES (containers, proxy backends, state),
 * and nothing else: other suites may share the rig host and its proxy at the same time.
 */
export async function resetHost(h: ToolHost, services: string[]): Promise<void> {
  const script = services
    .map((s) =>
      `docker ps -aq --filter label=railhead.service=${shq(s)} | xargs -r docker rm -f >/dev/null; ` +
      `[ -f ~/.railhead/proxy/services/${shq(s)}.conf ] && ${shq(h.toolPath)} proxy service remove ${shq(s)} >/dev/null; ` +
      `rm -rf ~/.railhead/apps/${shq(s)} ~/.railhead/locks/release-${shq(s)}-*`,
    )
    .join("; ");
  const r = await h.sh(`${script}; true`);
  if (r.code !== 0) throw new Error(`reset failed: ${r.stderr}`);
}

/** Catch-all services other suites registered on the host (not in MINE). */
export async function foreignCatchAll(h: ToolHost, mine: string[]): Promise<string | undefined> {
  const r = await h.sh("cd ~/.railhead/proxy/services 2>/dev/null && grep -l '^DOMAINS=$' *.conf || true");
  return r.stdout.split("\n").map((f) => f.replace(/\.conf$/, "").trim()).find((s) => s && !mine.includes(s));
}

/** Network, proxy boot: the common start of a suite. */
export async function bootProxy(h: ToolHost, extra: string[] = []): Promise<void> {
  for (const args of [["network", "ensure", "railhead"], ["proxy", "boot", "--image", rigImage("haproxy:2.6"), ...extra]]) {
    const r = await h.tool(args);
    if (r.code !== 0) throw new Error(`${args.join(" ")} failed (${r.code}): ${r.stdout}${r.stderr}`);
  }
}

/** Fast release options for tests. */
export const FAST = ["--health-interval", "0.2", "--health-timeout", "2", "--deploy-timeout", "20", "--drain-timeout", "5", "--stop-timeout", "3"];

/** Release arguments for a web role of `service`. */
export function webRelease(service: string, version: string, image: string, extra: string[] = []): string[] {
  return ["release", "--service", service, "--role", "web", "--version", version, "--image", image, "--web", "--app-port", "3000", ...FAST, ...extra];
}

export function describeResult(r: RunResult): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

/** GET / through the host's proxy for DOMAIN; the answering release's version is its X-App-Version. */
export async function getDomain(h: ToolHost, domain: string): Promise<{ status: number; body: string; version: string }> {
  const r = await httpGet(`${h.baseUrl}/`, { host: domain, timeoutMs: 5000 });
  return { status: r.status, body: r.body, version: String(r.headers["x-app-version"] ?? "") };
}

/** Awaits a tool run, asserts it exited 0 (showing its output otherwise) and returns its stdout. */
export async function mustSucceed(r: Promise<RunResult>): Promise<string> {
  const res = await r;
  assert.equal(res.code, 0, describeResult(res));
  return res.stdout;
}

/**
 * Runs `fn` under 8 keep-alive and 8 connection-close clients on DOMAIN through the host's proxy,
 * with SETTLE_MS of load before and after it; returns its value and both load results.
 */
export async function underLoad<T>(h: ToolHost, domain: string, fn: () => Promise<T>, settleMs = 700): Promise<{ value: T; ka: LoadResult; close: LoadResult }> {
  const common = { url: `${h.baseUrl}/`, host: domain, connections: 8, durationMs: 120_000 };
  const ka = startLoad({ ...common, keepAlive: true });
  const close = startLoad({ ...common, keepAlive: false });
  await new Promise((r) => setTimeout(r, settleMs));
  try {
    const value = await fn();
    await new Promise((r) => setTimeout(r, settleMs));
    return { value, ka: await ka.stop(), close: await close.stop() };
  } finally {
    await ka.stop();
    await close.stop();
  }
}

/** Asserts a load saw enough requests and none failed (showing the errors and when). */
export function assertNoFailures(label: string, l: LoadResult): void {
  assert.ok(l.total > 50, `${label}: only ${l.total} requests`);
  assert.equal(l.failed, 0, `${label}: ${l.failed}/${l.total} failed: ${JSON.stringify(l.errors)} at ${l.failTimes.slice(0, 10).join(",")} ms`);
}
