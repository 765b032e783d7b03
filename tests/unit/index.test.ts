// index.ts as the engine runs it: the local stack file through the real program entry point, with
// the real host tool bundle (so it needs components/host-tool's sources), and its stack outputs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { loadStackFile, REPO } from "../support/stack-config";
import { MOCK_DIGESTS, setupMocks, settle, unwrap } from "../support/mocks";
import { bundleHostTool } from "../../components/host-tool/bundle";

test("index.ts deploys the local stack with the bundled host tool and exports where it runs", async () => {
  const main = join(REPO, "components", "host-tool", "main.sh");
  assert.ok(existsSync(main), `the host tool is not there (${main}); the program cannot deploy without it`);
  const { hash } = bundleHostTool();
  const fx = loadStackFile("local");
  const rec = await setupMocks("local", fx);
  const program = (await import("../../index")) as typeof import("../../index");
  await settle();
  assert.ok(rec.registrations.length > 0);
  const install = rec.registrations.find((r) => r.name === "host-local/tool");
  assert.ok(install && String(install.inputs.create).includes(`railhead-host-${hash}`), "the uploaded tool is named by the bundle's hash");
  for (const r of rec.registrations.filter((x) => x.type === "command:local:Command" && x.name !== "host-local/tool")) {
    assert.ok(String(r.inputs.create).includes(`"$HOME/.railhead/bin/railhead-host-${hash}"`), `${r.name} runs the uploaded tool`);
  }
  assert.equal(program.service, "demo");
  // The local stack builds demo/ into this machine's engine (no registry, no push): releases run the
  // build's image id, and the version is its first 12 hex digits (the stack names none).
  const build = rec.registrations.find((r) => r.type === "docker:index/image:Image");
  assert.ok(build, "the local stack builds the app image");
  assert.equal(build.inputs.imageName, "railhead-demo:railhead-local");
  assert.equal(build.inputs.skipPush, true);
  assert.deepEqual(build.inputs.build, { context: "demo", dockerfile: "demo/Dockerfile", args: {} });
  assert.equal(await unwrap(program.image), MOCK_DIGESTS.imageId);
  assert.equal(await unwrap(program.version), MOCK_DIGESTS.imageId.slice("sha256:".length, "sha256:".length + 12));
  assert.ok(String(rec.registrations.find((r) => r.name === "web-local/release")?.inputs.create).includes(` --image ${MOCK_DIGESTS.imageId} `));
  assert.deepEqual(await unwrap(program.urls), ["http://127.0.0.1:8080"]);
  assert.equal(await unwrap(program.hosts.local.address), "127.0.0.1");
});
