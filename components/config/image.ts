// `railhead:service`, `railhead:image` and `railhead:version`: what runs and under which name.
import { z } from "zod";
import { NAME_RE } from "./shared";
import type { Section } from "./section";

/**
 * An image reference as Docker's distribution grammar has it: `[registry[:port]/]path[:tag][@digest]`.
 * Lower-case path components, a tag of at most 128 word characters, a sha256 digest.
 */
export const IMAGE_RE =
  /^(?:(?<registry>(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?|\[[0-9a-fA-F:]+\](?::[0-9]+)?)\/)?(?<path>[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)(?::(?<tag>[\w][\w.-]{0,127}))?(?:@(?<digest>sha256:[a-f0-9]{64}))?$/;

export interface ImageRef {
  readonly registry?: string;
  readonly path: string;
  readonly tag?: string;
  readonly digest?: string;
}

export function parseImageRef(ref: string): ImageRef | undefined {
  const m = IMAGE_RE.exec(ref);
  if (!m || !m.groups) return undefined;
  const { registry, path, tag, digest } = m.groups;
  // A first component without a dot, colon or "localhost" is a path component, not a registry.
  if (registry && !/[.:]/.test(registry) && registry !== "localhost" && !registry.startsWith("[")) {
    return { path: `${registry}/${path}`, tag, digest };
  }
  return { registry, path, tag, digest };
}

/** The image tag, else the first 12 hex digits of its digest, else "latest". */
export function deriveVersion(ref: ImageRef | undefined): string {
  if (ref?.digest) return ref.digest.slice("sha256:".length, "sha256:".length + 12);
  if (ref?.tag) return ref.tag;
  return "latest";
}

export const service: Section = {
  key: "service",
  raw: "string",
  schema: z
    .string()
    .regex(NAME_RE, { error: "lower-case letters, digits, - and _, starting with a letter or digit (it prefixes container names)" })
    .max(40)
    .describe("the app's name; container prefix"),
  examples: [[/^service/, "railhead:service: demo"]],
};

export const image: Section = {
  key: "image",
  raw: "string",
  schema: z
    .string()
    .min(1)
    .check((ctx) => {
      if (!parseImageRef(ctx.value))
        ctx.issues.push({
          code: "custom",
          input: ctx.value,
          message: `"${ctx.value}" is not an image reference ([registry/]repository[:tag][@sha256:digest], lower-case repository)`,
        });
    })
    .describe(
      "the app image, e.g. ghcr.io/acme/demo:1.4.2 (or the repository to push to when builder is set); without a registry host and with railhead:registry set, the registry's server is prefixed (Kamal's rule)",
    ),
  examples: [[/^image/, "railhead:image: ghcr.io/acme/demo:1.4.2"]],
};

export const VERSION_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export const version: Section = {
  key: "version",
  raw: "string",
  schema: z
    .string()
    .regex(VERSION_RE, { error: (iss) => `"${String(iss.input)}" is not a version: letters, digits, ".", "_" and "-", at most 64, starting with a letter or digit` })
    .optional()
    .describe("release version (default: the image tag or digest)"),
  examples: [[/^version/, 'railhead:version: "1.4.2"']],
};
