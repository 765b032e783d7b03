// `railhead:builder`: build the image with @pulumi/docker on the machine running Pulumi, then push.
import { z } from "zod";
import { envName, obj, plainValue } from "./shared";
import type { Section } from "./section";

const unsupported = "not supported: the build runs on the local Docker engine (CI's runner) through @pulumi/docker";

export const builderSchema = obj(
  {
    context: z.string().min(1).default(".").describe("build context, relative to the project"),
    dockerfile: z.string().min(1).default("Dockerfile").describe("Dockerfile path inside the context"),
    target: z.string().min(1).optional().describe("build stage"),
    args: z
      .record(envName, plainValue)
      .transform((m): Record<string, string> => Object.fromEntries(Object.entries(m).map(([k, v]) => [k, String(v)])))
      .prefault({})
      .describe("build args (not secret)"),
    secrets: z
      .array(envName)
      .max(0, { error: "build secrets are not supported: @pulumi/docker's Image has none, and build args would store them in the image history; remove builder.secrets" })
      .default([])
      .describe("refused: docker.Image has no build secrets (Kamal's builder.secrets)"),
    platform: z
      .string()
      .regex(/^[a-z0-9]+\/[a-z0-9_]+(\/[a-z0-9]+)?$/, { error: "an OS/architecture pair, e.g. linux/amd64 or linux/arm64" })
      .default("linux/amd64")
      .describe("target platform of the hosts"),
  },
  {
    arch: "Kamal's builder.arch is builder.platform here (one platform per build): platform: linux/amd64",
    remote: unsupported,
    local: unsupported,
    driver: unsupported,
    cache: unsupported,
    ssh: unsupported,
    pack: unsupported,
    provenance: unsupported,
    sbom: unsupported,
  },
);

export const builder: Section = {
  key: "builder",
  schema: builderSchema.optional(),
  examples: [
    [/^builder\.secrets/, "remove builder.secrets; build in CI and set railhead:image to the pushed repo@sha256 digest"],
    [/^builder\.(arch|platform)/, "platform: linux/amd64"],
    [/^builder\.args/, "args: { RUBY_VERSION: 3.3.5 }"],
    [/^builder/, "railhead:builder: { context: ., dockerfile: Dockerfile, args: { RUBY_VERSION: 3.3.5 } }"],
  ],
};
