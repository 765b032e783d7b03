// Cutover benchmark (not a test): on a rig host, under keep-alive and connection-close load, run
// N web releases and print per cutover: failed/total requests, release seconds minus the app's own
// time-to-healthy (measured under the same load), the tool's own step times, and SSH sessions the
// host accepted during the release (from its sshd log). Then as many releases without load, against
// the time-to-healthy without load. Goals (issue 14): at most 0.5 s beyond the app's time to
// healthy without load and 1 s under load, in at least 4 of 5 releases per condition.
// Usage: node --import tsx bench/cutover.ts [--host h1] [--cutovers 5] [--connections 16]
import * as fs from "node:fs";
import * as path from "node:path";
import { rigImage, startLoad, type LoadResult } from "../tests/rig/rig";
import { pct } from "./stats";
import { bootProxy, FAST, prepareHost, resetHost, webRelease, type ToolHost } from "../tests/host-tool/helpers";

interface Args {
  host: string;
  cutovers: number;
  connections: number;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { host: "h1", cutovers: 5, connections: 16 };
  for (let i = 0; i < argv.length; i += 2) {
    const [k, v] = [argv[i], argv[i + 1]];
    if (k === "--host" && v) args.host = v;
    else if (k === "--cutovers" && v) args.cutovers = Number(v);
    else if (k === "--connections" && v) args.connections = Number(v);
    else throw new Error(`unknown argument ${k}; usage: cutover.ts [--host h1] [--cutovers 5] [--connections 16]`);
  }
  return args;
}

const DOMAIN = "bench.test";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function must(h: ToolHost, command: string, stdin?: string): Promise<string> {
  const r = await h.sh(command, stdin, 300_000);
  if (r.code !== 0) throw new Error(`${command} failed (${r.code}): ${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** The app's own time from `docker run` to the first 2xx on /up, measured on the host (seconds). */
async function timeToHealthy(h: ToolHost, image: string): Promise<number> {
  const out = await must(
    h,
    `docker rm -f rh-bench-tth >/dev/null 2>&1; t0=$(date +%s%N); docker run -d --name rh-bench-tth --network railhead ${image} >/dev/null; ` +
      `ip=$(docker inspect -f '{{(index .NetworkSettings.Networks "railhead").IPAddress}}' rh-bench-tth); ` +
      `ok=0; for i in $(seq 1 1500); do [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 http://$ip:3000/up)" = 200 ] && { ok=1; break; }; sleep 0.02; done; ` +
      `t1=$(date +%s%N); docker rm -f rh-bench-tth >/dev/null; [ $ok = 1 ] || { echo "app never became healthy" >&2; exit 1; }; echo $(( (t1 - t0) / 1000000 ))`,
  );
  return Number(out.trim()) / 1000;
}

function sshdLog(host: string): string {
  return `/var/log/${process.env.RH_RIG_PREFIX ?? "rh"}-rig/${host}-sshd.log`;
}

function acceptedSessions(host: string): number {
  try {
    return fs.readFileSync(sshdLog(host), "utf8").split("\n").filter((l) => l.includes("Accepted publickey")).length;
  } catch {
    return -1;
  }
}

/** Seconds per step from the tool's log lines, which end in the cumulative "(1.23s)". */
function steps(stdout: string): string {
  let prev = 0;
  const parts: string[] = [];
  for (const line of stdout.split("\n")) {
    const m = /^\[railhead\] \S+ ([a-z-]+): .*\(([0-9.]+)s\)$/.exec(line);
    if (!m) continue;
    const at = Number(m[2]);
    parts.push(`${m[1]} ${(at - prev).toFixed(2)}`);
    prev = at;
  }
  return parts.join(", ");
}

function fmt(l: LoadResult): string {
  return `${l.failed}/${l.total}`;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const h = await prepareHost(args.host);
  await resetHost(h, ["bench"]);
  await bootProxy(h);
  await must(h, `${h.toolPath} proxy service add bench --app-port 3000 --domain ${DOMAIN}`);
  const first = await h.tool(webRelease("bench", "c0", rigImage("app:v1")), "SECRET_KEY_BASE=bench\n", 300_000);
  if (first.code !== 0) throw new Error(`first release failed: ${first.stdout}${first.stderr}`);

  const load = (durationMs: number) => {
    const common = { url: `${h.baseUrl}/`, host: DOMAIN, connections: args.connections, durationMs };
    return { ka: startLoad({ ...common, keepAlive: true }), close: startLoad({ ...common, keepAlive: false }) };
  };
  const tthSamples: number[] = [];
  for (let i = 0; i < 3; i++) tthSamples.push(await timeToHealthy(h, rigImage("app:v2")));
  const tth = pct(tthSamples, 50);
  const during = load(300_000);
  await sleep(1500);
  const tthLoadedSamples: number[] = [];
  for (let i = 0; i < 3; i++) tthLoadedSamples.push(await timeToHealthy(h, rigImage("app:v2")));
  await during.ka.stop();
  await during.close.stop();
  const tthLoaded = pct(tthLoadedSamples, 50);
  console.log(`app time-to-healthy (docker run -> first 200 on /up, from the host), median of 3: ${tth.toFixed(2)}s without load, ${tthLoaded.toFixed(2)}s under load`);
  console.log(`release options: ${FAST.join(" ")}; load: ${args.connections} keep-alive + ${args.connections} close connections to ${h.baseUrl} (Host: ${DOMAIN})`);
  const rows: Record<string, unknown>[] = [];
  let totalFailed = 0;
  let totalRequests = 0;
  const loaded: number[] = [];
  const release = async (n: string, image: string) => {
    const sshBefore = acceptedSessions(args.host);
    const t0 = Date.now();
    const r = await h.tool(webRelease("bench", n, image), "SECRET_KEY_BASE=bench\n", 300_000);
    const wall = (Date.now() - t0) / 1000;
    const sshAfter = acceptedSessions(args.host);
    if (r.code !== 0) throw new Error(`release ${n} failed: ${r.stdout}${r.stderr}`);
    const toolSeconds = Number(/released \S+ as \S+ in ([0-9.]+)s/.exec(r.stdout)?.[1] ?? NaN);
    const sessions = sshBefore >= 0 && sshAfter >= 0 ? sshAfter - sshBefore : NaN;
    return { wall, toolSeconds, sessions, steps: steps(r.stdout) };
  };
  for (let i = 1; i <= args.cutovers; i++) {
    const image = rigImage(i % 2 === 1 ? "app:v2" : "app:v1");
    const { ka, close } = load(300_000);
    await sleep(1500);
    const rel = await release(`c${i}`, image);
    await sleep(1500);
    const [kaR, closeR] = [await ka.stop(), await close.stop()];
    totalFailed += kaR.failed + closeR.failed;
    totalRequests += kaR.total + closeR.total;
    loaded.push(rel.wall - tthLoaded);
    rows.push({
      cutover: i,
      keepAlive: fmt(kaR),
      close: fmt(closeR),
      versionsSeen: { ...kaR.versions },
      errors: { ...kaR.errors, ...closeR.errors },
      releaseWallSeconds: rel.wall,
      releaseToolSeconds: rel.toolSeconds,
      minusTimeToHealthyUnderLoad: Number((rel.wall - tthLoaded).toFixed(2)),
      steps: rel.steps,
      sshSessions: rel.sessions,
    });
    console.log(
      `cutover ${i}: failed/total keep-alive ${fmt(kaR)}, close ${fmt(closeR)}; versions ${JSON.stringify(kaR.versions)}; ` +
        `release ${rel.wall.toFixed(2)}s wall (tool ${rel.toolSeconds.toFixed(2)}s), minus app time-to-healthy under load ${tthLoaded.toFixed(2)}s = ${(rel.wall - tthLoaded).toFixed(2)}s; ` +
        `ssh sessions on ${args.host}: ${Number.isNaN(rel.sessions) ? "n/a (no sshd log)" : rel.sessions}\n  steps (s): ${rel.steps}`,
    );
  }
  const unloaded: number[] = [];
  for (let i = 1; i <= args.cutovers; i++) {
    const rel = await release(`u${i}`, rigImage(i % 2 === 1 ? "app:v2" : "app:v1"));
    unloaded.push(rel.wall - tth);
    rows.push({ unloaded: i, releaseWallSeconds: rel.wall, releaseToolSeconds: rel.toolSeconds, minusTimeToHealthy: Number((rel.wall - tth).toFixed(2)), steps: rel.steps, sshSessions: rel.sessions });
    console.log(`without load ${i}: release ${rel.wall.toFixed(2)}s wall (tool ${rel.toolSeconds.toFixed(2)}s), minus app time-to-healthy ${tth.toFixed(2)}s = ${(rel.wall - tth).toFixed(2)}s\n  steps (s): ${rel.steps}`);
  }
  const within = (xs: number[], goal: number) => `${xs.filter((x) => x <= goal).length} of ${xs.length}`;
  console.log(
    `release seconds beyond the app's time to healthy: under load median ${pct(loaded, 50).toFixed(2)} (${loaded.map((x) => x.toFixed(2)).join(", ")}; ` +
      `goal at most 1 s: ${within(loaded, 1)}), without load median ${pct(unloaded, 50).toFixed(2)} (${unloaded.map((x) => x.toFixed(2)).join(", ")}; goal at most 0.5 s: ${within(unloaded, 0.5)})`,
  );
  console.log(`total: ${totalFailed} failed of ${totalRequests} requests over ${args.cutovers} cutovers`);
  const dir = path.join(__dirname, "results");
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `cutover-${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
  fs.writeFileSync(file, JSON.stringify({ args, timeToHealthy: tthSamples, timeToHealthyUnderLoad: tthLoadedSamples, rows, totalFailed, totalRequests }, null, 2));
  console.log(`results: ${path.relative(process.cwd(), file)}`);
  await resetHost(h, ["bench"]);
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
