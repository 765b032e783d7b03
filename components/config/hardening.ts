// Checks on values that reach a host (issue 9): docker run options that would change a container's
// exposure or isolation, cron schedules, reserved names, Railhead's own labels.

/** docker run options Railhead sets itself or that change exposure/isolation, with the key to use instead. */
export const REFUSED_OPTIONS: Record<string, string> = {
  publish: "ports are published by Railhead: accessories.<name>.port (loopback and the private IP) or railhead:proxy for the app",
  p: "ports are published by Railhead: accessories.<name>.port or railhead:proxy",
  "publish-all": "ports are published by Railhead: accessories.<name>.port or railhead:proxy",
  P: "ports are published by Railhead",
  network: "containers join Railhead's network; the hosts' private network is railhead:network",
  net: "containers join Railhead's network; the hosts' private network is railhead:network",
  "network-alias": "set by railhead-host itself",
  privileged: "not supported: a privileged container owns the host",
  pid: "not supported: sharing the host's PID namespace breaks isolation",
  ipc: "not supported: sharing IPC namespaces breaks isolation",
  uts: "not supported: sharing the host's UTS namespace breaks isolation",
  userns: "not supported: changes user namespace isolation",
  cgroupns: "not supported: changes cgroup isolation",
  "cap-add": "not supported: extra capabilities break isolation",
  device: "not supported: host devices break isolation",
  "device-cgroup-rule": "not supported: host devices break isolation",
  "security-opt": "not supported: changes the seccomp/AppArmor profile",
  "volumes-from": "not supported: mounts another container's volumes",
  mount: "volumes are named: accessories.<name>.volumes, or railhead:litestream.volume for SQLite",
  name: "set by railhead-host itself (<service>-<role>-<version>)",
  restart: "set by railhead-host itself",
  "env-file": "env comes from env.clear / env.secret",
  env: "env comes from env.clear / env.secret",
  e: "env comes from env.clear / env.secret",
  label: "set by railhead-host itself (railhead.* labels)",
  l: "set by railhead-host itself (railhead.* labels)",
  detach: "set by railhead-host itself",
  d: "set by railhead-host itself",
  rm: "set by railhead-host itself",
  "log-driver": "set by railhead-host itself (json-file with a size cap)",
};

/** Why a `volume`/`v` option is refused: only named volumes, never host paths. */
export function volumeOptionProblem(value: string): string | undefined {
  const src = value.split(":")[0];
  if (/^[/.~]/.test(src) || !value.includes(":")) return `"${value}" mounts a host path; only named volumes are supported (accessories.<name>.volumes, railhead:litestream.volume)`;
  return undefined;
}

/** Role names that clash with Railhead's own containers and labels (components/host-tool: railhead-proxy, railhead-tls, the replicator ...). */
export const RESERVED_ROLE = /^(litestream|proxy|tls|migrate|drill|backup|accessory|exec|health|railhead.*)$/;

const CRON_FIELDS: ReadonlyArray<readonly [number, number, string]> = [
  [0, 59, "minute"],
  [0, 23, "hour"],
  [1, 31, "day of month"],
  [1, 12, "month"],
  [0, 7, "day of week"],
];

/** undefined when `s` is hourly/daily/weekly or a valid 5-field cron expression; else what is wrong. */
export function cronProblem(s: string): string | undefined {
  if (/^(hourly|daily|weekly)$/.test(s)) return undefined;
  if (/%/.test(s)) return `"${s}" holds "%", which crontab turns into a line break`;
  const fields = s.trim().split(/\s+/);
  if (fields.length !== 5) return `"${s}" is neither hourly/daily/weekly nor a 5-field cron expression (minute hour day month weekday)`;
  for (let i = 0; i < 5; i++) {
    const [lo, hi, what] = CRON_FIELDS[i];
    for (const part of fields[i].split(",")) {
      const m = /^(\*|(\d+)(-(\d+))?)(\/(\d+))?$/.exec(part);
      if (!m) return `"${fields[i]}" is not a cron ${what} field`;
      const nums = [m[2], m[4], m[6]].filter((x) => x !== undefined).map(Number);
      const [a, b] = [m[2], m[4]].filter((x) => x !== undefined).map(Number);
      if ((a !== undefined && (a < lo || a > hi)) || (b !== undefined && (b < lo || b > hi || b < a)) || (m[6] !== undefined && Number(m[6]) < 1) || nums.some(Number.isNaN))
        return `"${fields[i]}" is out of range for the ${what} (${lo}-${hi})`;
    }
  }
  return undefined;
}
