// TEST EQUIPMENT (e2e apply harness): the docker provider's `getRegistryImage` invoke against the
// rig's registry: the tag's manifest digest from the registry's v2 API (what
// terraform-provider-docker's docker_registry_image data source reads). Rig registries only; the
// rig's registry speaks plain HTTP, where a real registry would be HTTPS. And the docker.Image
// resource: a build with this machine's engine (see buildImage).
import http from "node:http";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { isAbsolute, join, relative, resolve } from "node:path";
import { spawnCollect } from "./ssh";
import { loadRigInfo, RIG_JSON } from "./rig";

/** The rig's registry: the default rig's, or the one .rig/rig.json names (a second rig, RH_RIG_PREFIX). */
const RIG_REGISTRY = {
  test(registry: string): boolean {
    if (/^(127\.0\.0\.1|10\.77\.0\.1):5000$/.test(registry)) return true;
    const file = process.env.E2E_RIG_JSON ?? RIG_JSON;
    if (!existsSync(file)) return false;
    const r = loadRigInfo(file).registry;
    return registry === r.push || registry === r.pull;
  },
};

const ACCEPT = [
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.docker.distribution.manifest.v2+json",
  "application/vnd.oci.image.manifest.v1+json",
].join(", ");

export async function getRegistryImage(inputs: Record<string, unknown>): Promise<Record<string, unknown>> {
  const name = String(inputs.name ?? "");
  const m = /^([^/]+)\/(.+?)(?::([\w][\w.-]*))?$/.exec(name);
  if (!m || !RIG_REGISTRY.test(m[1])) throw new Error(`harness: getRegistryImage ${name}: only the rig's registry (10.77.0.1:5000) is reachable from the harness`);
  const [, registry, repo, tag = "latest"] = m;
  const [host, port] = registry.split(":");
  const digest = await new Promise<string>((resolve, reject) => {
    const req = http.request({ host, port: Number(port), method: "HEAD", path: `/v2/${repo}/manifests/${tag}`, headers: { Accept: ACCEPT } }, (res) => {
      res.resume();
      const d = res.headers["docker-content-digest"];
      if (res.statusCode !== 200 || typeof d !== "string") reject(new Error(`harness: getRegistryImage ${name}: registry answered ${res.statusCode} without a digest`));
      else resolve(d);
    });
    req.on("error", reject);
    req.setTimeout(10_000, () => req.destroy(new Error(`harness: getRegistryImage ${name}: timeout`)));
    req.end();
  });
  return { id: digest, name, sha256Digest: digest, insecureSkipVerify: inputs.insecureSkipVerify ?? false, keepRemotely: inputs.keepRemotely };
}

// ---------------------------------------------------------------------------------------------
// docker.Image (@pulumi/docker 4.x/5.x native `Image`): build with THIS machine's Docker engine.

interface ImageBuild {
  context?: string;
  dockerfile?: string;
  args?: Record<string, string>;
  target?: string;
  platform?: string;
  contextDigest?: string;
}

export interface ImageInputs {
  imageName?: string;
  build?: ImageBuild;
  skipPush?: boolean;
  buildOnPreview?: boolean;
  registry?: { server?: string; username?: string; password?: string };
}

/** `.dockerignore` lines as simple patterns: `dir/*`, `*.log`, `name` (enough for the demo app). */
function ignoreMatcher(context: string): (rel: string) => boolean {
  const file = join(context, ".dockerignore");
  const pats = existsSync(file)
    ? readFileSync(file, "utf8")
        .split("\n")
        .map((l) => l.trim())
        .filter((l) => l && !l.startsWith("#") && !l.startsWith("!"))
    : [];
  const res = pats.map((p) => new RegExp(`^${p.replace(/^\/+/, "").replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*\*/g, "%%ANY%%").replace(/\*/g, "[^/]*").replace(/%%ANY%%/g, ".*").replace(/\?/g, "[^/]")}(/.*)?$`));
  return (rel) => res.some((re) => re.test(rel));
}

/**
 * The provider's Check adds `build.contextDigest`, a hash of the build context's files (after
 * .dockerignore) and the Dockerfile, so an edited source file is a diff (an update: a rebuild) and
 * an unchanged context is none. The harness adds the same kind of hash before it plans the step.
 */
export function withContextDigest(inputs: Record<string, unknown>, cwd: string): Record<string, unknown> {
  const b = inputs.build as ImageBuild | undefined;
  if (!b) return inputs;
  const context = resolve(cwd, b.context ?? ".");
  if (!existsSync(context)) return inputs;
  const ignored = ignoreMatcher(context);
  const h = createHash("sha256");
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const abs = join(dir, name);
      const rel = relative(context, abs);
      if (ignored(rel)) continue;
      const st = statSync(abs);
      if (st.isDirectory()) walk(abs);
      else {
        h.update(`${rel}\0${st.mode & 0o111 ? "x" : "-"}\0`);
        h.update(readFileSync(abs));
      }
    }
  };
  walk(context);
  const dockerfile = resolve(cwd, b.dockerfile ?? join(b.context ?? ".", "Dockerfile"));
  if (existsSync(dockerfile)) h.update(readFileSync(dockerfile));
  return { ...inputs, build: { ...b, contextDigest: h.digest("hex") } };
}

export interface BuildResult {
  outputs: Record<string, unknown>;
  /** The commands run, for the action record. */
  commands: string[];
  ok: boolean;
  log: string;
}

/**
 * Builds `imageName` with the root engine (`docker build`, legacy builder or BuildKit as the engine
 * has it) and pushes it unless `skipPush`. `--network host`: this machine's dockerd may run with
 * --iptables=false (no NAT for build containers), as the rig's own image builds assume.
 * Pushed: repoDigest `repo@sha256:<manifest digest>` (rig registries only); local: the image id.
 */
export async function buildImage(inputs: ImageInputs, cwd: string, onData: (chunk: string) => void): Promise<BuildResult> {
  const imageName = String(inputs.imageName ?? "");
  const b = inputs.build ?? {};
  if (!imageName) throw new Error("harness: docker.Image needs imageName");
  const context = resolve(cwd, b.context ?? ".");
  const dockerfile = b.dockerfile ? (isAbsolute(b.dockerfile) ? b.dockerfile : resolve(cwd, b.dockerfile)) : join(context, "Dockerfile");
  const repo = imageName.replace(/:[\w][\w.-]*$/, "");
  const registry = /^([^/]+\.[^/]*|[^/]+:\d+|localhost)\//.exec(repo)?.[1];
  if (!inputs.skipPush && (!registry || !RIG_REGISTRY.test(registry))) {
    throw new Error(`harness: docker.Image ${imageName}: pushing is only supported to the rig's registry (127.0.0.1:5000 or 10.77.0.1:5000), not ${registry ?? "Docker Hub"}`);
  }
  const dir = mkdtempSync(join(tmpdir(), "railhead-e2e-build-"));
  const iid = join(dir, "iid");
  const argv = ["build", "--network", "host", "--iidfile", iid, "-f", dockerfile, "-t", imageName];
  for (const [k, v] of Object.entries(b.args ?? {})) argv.push("--build-arg", `${k}=${v}`);
  if (b.target) argv.push("--target", b.target);
  if (b.platform) argv.push("--platform", b.platform);
  argv.push(context);
  const commands = [`docker ${argv.join(" ")}`];
  let log = "";
  const collect = (c: string) => {
    log += c;
    onData(c);
  };
  try {
    const built = await spawnCollect("docker", argv, undefined, collect);
    if (built.code !== 0) return { outputs: {}, commands, ok: false, log };
    const id = readFileSync(iid, "utf8").trim();
    let repoDigest = id;
    if (!inputs.skipPush) {
      commands.push(`docker push ${imageName}`);
      const pushed = await spawnCollect("docker", ["push", imageName], undefined, collect);
      const digest = /digest: (sha256:[a-f0-9]{64})/.exec(pushed.stdout)?.[1];
      if (pushed.code !== 0 || !digest) return { outputs: {}, commands, ok: false, log };
      repoDigest = `${repo}@${digest}`;
    }
    return {
      ok: true,
      commands,
      log,
      outputs: {
        ...inputs,
        imageName,
        baseImageName: imageName,
        repoDigest,
        context: b.context,
        dockerfile: b.dockerfile,
        platform: b.platform,
        registryServer: registry ?? "",
      },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
