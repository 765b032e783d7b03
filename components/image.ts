// Which image a release runs, pinned so that `pulumi preview` and every host agree on the bytes.
//
// Four cases, decided by the pure `planImage` (tested without mocks):
//   pinned   railhead:image already names a digest (`repo@sha256:...`) or a local image id
//            (`sha256:...`): used as is, nothing is built. This is also how a rollback pins a
//            retained release while `builder` stays configured.
//   build    `builder` is set: `docker.Image` builds on the machine running Pulumi and, unless the
//            stack is all-local without a registry, pushes to the registry with the credentials
//            from `railhead:secrets`; releases run `repoDigest` (`repo@sha256:...`). For an
//            all-local stack the image is not pushed and `repoDigest` is the local image id.
//   resolve  a tag on a registry: `docker.getRegistryImage` reads the tag's manifest digest at
//            preview time, so the preview shows the exact `repo:tag@sha256:...` that will run.
//   as-given a tag that no registry can answer for (an image only in this machine's engine, on an
//            all-local stack): used by tag, and the preview says so.
//
// Why docker.Image and not @pulumi/docker-build: the installed @pulumi/docker 5.2.0 ships
// `docker.Image` (build + push + `repoDigest`, registry credentials as a secret input, no build
// during preview unless asked); docker-build is a separate provider package that is not a
// dependency, builds during preview by default and had a replace-deletes-pushed-image bug
// (research/pulumi.md 2.1). Its one advantage is build secrets; docker.Image has none, so
// `builder.secrets` is refused with a clear error below rather than leaked as build args.
// Why getRegistryImage and not RemoteImage for tags: RemoteImage pulls into the engine of the
// machine running Pulumi (a side effect, and nothing runs in a preview); the invoke only reads
// the registry's manifest, in previews too.
import { join } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";
import type { DeployConfig } from "./config";

/** A manifest digest or image id: `sha256:` and 64 hex digits. */
export const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

export interface BuildPlan {
  readonly kind: "build";
  /** `repository:tag` the build is tagged (and pushed) as. */
  readonly imageName: string;
  /** Push to a registry (false: keep it in the local engine; the ref is then the image id). */
  readonly push: boolean;
  readonly context: string;
  /** Path of the Dockerfile relative to the project directory (context + builder.dockerfile). */
  readonly dockerfile: string;
  readonly target?: string;
  readonly args: Record<string, string>;
  /** Target platform of a pushed build; unset for a local-only build (the engine's own platform). */
  readonly platform?: string;
  /** Registry login for the push; the password is the name of a key in railhead:secrets. */
  readonly registry?: { server: string; username: string; passwordSecret: string };
  /** The release version when the stack names one; otherwise derived from the digest. */
  readonly version?: string;
}

export interface ResolvePlan {
  readonly kind: "resolve";
  /** `repository:tag` whose manifest digest is read from the registry. */
  readonly name: string;
  readonly repository: string;
  readonly registry?: { server: string; username: string; passwordSecret: string };
  readonly version: string;
}

export interface FixedPlan {
  readonly kind: "pinned" | "as-given";
  readonly ref: string;
  readonly version: string;
  /** Why this image is used without a build or a registry lookup (printed in the preview). */
  readonly reason: string;
}

export type ImagePlan = BuildPlan | ResolvePlan | FixedPlan;

/** The image fields of DeployConfig planImage reads (a subset, so tests can build one by hand). */
export type ImageConfig = Pick<DeployConfig, "stack" | "image" | "imageRef" | "version" | "registry" | "builder" | "hosts">;

/** True when every host is this machine (the `local` stack): nothing has to pull from a registry. */
export function allHostsLocal(cfg: Pick<DeployConfig, "hosts">): boolean {
  const hosts = Object.values(cfg.hosts);
  return hosts.length > 0 && hosts.every((h) => h.kind === "local");
}

/** `registry/path` without tag or digest. */
export function repositoryOf(cfg: Pick<DeployConfig, "imageRef">): string {
  const r = cfg.imageRef;
  return r.registry ? `${r.registry}/${r.path}` : r.path;
}

/** True when the stack did not name a version (config.ts derived "latest" from a bare repository). */
export function versionIsDefault(cfg: Pick<DeployConfig, "imageRef" | "version">): boolean {
  return !cfg.imageRef.tag && !cfg.imageRef.digest && cfg.version === "latest";
}

/** The release version for an image digest: its first 12 hex digits (as config.ts derives one). */
export function versionFromDigest(digestOrRef: string): string {
  const m = /sha256:([a-f0-9]{12})/.exec(digestOrRef);
  if (!m) throw new Error(`no sha256 digest in "${digestOrRef}"`);
  return m[1];
}

/** `repo@sha256:...` from a repository and a manifest digest. */
export function pinnedRef(repository: string, digest: string): string {
  if (!DIGEST_RE.test(digest)) throw new Error(`"${digest}" is not a sha256 digest`);
  return `${repository}@${digest}`;
}

/** Decides how the release image is obtained. Pure: no resources, no network. */
export function planImage(cfg: ImageConfig): ImagePlan {
  const repository = repositoryOf(cfg);
  const local = allHostsLocal(cfg);

  if (DIGEST_RE.test(cfg.image)) {
    return { kind: "pinned", ref: cfg.image, version: cfg.version, reason: "railhead:image is a local image id" };
  }
  if (cfg.imageRef.digest) {
    return {
      kind: "pinned",
      ref: cfg.image,
      version: cfg.version,
      reason: cfg.builder ? "railhead:image pins a digest, so the builder is skipped (a rollback); set the bare repository again to build" : "railhead:image pins a digest",
    };
  }

  if (cfg.builder) {
    const b = cfg.builder;
    if (b.secrets.length > 0) {
      throw new Error(
        `railhead:builder.secrets (${b.secrets.join(", ")}) is not supported: @pulumi/docker's Image has no build secrets, and passing them as build args would store them in the image history. ` +
          "Next: remove builder.secrets and fetch what the build needs another way (e.g. a base image), or build in CI and set railhead:image to the pushed repo@sha256 digest.",
      );
    }
    const explicit = versionIsDefault(cfg) ? undefined : cfg.version;
    const tag = cfg.imageRef.tag ?? explicit ?? `railhead-${cfg.stack}`;
    const push = !(local && !cfg.registry);
    return {
      kind: "build",
      imageName: `${repository}:${tag}`,
      push,
      context: b.context,
      dockerfile: join(b.context, b.dockerfile),
      target: b.target,
      args: { ...b.args },
      // A local-only build runs on this engine: its own platform (no emulation on an arm64 laptop).
      platform: push ? b.platform : undefined,
      registry: cfg.registry,
      version: explicit,
    };
  }

  // A tag. An image without a registry host on an all-local stack lives in this machine's engine
  // (e.g. one built by hand): no registry can answer for it.
  if (local && !cfg.imageRef.registry && !cfg.registry) {
    return {
      kind: "as-given",
      ref: cfg.image,
      version: cfg.version,
      reason: "an all-local stack uses the image in this machine's Docker engine by its tag",
    };
  }
  return { kind: "resolve", name: cfg.image, repository, registry: cfg.registry, version: cfg.version };
}

// ---------------------------------------------------------------------------------------------
// Resources

export interface ResolveImageOptions {
  /** Parent of the resources (the program's root component), so they nest in the preview. */
  readonly parent?: pulumi.Resource;
  /** Resource name prefix (default `<service>` -> `<service>-image`). */
  readonly name?: string;
  /** Build during `pulumi preview` too (default false: a PR preview neither builds nor pushes). */
  readonly buildOnPreview?: boolean;
}

export interface ResolvedImage {
  /** What releases run: `repo@sha256:...`, `repo:tag@sha256:...`, a local image id, or a local tag. */
  readonly ref: pulumi.Output<string>;
  /** The release version (container name suffix); an Output when derived from a build's digest. */
  readonly version: pulumi.Output<string> | string;
  /** Resources releases must depend on (the build); empty when nothing is built. */
  readonly resources: pulumi.Resource[];
}

function registrySecret(secrets: Record<string, pulumi.Output<string>>, name: string): pulumi.Output<string> {
  const value = secrets[name];
  if (!value) throw new Error(`railhead:registry.password names secret "${name}", which is not set. Next: pulumi config set --secret --path 'railhead:secrets.${name}' <token>`);
  return value;
}

/**
 * Registers what the plan needs and returns the image releases must run.
 * `cfg` and `secrets` are what `loadConfig()` returns.
 */
export function resolveImage(cfg: DeployConfig, secrets: Record<string, pulumi.Output<string>>, opts: ResolveImageOptions = {}): ResolvedImage {
  const plan = planImage(cfg);
  const base = opts.name ?? cfg.service;
  const parentOpts = opts.parent ? { parent: opts.parent } : {};

  switch (plan.kind) {
    case "pinned":
    case "as-given":
      pulumi.log.info(`image: ${plan.ref} (version ${plan.version}): ${plan.reason}`, opts.parent);
      return { ref: pulumi.output(plan.ref), version: plan.version, resources: [] };

    case "resolve": {
      let provider: docker.Provider | undefined;
      if (plan.registry) {
        provider = new docker.Provider(
          `${base}-registry`,
          {
            registryAuth: [
              { address: plan.registry.server, username: plan.registry.username, password: registrySecret(secrets, plan.registry.passwordSecret) },
            ],
          },
          parentOpts,
        );
      }
      pulumi.log.info(`image: ${plan.name} is pinned to its registry digest (read at preview and up); version ${plan.version}`, opts.parent);
      const found = docker.getRegistryImageOutput({ name: plan.name }, { ...parentOpts, provider });
      const ref = found.sha256Digest.apply((digest) => {
        if (!DIGEST_RE.test(digest))
          throw new Error(`image: the registry returned no digest for ${plan.name}. Next: check the tag exists (docker manifest inspect ${plan.name}) and the registry credentials`);
        // Keep the tag for people reading `docker ps`; the digest decides what is pulled.
        return `${plan.name}@${digest}`;
      });
      return { ref, version: plan.version, resources: provider ? [provider] : [] };
    }

    case "build": {
      pulumi.log.info(
        `image: building ${plan.dockerfile} (context ${plan.context}) as ${plan.imageName}` +
          (plan.push ? `, pushing to ${plan.registry?.server ?? "its registry"}; releases run the pushed digest` : " in the local engine (no push); releases run the image id") +
          (plan.version ? `; version ${plan.version}` : "; version = the first 12 hex digits of the digest"),
        opts.parent,
      );
      const image = new docker.Image(
        `${base}-image`,
        {
          imageName: plan.imageName,
          build: {
            context: plan.context,
            dockerfile: plan.dockerfile,
            target: plan.target,
            args: plan.args,
            platform: plan.platform,
          },
          skipPush: !plan.push,
          buildOnPreview: opts.buildOnPreview ?? false,
          registry: plan.push && plan.registry
            ? { server: plan.registry.server, username: plan.registry.username, password: registrySecret(secrets, plan.registry.passwordSecret) }
            : undefined,
        },
        parentOpts,
      );
      // Pushed: repoDigest is `repo@sha256:<manifest digest>`. Local only: the image id `sha256:...`.
      const ref = image.repoDigest.apply((d) => {
        if (!d || !(DIGEST_RE.test(d) || /@sha256:[a-f0-9]{64}$/.test(d)))
          throw new Error(`image: the build of ${plan.imageName} returned no digest ("${d}"). Next: run the build by hand (docker build -f ${plan.dockerfile} ${plan.context}) and check the push`);
        return d;
      });
      const version = plan.version ?? ref.apply(versionFromDigest);
      return { ref, version, resources: [image] };
    }
  }
}
