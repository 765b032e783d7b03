// The digest pinning behind components/image.ts, for real, against the rig's local registry and
// without Pulumi's docker provider (no plugins here): push an image, read the tag's manifest digest
// the way `docker.getRegistryImage` does (GET /v2/<repo>/manifests/<tag>, Docker-Content-Digest),
// check it is the digest the push reported (what `docker.Image.repoDigest` carries), pin it with
// pinnedRef, and prove a host pulling the pinned ref gets the pinned bytes after the tag moved.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadRig, rigImage, sshRun, type Rig } from "../rig/rig";
import { DIGEST_RE, pinnedRef, versionFromDigest, planImage } from "../../components/image";
import { parseImageRef } from "../../components/config";

let rig: Rig;
const REPO = "railhead-day2/pin";

function docker(args: string[], input?: string): string {
  const r = spawnSync("docker", args, { encoding: "utf8", input, timeout: 300_000 });
  assert.equal(r.status, 0, `docker ${args.join(" ")}: ${r.stdout}${r.stderr}`);
  return r.stdout.trim();
}

/** The registry's digest for a tag: what getRegistryImage reads (HEAD/GET manifests + Docker-Content-Digest). */
function manifestDigest(registry: string, repo: string, tag: string): Promise<string> {
  const [host, port] = registry.split(":");
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host,
        port: Number(port),
        method: "HEAD",
        path: `/v2/${repo}/manifests/${tag}`,
        headers: {
          Accept: [
            "application/vnd.docker.distribution.manifest.v2+json",
            "application/vnd.docker.distribution.manifest.list.v2+json",
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.oci.image.index.v1+json",
          ].join(", "),
        },
      },
      (res) => {
        res.resume();
        const d = res.headers["docker-content-digest"];
        if (res.statusCode !== 200 || typeof d !== "string") reject(new Error(`HEAD manifests/${tag}: ${res.statusCode}`));
        else resolve(d);
      },
    );
    req.on("error", reject);
    req.end();
  });
}

/** Builds a one-layer image whose content is `marker`, tags it REPO:tag on the push address, pushes it. */
function buildAndPush(tag: string, marker: string): { pushRef: string; pushedDigest: string } {
  const ctx = mkdtempSync(join(tmpdir(), "railhead-pin-"));
  writeFileSync(join(ctx, "marker"), marker);
  writeFileSync(join(ctx, "Dockerfile"), `FROM ${rigImage("base:bookworm").replace(rig.registry.pull, rig.registry.push)}\nCOPY marker /marker\n`);
  const pushRef = `${rig.registry.push}/${REPO}:${tag}`;
  docker(["build", "-q", "-t", pushRef, ctx]);
  docker(["push", "-q", pushRef]);
  const repoDigests = JSON.parse(docker(["image", "inspect", "--format", "{{json .RepoDigests}}", pushRef])) as string[];
  const mine = repoDigests.find((d) => d.startsWith(`${rig.registry.push}/${REPO}@`));
  assert.ok(mine, `no repo digest for ${pushRef}: ${repoDigests.join(", ")}`);
  builtIds.push(docker(["image", "inspect", "--format", "{{.Id}}", pushRef]).trim());
  return { pushRef, pushedDigest: mine.split("@")[1] };
}

/** Images this file built on the machine's engine (removed after the tests; the registry keeps its copies). */
const builtIds: string[] = [];

before(() => {
  rig = loadRig();
});

after(() => {
  if (builtIds.length) spawnSync("docker", ["image", "rm", "-f", ...builtIds], { encoding: "utf8" });
});

test("a pushed tag resolves to the digest the push reported; the pinned ref keeps its bytes after the tag moves", async () => {
  const tag = `t${Date.now()}`;
  const first = buildAndPush(tag, `first ${tag}\n`);
  const resolved = await manifestDigest(rig.registry.push, REPO, tag);
  assert.match(resolved, DIGEST_RE);
  assert.equal(resolved, first.pushedDigest, "registry digest = push digest (repoDigest)");

  // What a release runs: the pull address, the tag kept for people, the digest deciding the bytes.
  const pullRepo = `${rig.registry.pull}/${REPO}`;
  const pinned = `${pullRepo}:${tag}@${resolved}`;
  assert.equal(pinnedRef(pullRepo, resolved), `${pullRepo}@${resolved}`);
  assert.ok(parseImageRef(pinned)?.digest === resolved, "the pinned ref parses with its digest");
  const plan = planImage({ stack: "staging", image: pinned, imageRef: parseImageRef(pinned) ?? { path: "" }, version: versionFromDigest(resolved), hosts: { h1: { name: "h1", kind: "ssh", labels: {} } } });
  assert.equal(plan.kind, "pinned", "a digest in railhead:image is used as is");

  // The tag moves to new bytes.
  const second = buildAndPush(tag, `second ${tag}\n`);
  assert.notEqual(second.pushedDigest, first.pushedDigest);
  assert.equal(await manifestDigest(rig.registry.push, REPO, tag), second.pushedDigest, "the tag now names the new image");

  // A host pulling the pinned ref still gets the first bytes.
  const out = await sshRun("h1", `docker pull -q ${pinned} >/dev/null && docker run --rm ${pinned} cat /marker; docker image rm -f ${pinned} >/dev/null 2>&1 || true`, { timeoutMs: 180_000 });
  assert.equal(out.code, 0, out.stderr);
  assert.equal(out.stdout.trim(), `first ${tag}`);
  assert.equal(versionFromDigest(pinned), resolved.slice(7, 19));
});
