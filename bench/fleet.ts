// Fleet benchmark (not a test): deploys a new version of one web role to 1, 2 and 4 rig hosts
// with boot.limit 1 and 2, as the program does (hosts in boot groups of `limit`; the releases of a
// group run at the same time, each in its own SSH session; a group starts when the previous one
// finished), and prints the wall time of every rollout, of every group and of each host's release.
// Goal: a group takes no longer than its slowest host plus 0.2 s.
// Usage: node --import tsx bench/fleet.ts [--hosts 1,2,4] [--limits 1,2] [--rounds 1]
import * as fs from "node:fs";
import * as path from "node:path";
import { loadRig, rigImage } from "../tests/rig/rig";
import { bootProxy, prepareHost, resetHost, webRelease, type ToolHost } from "../tests/host-tool/helpers";

interface Args {
  hosts: number[];
  limits: number[];
  rounds: number;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { hosts: [1, 2, 4], limits: [1, 2], rounds: 1 };
  const list = (v: string) => v.split(",").map((x) => Number(x));
  for (let i = 0; i < argv.length; i += 2) {
    const [k, v] = [argv[i], argv[i + 1]];
    if (k === "--hosts" && v) args.hosts = list(v);
    else if (k === "--limits" && v) args.limits = list(v);
    else if (k === "--rounds" && v) args.rounds = Number(v);
    else throw new Error(`unknown argument ${k}; usage: fleet.ts [--hosts 1,2,4] [--limits 1,2] [--rounds 1]`);
  }
  if ([...args.hosts, ...args.limits, args.rounds].some((n) => !Number.isInteger(n) || n < 1)) throw new Error("--hosts, --limits and --rounds take whole numbers >= 1");
  return args;
}

const SERVICE = "fleet";
const DOMAIN = "fleet.test";

interface HostRun {
  host: string;
  seconds: number;
  toolSeconds: number;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const rig = loadRig();
  const need = Math.max(...args.hosts);
  const names = rig.hosts.map((h) => h.name).slice(0, need);
  if (names.length < need) throw new Error(`the rig has ${rig.hosts.length} hosts, the bench needs ${need}: bash tests/rig/rig.sh up ${need}`);
  const hosts: ToolHost[] = [];
  for (const n of names) {
    const h = await prepareHost(n);
    await resetHost(h, [SERVICE]);
    await bootProxy(h);
    const add = await h.tool(["proxy", "service", "add", SERVICE, "--app-port", "3000", "--domain", DOMAIN]);
    if (add.code !== 0) throw new Error(`service add on ${n} failed: ${add.stdout}${add.stderr}`);
    hosts.push(h);
  }
  let counter = 0;
  const releaseOn = async (h: ToolHost): Promise<HostRun> => {
    counter++;
    const version = `f${counter}`;
    const image = rigImage(counter % 2 === 1 ? "app:v2" : "app:v1");
    const t0 = Date.now();
    const r = await h.tool(webRelease(SERVICE, version, image), "SECRET_KEY_BASE=fleet\n", 300_000);
    const seconds = (Date.now() - t0) / 1000;
    if (r.code !== 0) throw new Error(`release ${version} on ${h.host.name} failed: ${r.stdout}${r.stderr}`);
    const toolSeconds = Number(/released \S+ as \S+ in ([0-9.]+)s/.exec(r.stdout)?.[1] ?? NaN);
    return { host: h.host.name, seconds, toolSeconds };
  };
  // Every host gets one release first, so each rollout below replaces a live release.
  await Promise.all(hosts.map((h) => releaseOn(h)));
  const rows: Record<string, unknown>[] = [];
  console.log(`fleet: a new version of one web role (${webRelease(SERVICE, "V", "IMG").slice(9).join(" ")}) per rollout`);
  console.log("hosts limit round | rollout s | groups: wall s (slowest host s, group minus slowest s) | hosts s");
  let worstExcess = 0;
  for (const n of args.hosts) {
    for (const limit of args.limits) {
      for (let round = 1; round <= args.rounds; round++) {
        const targets = hosts.slice(0, n);
        const t0 = Date.now();
        const groups: { wall: number; slowest: number; runs: HostRun[] }[] = [];
        for (let g = 0; g < targets.length; g += limit) {
          const g0 = Date.now();
          const runs = await Promise.all(targets.slice(g, g + limit).map((h) => releaseOn(h)));
          const wall = (Date.now() - g0) / 1000;
          groups.push({ wall, slowest: Math.max(...runs.map((r) => r.seconds)), runs });
        }
        const total = (Date.now() - t0) / 1000;
        for (const g of groups) worstExcess = Math.max(worstExcess, g.wall - g.slowest);
        rows.push({ hosts: n, limit, round, rolloutSeconds: total, groups });
        console.log(
          `${String(n).padStart(5)} ${String(limit).padStart(5)} ${String(round).padStart(5)} | ${total.toFixed(2).padStart(9)} | ` +
            groups.map((g) => `${g.wall.toFixed(2)} (${g.slowest.toFixed(2)}, +${(g.wall - g.slowest).toFixed(2)})`).join("; ") +
            " | " +
            groups.flatMap((g) => g.runs.map((r) => `${r.host} ${r.seconds.toFixed(2)} (tool ${r.toolSeconds.toFixed(2)})`)).join(", "),
        );
      }
    }
  }
  console.log(`largest group wall minus its slowest host: ${worstExcess.toFixed(2)} s (goal at most 0.2 s)`);
  const dir = path.join(__dirname, "results");
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `fleet-${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
  fs.writeFileSync(file, JSON.stringify({ args, rows }, null, 2));
  console.log(`results: ${path.relative(process.cwd(), file)}`);
  for (const h of hosts) await resetHost(h, [SERVICE]);
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
