// e2e: a real VM host. The staging-shaped stack e2e-vm (web + job on SQLite with Litestream, no
// ssl) on one hcloud host whose server is a QEMU guest (tests/e2e/engine/vm.ts) booted from a
// Debian image built here (tests/vm/image.sh, cached by recipe hash) with EXACTLY the user-data
// the program rendered: Railhead's real cloud-init runs on a booted system, creates `deploy`
// (docker group, keys only, no root), and the program's own readiness (`cloud-init status --wait`)
// gates the deploy. Then a second version, then the server replaced with a changed cloud-init (a
// rotated deploy key) and the SQLite data restored from the local S3 endpoint on the new VM.
// SSH is always `deploy`, never root. Apply harness (test equipment): no `pulumi up` runs here.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { scenario, skipped } from "../summary";
import { httpRequest, IMAGE, mustSucceed, rig, served } from "../support";
import { Harness, REPO, type StackSpec, type UpResult } from "../harness";
import { consoleHostKey, destroyAllVms, IMAGE_SCRIPT, vmImage, vmRun, vmSpec, type VmSpec } from "../engine/vm";
import { spawnCollect } from "../engine/ssh";
import { renderCloudInit } from "../../../components/cloud-init";

const STACK = "e2e-vm";
const VM = "st1";
const BUCKET = "e2e-vm-litestream";
/** Where the guest reaches the S3 endpoint (a guestfwd to this machine's loopback). */
const S3_GUEST_IP = "10.0.2.101";
/** A VM boot under TCG on a loaded 2-core machine can take many minutes: a longer limit per up. */
const harness = new Harness({ timeoutMs: 2_400_000 });
async function up(spec: StackSpec): Promise<UpResult> {
  const r = await harness.up(spec);
  process.stdout.write(`# up ${spec.stack}: ${r.ok ? "ok" : "FAILED"} in ${r.seconds.toFixed(1)} s, ${r.executed} actions\n`);
  const asRoot = r.actions.filter((a) => a.kind === "command" && a.target?.startsWith("root@"));
  assert.deepEqual(asRoot.map((a) => a.name), [], "no command logs in as root");
  return r;
}
const NAMES = ["vm: image + boot + first deploy (deploy user, pinned host key)", "vm: redeploy v2", "vm: replaced server (changed cloud-init) restores SQLite"];

function whyNot(): string | undefined {
  if (process.getuid?.() !== 0) return "needs root (debootstrap for the VM image)";
  for (const bin of ["qemu-system-x86_64", "qemu-img", "genisoimage", "socat", "debootstrap"]) {
    if (!["/usr/bin", "/usr/sbin", "/bin", "/sbin"].some((d) => existsSync(join(d, bin)))) return `${bin} is not installed (.ci/run installs it)`;
  }
  if (![join(REPO, "node_modules", "fauxqs"), join(REPO, "tmp", "data-deps", "node_modules", "fauxqs")].some((p) => existsSync(p))) return "fauxqs (the local S3 endpoint) is not installed";
  return undefined;
}
const reason = whyNot();
if (reason) skipped(NAMES, reason);

interface KeyPair {
  privateKey: string;
  publicKey: string;
}
async function newKeyPair(dir: string, name: string): Promise<KeyPair> {
  const file = join(dir, name);
  const r = await spawnCollect("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", `e2e-vm-${name}`, "-f", file]);
  assert.equal(r.code, 0, r.combined);
  return { privateKey: readFileSync(file, "utf8"), publicKey: readFileSync(`${file}.pub`, "utf8").trim() };
}

const figures: Record<string, number> = {};
function figure(name: string, seconds: number): void {
  figures[name] = Math.round(seconds * 10) / 10;
  process.stdout.write(`# figure: ${name} = ${figures[name]} s\n`);
}

/** Start-to-end of an up's actions on one resource (ms since the up started). */
function span(r: UpResult, name: string): { start: number; end: number } | undefined {
  const steps = r.steps.filter((s) => s.name === name);
  if (steps.length === 0) return undefined;
  return { start: Math.min(...steps.map((s) => s.start)), end: Math.max(...steps.map((s) => s.end)) };
}

test("e2e-vm: Railhead's cloud-init on a real VM, deploy, redeploy, replaced server restores SQLite", { concurrency: false, skip: reason ?? false, timeout: 5_400_000 }, async (t) => {
  const t0 = Date.now();
  const dir = mkdtempSync(join(tmpdir(), "railhead-e2e-vm-"));
  const spec: VmSpec = vmSpec(rig(), `vm:${VM}`) as VmSpec;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { startS3 } = require("../../support/s3/server") as typeof import("../../support/s3/server");
  const s3 = await startS3({ host: "127.0.0.1", port: 0, buckets: [BUCKET] });
  const s3Port = new URL(s3.url).port;
  process.env.E2E_VM_GUESTFWD = `${S3_GUEST_IP}:${s3Port}=127.0.0.1:${s3Port}`;
  t.after(async () => {
    await destroyAllVms(rig());
    await s3.stop();
    delete process.env.E2E_VM_GUESTFWD;
    rmSync(dir, { recursive: true, force: true });
    process.stdout.write(`# figures: ${JSON.stringify(figures)}\n`);
  });

  const keyA: KeyPair = { privateKey: readFileSync(rig().sshKey, "utf8"), publicKey: readFileSync(`${rig().sshKey}.pub`, "utf8").trim() };
  const keyB = await newKeyPair(dir, "rotated");
  const reg = rig().registry.pull;
  const stack = (tag: string, key: KeyPair, osImage = "ubuntu-24.04"): StackSpec => ({
    stack: STACK,
    file: join(REPO, "tests", "e2e", "stacks", "e2e-vm.yaml"),
    hostMap: { "st-1": `vm:${VM}` },
    secrets: { SSH_PRIVATE_KEY: key.privateKey.trim() },
    config: {
        image: IMAGE(tag),
        hosts: { "st-1": { hcloud: { serverType: "cx23", location: "fsn1", image: osImage } } },
        ssh: { user: "deploy", privateKey: ["SSH_PRIVATE_KEY"], publicKey: key.publicKey },
        proxy: { image: `${reg}/railhead-test/haproxy:2.6`, tlsImage: `${reg}/railhead-test/caddy:2.6`, appPort: 3000, healthcheck: { path: "/up", interval: 1, timeout: 2 }, deployTimeout: 120, drainTimeout: 2 },
        litestream: {
          image: `${reg}/railhead-test/litestream:0.3.13`,
          storage: "/rails/storage",
          databases: ["production.sqlite3"],
          replica: { type: "s3", bucket: BUCKET, createBucket: false, region: "us-east-1", endpoint: `http://${S3_GUEST_IP}:${s3Port}`, forcePathStyle: true, accessKeyId: ["LS_KEY_ID"], secretAccessKey: ["LS_SECRET"] },
          syncInterval: "1s",
        },
    },
  });
  const address = spec.address;
  const count = async () => {
    const r = await httpRequest("GET", address, "/sqlite/count");
    assert.equal(r.status, 200, `GET /sqlite/count -> ${r.status} ${r.body}`);
    return Number(/\d+/.exec(r.body)?.[0] ?? NaN);
  };
  let hostKey = "";
  const asDeploy = async (script: string, key = keyA) => {
    const r = await vmRun(spec, { user: "deploy", privateKey: key.privateKey, hostKey }, script);
    if (r.code !== 0) throw new Error(`in VM as deploy: ${script} -> exit ${r.code}\n${r.combined}`);
    return r.stdout;
  };
  /** The host key the program generated (tls.PrivateKey in state): what every connection pins. */
  const programHostKey = () => {
    const k = harness.state(STACK).resources.find((x) => x.type === "tls:index/privateKey:PrivateKey");
    assert.ok(k, "the host key is in state");
    return { privateKey: String(k.outputs.privateKeyOpenssh), publicKey: String(k.outputs.publicKeyOpenssh).trim() };
  };
  /** The seed holds exactly the server's userData input, which is what the program renders. */
  const checkSeed = (key: KeyPair) => {
    const server = harness.state(STACK).resources.find((x) => x.type === "hcloud:index/server:Server");
    assert.ok(server, "the server is in state");
    const seed = readFileSync(join(spec.dir, "seed", "user-data"), "utf8");
    assert.equal(seed, server.inputs.userData, "the NoCloud seed holds the server's userData input");
    assert.equal(seed, renderCloudInit({ user: "deploy", publicKey: key.publicKey, hostKey: programHostKey() }), "and that is what components/cloud-init.ts renders");
  };
  harness.forget(STACK);
  await destroyAllVms(rig());

  await t.test(NAMES[0], async () => {
    await scenario(NAMES[0], async () => {
      const cached = existsSync(join(await imageDir(), "ready"));
      const b0 = Date.now();
      await vmImage();
      figure(cached ? "VM image (cached)" : "VM image build (first)", (Date.now() - b0) / 1000);

      const r = await up(stack("v1", keyA));
      mustSucceed(r);
      figure("first deploy (up from scratch, incl. VM boot)", r.seconds);
      const server = span(r, "host-st-1/server");
      const ready = span(r, "host-st-1/cloud-init");
      assert.ok(server && ready, `server and readiness steps ran: ${r.steps.map((s) => s.name).join(", ")}`);
      figure("VM boot to `cloud-init status --wait` done", (ready.end - server.end) / 1000);
      figure("first deploy after cloud-init done", r.seconds - ready.end / 1000);
      const readiness = r.actions.find((a) => a.name === "host-st-1/cloud-init");
      assert.ok(readiness?.ok, "the program's readiness command (cloud-init status --wait) succeeded");
      checkSeed(keyA);

      assert.equal(await served(address), "v1");
      // The host key the program generated and pins; the guest's console (cloud-init prints the
      // keys it installed) shows the same one.
      hostKey = programHostKey().publicKey;
      assert.equal(await consoleHostKey(spec, 10_000), hostKey, "the guest presents the program's host key");
      assert.ok(r.actions.filter((a) => a.kind === "command" && a.target?.includes(address)).length > 0, "commands ran on the VM");
      const who = await asDeploy("id -un; id -Gn; cloud-init status; docker ps --format '{{.Names}}' | sort; cat /etc/os-release | grep ^VERSION_CODENAME");
      assert.match(who, /^deploy\n/, who);
      assert.match(who, /\bdocker\b/, "deploy is in the docker group");
      assert.match(who, /status: done/, who);
      assert.match(who, /e2evm-job-v1/, who);
      assert.match(who, /e2evm-web-v1/, who);
      // A wrong host key is refused; so are root and a password login.
      const wrong = await newKeyPair(dir, "not-the-host");
      const bad = await vmRun(spec, { user: "deploy", privateKey: keyA.privateKey, hostKey: wrong.publicKey }, "true");
      assert.equal(bad.code, 255, `a wrong pinned host key must be refused: ${bad.combined}`);
      assert.match(bad.stderr, /Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED/i, bad.stderr);
      const root = await vmRun(spec, { user: "root", privateKey: keyA.privateKey, hostKey }, "true");
      assert.equal(root.code, 255, `root login must be refused: ${root.combined}`);
      const pw = await spawnCollect("ssh", ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "PreferredAuthentications=password,keyboard-interactive", "-p", "22", `deploy@${address}`, "true"]);
      assert.equal(pw.code, 255, "password logins are refused");
      // The guest reaches only what it is given (registry, S3, the mirror); not this machine.
      const egress = await asDeploy(
        [
          `curl -fsS -m 10 -o /dev/null -w 'registry %{http_code}\\n' http://${reg}/v2/`,
          "curl -sS -m 5 -o /dev/null http://10.0.2.2:22/ 2>/dev/null && echo 'host: reached' || echo 'host: blocked'",
          `curl -sS -m 5 -o /dev/null http://${rig().gateway}:22/ 2>/dev/null && echo 'gateway: reached' || echo 'gateway: blocked'`,
        ].join("; "),
      );
      assert.match(egress, /registry 200/, egress);
      assert.match(egress, /host: blocked/, egress);
      assert.match(egress, /gateway: blocked/, egress);

      assert.equal((await httpRequest("POST", address, "/sqlite/write?n=5")).status, 200);
      assert.equal(await count(), 5);
    });
  });

  await t.test(NAMES[1], async () => {
    await scenario(NAMES[1], async () => {
      const r = await up(stack("v2", keyA));
      mustSucceed(r);
      figure("redeploy v2", r.seconds);
      assert.ok(!r.steps.some((s) => s.name === "host-st-1/server" && s.op !== "same"), "the server is untouched");
      assert.equal(await served(address), "v2");
      assert.equal(await count(), 5, "the SQLite rows survive a redeploy");
      assert.equal((await httpRequest("POST", address, "/sqlite/write?n=2")).status, 200);
    });
  });

  await t.test(NAMES[2], async () => {
    await scenario(NAMES[2], async () => {
      const n = await count();
      assert.equal(n, 7);
      await new Promise((res) => setTimeout(res, 5000)); // syncInterval 1s: let the WAL reach S3
      const oldHostKey = hostKey;
      // A rebuild (new OS image forces a new server) with a changed cloud-init: the deploy key rotated.
      const r = await up(stack("v2", keyB, "ubuntu-22.04"));
      mustSucceed(r);
      figure("replace server + restore (up)", r.seconds);
      assert.ok(r.steps.some((s) => s.name === "host-st-1/server" && s.op === "replace"), "st-1's server was replaced");
      checkSeed(keyB);
      assert.equal(programHostKey().publicKey, oldHostKey, "the host key belongs to the host: the same after a rebuild");
      assert.equal(await consoleHostKey(spec, 10_000), hostKey, "the new machine presents it (installed by its cloud-init)");
      assert.match(await asDeploy("id -un", keyB), /^deploy$/m, "the rotated key logs in");
      const old = await vmRun(spec, { user: "deploy", privateKey: keyA.privateKey, hostKey }, "true");
      assert.equal(old.code, 255, "the old key is not on the new machine");
      assert.equal(await served(address), "v2");
      assert.equal(await count(), n, "the new VM restored the SQLite rows from S3");
    });
  });
  figure("scenario total", (Date.now() - t0) / 1000);
});

/** The image directory tests/vm/image.sh uses for its current recipe (without building). */
async function imageDir(): Promise<string> {
  const { createHash } = await import("node:crypto");
  const hash = createHash("sha256").update(readFileSync(IMAGE_SCRIPT)).digest("hex").slice(0, 16);
  return join(process.env.RH_VM_CACHE ?? "/var/cache/rh-vm", hash);
}
