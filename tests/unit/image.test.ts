// components/image.ts: the pure plan for every case, then the resources resolveImage registers
// under the mock runtime (what is built, pushed, resolved; that the registry password stays secret;
// that the release ref is the pushed digest).
import { test, before } from "node:test";
import assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import { loadStackFile, canary } from "../support/stack-config";
import { setupMocks, settle, unwrap, isSecretWire, plainStrings, type Recorder } from "../support/mocks";
import { loadConfig, parseImageRef, type DeployConfig, type HostConfig } from "../../components/config";
import { planImage, resolveImage, versionFromDigest, pinnedRef, type ImageConfig } from "../../components/image";

const DIGEST = `sha256:${"ab12".repeat(16)}`;
const IMAGE_ID = `sha256:${"cd34".repeat(16)}`;
const LOCAL: Record<string, HostConfig> = { local: { name: "local", kind: "local", labels: {} } };
const REMOTE: Record<string, HostConfig> = { "web-1": { name: "web-1", kind: "ssh", ssh: { address: "10.77.0.2", user: "deploy", port: 22 }, labels: {} } };
const BUILDER = { context: "demo", dockerfile: "Dockerfile", args: { APP_VERSION: "x" }, secrets: [] as string[], platform: "linux/amd64" };
const REGISTRY = { server: "ghcr.io", username: "acme", passwordSecret: "REGISTRY_PASSWORD" };

function cfg(image: string, extra: Partial<ImageConfig> = {}): ImageConfig {
  const imageRef = parseImageRef(image);
  assert.ok(imageRef, image);
  const version = extra.version ?? (imageRef.digest ? imageRef.digest.slice(7, 19) : (imageRef.tag ?? "latest"));
  return { stack: "staging", image, imageRef, version, hosts: REMOTE, ...extra };
}

test("a digest in railhead:image is used as is, even with a builder (rollback pins it)", () => {
  const p = planImage(cfg(`ghcr.io/acme/demo@${DIGEST}`, { builder: BUILDER, registry: REGISTRY, version: "v41" }));
  assert.equal(p.kind, "pinned");
  assert.ok(p.kind === "pinned" && p.ref === `ghcr.io/acme/demo@${DIGEST}` && p.version === "v41");
  assert.match(p.kind === "pinned" ? p.reason : "", /builder is skipped/);
});

test("a local image id in railhead:image is used as is", () => {
  const p = planImage(cfg(IMAGE_ID, { hosts: LOCAL, builder: BUILDER, version: "cd34cd34cd34" }));
  assert.deepEqual([p.kind, p.kind === "pinned" && p.ref], ["pinned", IMAGE_ID]);
});

test("builder on a remote stack: build, push with the registry login, version from the digest", () => {
  const p = planImage(cfg("ghcr.io/acme/demo", { builder: BUILDER, registry: REGISTRY }));
  assert.equal(p.kind, "build");
  if (p.kind !== "build") return;
  assert.equal(p.push, true);
  assert.equal(p.imageName, "ghcr.io/acme/demo:railhead-staging");
  assert.equal(p.dockerfile, "demo/Dockerfile");
  assert.equal(p.context, "demo");
  assert.deepEqual(p.registry, REGISTRY);
  assert.equal(p.version, undefined, "no version named: it comes from the digest");
});

test("builder with a version named: the build is tagged with it and releases use it", () => {
  const p = planImage(cfg("ghcr.io/acme/demo", { builder: BUILDER, registry: REGISTRY, version: "2026.11.1" }));
  assert.ok(p.kind === "build");
  assert.equal(p.kind === "build" && p.imageName, "ghcr.io/acme/demo:2026.11.1");
  assert.equal(p.kind === "build" && p.version, "2026.11.1");
});

test("builder on the all-local stack without a registry: build, no push", () => {
  const p = planImage(cfg("railhead-demo", { stack: "local", hosts: LOCAL, builder: BUILDER }));
  assert.ok(p.kind === "build");
  assert.equal(p.kind === "build" && p.push, false);
  assert.equal(p.kind === "build" && p.imageName, "railhead-demo:railhead-local");
});

test("builder.secrets is refused with the reason and what to do instead", () => {
  assert.throws(() => planImage(cfg("ghcr.io/acme/demo", { builder: { ...BUILDER, secrets: ["NPM_TOKEN"] }, registry: REGISTRY })), /builder\.secrets \(NPM_TOKEN\) is not supported[\s\S]*Next:/);
});

test("a tag on a registry is resolved to its digest", () => {
  const p = planImage(cfg("ghcr.io/acme/demo:1.0.0", { registry: REGISTRY }));
  assert.deepEqual(p, { kind: "resolve", name: "ghcr.io/acme/demo:1.0.0", repository: "ghcr.io/acme/demo", registry: REGISTRY, version: "1.0.0" });
  const hub = planImage(cfg("postgres:16.4"));
  assert.equal(hub.kind, "resolve", "Docker Hub tags are resolved too");
});

test("a tag only this machine's engine has, on the all-local stack, is used by tag", () => {
  const p = planImage(cfg("railhead-demo:1", { stack: "local", hosts: LOCAL }));
  assert.equal(p.kind, "as-given");
  const viaRegistry = planImage(cfg("127.0.0.1:5000/demo:1", { stack: "local", hosts: LOCAL }));
  assert.equal(viaRegistry.kind, "resolve", "a registry host in the name can be read");
});

test("digest helpers", () => {
  assert.equal(versionFromDigest(`ghcr.io/acme/demo@${DIGEST}`), "ab12ab12ab12");
  assert.equal(versionFromDigest(IMAGE_ID), "cd34cd34cd34");
  assert.throws(() => versionFromDigest("demo:1"), /no sha256 digest/);
  assert.equal(pinnedRef("ghcr.io/acme/demo", DIGEST), `ghcr.io/acme/demo@${DIGEST}`);
  assert.throws(() => pinnedRef("x", "sha256:zz"), /not a sha256 digest/);
});

test("the embedded local stack builds demo/ without pushing", () => {
  const { config } = loadConfig(loadStackFile("local").raw);
  const p = planImage(config);
  assert.equal(p.kind, "build");
  assert.ok(p.kind === "build");
  assert.equal(p.push, false);
  assert.equal(p.context, "demo");
  assert.equal(p.dockerfile, "demo/Dockerfile");
});

// ---------------------------------------------------------------------------------------------
// Under the mock runtime

const PUSHED = `ghcr.io/acme/demo@${DIGEST}`;
let rec: Recorder;

before(async () => {
  const fx = loadStackFile("staging");
  rec = await setupMocks("staging", fx);
  // Our own provider answers: docker.Image returns a repoDigest, getRegistryImage a digest.
  await pulumi.runtime.setMocks(
    {
      newResource: (a) => {
        if (a.type === "docker:index/image:Image") {
          const skip = (a.inputs as { skipPush?: boolean }).skipPush;
          return { id: `${a.name}-id`, state: { ...a.inputs, repoDigest: skip ? IMAGE_ID : PUSHED } };
        }
        return { id: `${a.name}-id`, state: a.inputs };
      },
      call: (a) => (a.token === "docker:index/getRegistryImage:getRegistryImage" ? { ...a.inputs, sha256Digest: DIGEST } : a.inputs),
    },
    "railhead",
    "staging",
    false,
  );
  pulumi.runtime.setAllConfig(fx.values, fx.secretKeys);
});

function deploy(image: string, extra: Partial<DeployConfig> = {}): DeployConfig {
  const override: Record<string, unknown> = { "railhead:image": image };
  if (extra.builder) override["railhead:builder"] = extra.builder;
  const fx = loadStackFile("staging", { override });
  return { ...loadConfig(fx.raw).config, ...extra };
}

const secrets = { REGISTRY_PASSWORD: pulumi.secret(canary("REGISTRY_PASSWORD")) };

test("resolveImage builds and pushes with the password as a secret; releases run the pushed digest", async () => {
  const c = deploy("ghcr.io/acme/demo", { builder: BUILDER });
  const r = resolveImage(c, secrets, { name: "built" });
  assert.equal(await unwrap(r.ref), PUSHED);
  assert.equal(await unwrap(pulumi.output(r.version)), "ab12ab12ab12");
  await settle();
  const img = rec.registrations.find((x) => x.name === "built-image");
  assert.ok(img, "a docker.Image is registered");
  assert.equal(img.type, "docker:index/image:Image");
  assert.equal(r.resources.length, 1);
  const inputs = img.inputs as { imageName: string; skipPush: boolean; buildOnPreview: boolean; build: Record<string, unknown>; registry: Record<string, unknown> };
  assert.equal(inputs.imageName, "ghcr.io/acme/demo:railhead-staging");
  assert.equal(inputs.skipPush, false);
  assert.equal(inputs.buildOnPreview, false, "a PR preview neither builds nor pushes");
  assert.deepEqual(inputs.build, { context: "demo", dockerfile: "demo/Dockerfile", args: { APP_VERSION: "x" }, platform: "linux/amd64" });
  const wireRegistry = (img.wire.registry ?? {}) as Record<string, unknown>;
  const password = isSecretWire(wireRegistry) ? (wireRegistry.value as Record<string, unknown>).password : wireRegistry.password;
  assert.ok(isSecretWire(wireRegistry) || isSecretWire(password), "registry password travels as a secret");
  assert.ok(!plainStrings(img.wire).some((s) => s.value.includes("CANARY")), "no secret in plain inputs");
});

test("resolveImage on the local stack builds without pushing and runs the image id", async () => {
  const c = { ...deploy("railhead-demo", { builder: BUILDER }), stack: "local", hosts: LOCAL, registry: undefined };
  const r = resolveImage(c, {}, { name: "local" });
  assert.equal(await unwrap(r.ref), IMAGE_ID);
  assert.equal(await unwrap(pulumi.output(r.version)), "cd34cd34cd34");
  await settle();
  const img = rec.registrations.find((x) => x.name === "local-image");
  assert.equal((img?.inputs as { skipPush: boolean }).skipPush, true);
  assert.equal((img?.inputs as { registry?: unknown }).registry, undefined);
});

test("resolveImage pins a tag to the registry's digest through a provider holding the login", async () => {
  const c = deploy("ghcr.io/acme/demo:1.0.0");
  const r = resolveImage(c, secrets, { name: "tagged" });
  assert.equal(await unwrap(r.ref), `ghcr.io/acme/demo:1.0.0@${DIGEST}`);
  assert.equal(r.version, "1.0.0");
  await settle();
  const provider = rec.registrations.find((x) => x.name === "tagged-registry");
  assert.equal(provider?.type, "pulumi:providers:docker");
  assert.ok(!plainStrings(provider?.wire ?? {}).some((s) => s.value.includes("CANARY")), "the login stays secret in the provider's inputs");
});

test("resolveImage with a pinned digest registers nothing", async () => {
  const before = rec.registrations.length;
  const r = resolveImage(deploy(`ghcr.io/acme/demo@${DIGEST}`, { builder: BUILDER }), secrets, { name: "pinned" });
  assert.equal(await unwrap(r.ref), `ghcr.io/acme/demo@${DIGEST}`);
  assert.deepEqual(r.resources, []);
  await settle();
  assert.equal(rec.registrations.length, before);
});

test("resolveImage names a missing registry secret and how to set it", () => {
  assert.throws(() => resolveImage(deploy("ghcr.io/acme/demo", { builder: BUILDER }), {}, { name: "nosecret" }), /REGISTRY_PASSWORD[\s\S]*pulumi config set --secret --path 'railhead:secrets\.REGISTRY_PASSWORD'/);
});
