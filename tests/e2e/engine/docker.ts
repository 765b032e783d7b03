// TEST EQUIPMENT (e2e apply harness): the docker provider's `getRegistryImage` invoke against the
// rig's registry: the tag's manifest digest from the registry's v2 API (what
// terraform-provider-docker's docker_registry_image data source reads). Rig registries only; the
// rig's registry speaks plain HTTP, where a real registry would be HTTPS.
import http from "node:http";

const RIG_REGISTRY = /^(127\.0\.0\.1|10\.77\.0\.1):\d+$/;

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
