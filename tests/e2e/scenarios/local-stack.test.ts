// e2e: the embedded `local` stack (Pulumi.local.yaml) applied through the apply harness (test
// equipment; no `pulumi up` runs here) to THIS machine's Docker engine: the demo app built with
// docker.Image (no push; releases run the image id), a Postgres accessory, Litestream to a file
// replica, HAProxy on 127.0.0.1:8080, migrate, web and job. Then an idempotent up, and a destroy
// that removes the containers and keeps the data volumes (as the product does); the test removes
// those volumes itself at the end so later runs and CI stages start clean.
//
// It touches no rig host. It uses the root engine and port 8080; run.sh runs scenario files one at
// a time under the rig tests lock, so it never overlaps another e2e scenario (or another checkout's
// e2e run). Images come from the rig's registry (no Docker Hub here), see OVERRIDES.
import { test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { scenario } from "../summary";
import { harness, httpGet, mustSucceed, rig, up } from "../support";
import { REPO, type StackSpec, type UpResult } from "../harness";

const STACK = "local";
const PORT = 8080;
const SERVICE = "demo";
/** The host tool's proxy container (shared by the services on a host). */
const PROXY_CONTAINER = "railhead-proxy";
// Where the host tool registers each service's backend on this machine (RAILHEAD_STATE_DIR default).
const SERVICES_DIR = join(process.env.RAILHEAD_STATE_DIR ?? join(homedir(), ".railhead"), "proxy", "services");
/** Litestream's file replica for this stack: <replica.path>/<service>/<stack> (litestream-config.ts). */
const REPLICA_ROOT = "/var/lib/railhead-replicas";
const REPLICA_DIRS = [REPLICA_ROOT, `${REPLICA_ROOT}/${SERVICE}`, `${REPLICA_ROOT}/${SERVICE}/${STACK}`];

// Canary secrets: the stack references both; neither may appear in the harness's log or outputs.
const SECRETS = {
  RAILS_MASTER_KEY: `canary-master-${randomBytes(8).toString("hex")}`,
  POSTGRES_PASSWORD: `canary-pg-${randomBytes(8).toString("hex")}`,
};

function sh(cmd: string, args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 120_000 });
  return { code: r.status ?? -1, out: (r.stdout ?? "").trim(), err: (r.stderr ?? "").trim() };
}
const dockerList = (args: string[]) => sh("docker", args).out.split("\n").filter(Boolean).sort();
const containerNames = () => dockerList(["ps", "-a", "--format", "{{.Names}}"]);
const volumeNames = () => dockerList(["volume", "ls", "-q"]);
const networkNames = () => dockerList(["network", "ls", "--format", "{{.Name}}"]);

/** A rig image by its rig.json key, at the address the root engine pulls from (127.0.0.1:5000). */
function rigImage(key: string): string {
  const r = rig();
  const ref = r.images[key];
  if (!ref) throw new Error(`.rig/rig.json has no image ${key} (have ${Object.keys(r.images).join(", ")})`);
  return ref.replace(r.registry.pull, r.registry.push);
}

type Obj = Record<string, unknown>;

/** The stack file's config, with the test-only overrides below laid over it (nested keys only). */
function spec(): StackSpec {
  const doc = parseYaml(readFileSync(join(REPO, "Pulumi.local.yaml"), "utf8")) as { config: Obj };
  const c = structuredClone(doc.config);
  const builder = c["railhead:builder"] as Obj;
  const accessories = c["railhead:accessories"] as { db: Obj };
  const litestream = c["railhead:litestream"] as Obj;
  const proxy = c["railhead:proxy"] as Obj;
  // OVERRIDES (test-only; everything else is the stack file as shipped):
  // - No Docker Hub here: demo/Dockerfile takes RUBY_IMAGE (default ruby:3.3-slim); build it from
  //   the rig's Debian base image instead, as tests/day2/demo.test.ts does (Ruby from Debian).
  builder.args = { ...((builder.args as Obj | undefined) ?? {}), RUBY_IMAGE: rigImage("base:bookworm") };
  // - postgres:16.4 is on Docker Hub: the rig's Postgres image (Debian's postgresql 15, laid out
  //   like the official image: POSTGRES_PASSWORD, /var/lib/postgresql/data).
  accessories.db.image = rigImage("postgres:15");
  // - litestream/litestream:0.3.13 is on Docker Hub: the rig's image of the same release.
  litestream.image = rigImage("litestream:0.3.13");
  // - haproxy:2.6-bookworm is on Docker Hub: the rig's HAProxy 2.6 image.
  proxy.image = rigImage("haproxy:2.6");
  return { stack: STACK, file: join(REPO, "Pulumi.local.yaml"), config: { accessories, litestream, proxy, builder }, secrets: SECRETS, useRig: false };
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port });
    const done = (v: boolean) => {
      s.destroy();
      resolve(v);
    };
    s.setTimeout(2000, () => done(false));
    s.on("connect", () => done(true));
    s.on("error", () => done(false));
  });
}

async function get(path: string): Promise<{ status: number; body: string }> {
  return httpGet("127.0.0.1", path, { port: PORT, timeoutMs: 10_000 });
}

function assertNoSecrets(r: UpResult, what: string): void {
  const text = `${r.log}\n${r.error ?? ""}\n${JSON.stringify(r.outputs)}\n${JSON.stringify(r.actions)}\n${JSON.stringify(r.steps)}\n${r.notes.join("\n")}`;
  for (const [name, value] of Object.entries(SECRETS)) assert.ok(!text.includes(value), `${what}: secret ${name} appears in the harness's log/outputs`);
  // Inputs may carry them (the real engine keeps those encrypted in state), but only inputs the
  // program marked secret.
  for (const reg of r.registrations) {
    for (const [key, v] of Object.entries(reg.inputs)) {
      const json = JSON.stringify(v) ?? "";
      const carries = Object.entries(SECRETS).filter(([, value]) => json.includes(value));
      const marked = reg.secretInputs.some((p) => p === key || p.startsWith(`${key}.`) || p.startsWith(`${key}[`));
      assert.ok(carries.length === 0 || marked, `${what}: ${reg.name} input ${key} carries ${carries.map(([n]) => n).join(", ")} but is not a secret`);
    }
  }
}

/** The released image id, from the harness state (docker.Image repoDigest of a local build). */
function builtImage(): { id: string; imageName: string } {
  const img = harness.state(STACK).resources.find((r) => r.type === "docker:index/image:Image");
  assert.ok(img, "a docker.Image in state");
  return { id: String(img.outputs.repoDigest), imageName: String(img.outputs.imageName) };
}

/** Removes what this stack keeps on purpose (data volumes, the replica, its networks, the image tag). */
function cleanup(made: { volumes: string[]; networks: string[]; replicaDirsBefore: boolean[] }, imageName?: string): void {
  for (const v of made.volumes) sh("docker", ["volume", "rm", "-f", v]);
  for (const n of made.networks) sh("docker", ["network", "rm", n]);
  // The replica directories this run created (deepest first); an existing one (a developer's own
  // `npm run up:local` replica) is left alone.
  for (let i = REPLICA_DIRS.length - 1; i >= 0; i--) if (!made.replicaDirsBefore[i]) rmSync(REPLICA_DIRS[i], { recursive: true, force: true });
  if (imageName) sh("docker", ["image", "rm", imageName]);
}

test("local stack (Pulumi.local.yaml) on this machine's engine: up serves, idempotent, destroy cleans up", { concurrency: false }, async (t) => {
  // Start clean: a previous run that died before its cleanup left state; destroy it first.
  if (existsSync(harness.stateFile(STACK))) {
    const d = await harness.destroy(spec());
    mustSucceed(d);
    harness.forget(STACK);
  }
  if (await portOpen(PORT)) throw new Error(`127.0.0.1:${PORT} is in use before the local stack is up (an \`npm run up:local\` deployment or another run?); the scenario needs it free`);
  const before = { containers: containerNames(), volumes: volumeNames(), networks: networkNames() };
  const replicaDirsBefore = REPLICA_DIRS.map((d) => existsSync(d));
  let made = { containers: [] as string[], volumes: [] as string[], networks: [] as string[], replicaDirsBefore };
  let imageName: string | undefined;

  try {
    await t.test("up builds the demo app and serves it on :8080 at the image-id version", async () => {
      await scenario("local stack: up serves /up and /version", async () => {
        const r = await up(spec());
        made = {
          containers: containerNames().filter((x) => !before.containers.includes(x)),
          volumes: volumeNames().filter((x) => !before.volumes.includes(x)),
          networks: networkNames().filter((x) => !before.networks.includes(x)),
          replicaDirsBefore,
        };
        assertNoSecrets(r, "up");
        mustSucceed(r);
        const img = builtImage();
        imageName = img.imageName;
        assert.match(img.id, /^sha256:[a-f0-9]{64}$/, "a local build's repoDigest is the image id");
        assert.equal(sh("docker", ["image", "inspect", "-f", "{{.Id}}", img.imageName]).out, img.id, "the engine's image id for the tag");
        const version = img.id.slice("sha256:".length, "sha256:".length + 12);
        const upRes = await get("/up");
        assert.equal(upRes.status, 200, `GET /up -> ${upRes.status} ${upRes.body.slice(0, 200)}`);
        const v = await get("/version");
        assert.equal(v.status, 200, `GET /version -> ${v.status} ${v.body.slice(0, 200)}`);
        assert.equal(v.body.trim(), version, "served version = the first 12 hex digits of the built image id");
        for (const role of ["web", "job"]) assert.ok(made.containers.includes(`${SERVICE}-${role}-${version}`), `${role} release container (made: ${made.containers.join(", ")})`);
        const running = dockerList(["ps", "--format", "{{.Names}}"]);
        assert.ok(made.containers.every((x) => running.includes(x) || /migrate/.test(x)), `every container the stack made runs (made: ${made.containers.join(", ")}; running: ${running.join(", ")})`);
        process.stdout.write(`# local stack made containers [${made.containers.join(", ")}], volumes [${made.volumes.join(", ")}], networks [${made.networks.join(", ")}]\n`);
      });
    });

    await t.test("a second up with no change runs nothing", async () => {
      await scenario("local stack: idempotent up (zero commands)", async () => {
        const r = await up(spec());
        assertNoSecrets(r, "second up");
        mustSucceed(r);
        const changed = r.steps.filter((x) => x.op !== "same").map((x) => `${x.op} ${x.name} [${(x.changed ?? []).join(",")}]`);
        assert.equal(r.executed, 0, `ran: ${changed.join("; ")}`);
        assert.equal((await get("/up")).status, 200);
      });
    });

    await t.test("destroy removes the stack's containers and keeps the data volumes; the shared proxy no longer routes it", async () => {
      await scenario("local stack: destroy removes containers, keeps volumes", async () => {
        const r = await harness.destroy(spec());
        assertNoSecrets(r, "destroy");
        mustSucceed(r);
        // The host's proxy (railhead-proxy) is shared by every service on a host: a destroy removes
        // this service's backend (`proxy service remove demo`), then the proxy itself when no other
        // service on the host still routes through it (`proxy remove-if-unused`).
        const others = existsSync(SERVICES_DIR) ? readdirSync(SERVICES_DIR).filter((f) => f.endsWith(".conf")) : [];
        const left = containerNames().filter((x) => made.containers.includes(x) && (x !== PROXY_CONTAINER || others.length > 0));
        assert.deepEqual(left, [], `no container the stack made is left (other services on this host's proxy: ${others.join(", ") || "none"})`);
        if (await portOpen(PORT)) {
          const u = await get("/up").catch((e: unknown) => ({ status: 0, body: String(e) }));
          assert.notEqual(u.status, 200, `the proxy still serves the destroyed app: GET /up -> ${u.status} ${u.body.slice(0, 200)}`);
        }
        const vols = volumeNames();
        assert.ok(made.volumes.length > 0 && made.volumes.every((v) => vols.includes(v)), `data volumes kept (made: ${made.volumes.join(", ")})`);
      });
    });
  } finally {
    // Test cleanup (not product behaviour): leave the engine as it was for later stages and runs.
    if (existsSync(harness.stateFile(STACK)) && harness.state(STACK).resources.length > 0) {
      const d = await harness.destroy(spec());
      if (!d.ok) process.stdout.write(`# cleanup destroy failed: ${d.error}\n`);
    }
    // Includes railhead-proxy when this run created it and the destroy kept it for another service.
    for (const c of containerNames().filter((x) => made.containers.includes(x))) sh("docker", ["rm", "-f", c]);
    cleanup(made, imageName);
    harness.forget(STACK);
  }
});
