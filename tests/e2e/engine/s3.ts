// TEST EQUIPMENT (e2e apply harness): aws S3 resources against a local S3-compatible endpoint (the
// one the program's aws.Provider names in `endpoints[].s3`, path style), signed with SigV4 using the
// provider's accessKey/secretKey. Only loopback and rig addresses are ever contacted; a provider
// without an endpoint (real AWS) is recorded, never called.
import { createHash, createHmac } from "node:crypto";
import http from "node:http";

export interface S3Target {
  endpoint: URL;
  region: string;
  accessKey: string;
  secretKey: string;
}

const ALLOWED_HOST = /^(127\.\d+\.\d+\.\d+|localhost|10\.77\.0\.\d+|10\.78\.0\.\d+)$/;

export function s3Target(providerInputs: Record<string, unknown> | undefined): S3Target | undefined {
  if (!providerInputs) return undefined;
  // Provider inputs of object type arrive JSON-encoded (provider config is strings on the wire).
  const raw = providerInputs.endpoints;
  const eps = (typeof raw === "string" ? JSON.parse(raw) : raw) as Array<{ s3?: string }> | undefined;
  const url = eps?.find((e) => e.s3)?.s3;
  if (!url) return undefined;
  const endpoint = new URL(url);
  // A second rig (RH_RIG_PUBLIC, as tests/rig/rig.sh takes it) has its own gateway at .1.
  const secondRigGateway = process.env.RH_RIG_PUBLIC && /^10\.\d+\.\d+$/.test(process.env.RH_RIG_PUBLIC) ? `${process.env.RH_RIG_PUBLIC}.1` : undefined;
  if (!ALLOWED_HOST.test(endpoint.hostname) && endpoint.hostname !== secondRigGateway) throw new Error(`harness: S3 endpoint ${url} is not loopback or a rig address; the harness only talks to local targets`);
  return {
    endpoint,
    region: String(providerInputs.region ?? "us-east-1"),
    accessKey: String(providerInputs.accessKey ?? "harness"),
    secretKey: String(providerInputs.secretKey ?? "harness"),
  };
}

const sha256 = (s: string | Buffer) => createHash("sha256").update(s).digest("hex");
const hmac = (k: Buffer | string, s: string) => createHmac("sha256", k).update(s).digest();

/** One signed path-style request; resolves with status and body. */
export function s3Request(t: S3Target, method: string, bucket: string, query: string, body = ""): Promise<{ status: number; body: string }> {
  const now = new Date();
  const amzDate = now.toISOString().replace(/[:-]|\.\d{3}/g, "");
  const date = amzDate.slice(0, 8);
  const path = `${t.endpoint.pathname.replace(/\/$/, "")}/${encodeURIComponent(bucket)}`;
  const host = t.endpoint.host;
  const payloadHash = sha256(body);
  const canonicalQuery = query ? query.split("&").map((p) => (p.includes("=") ? p : `${p}=`)).sort().join("&") : "";
  const headers: Record<string, string> = { host, "x-amz-content-sha256": payloadHash, "x-amz-date": amzDate };
  if (body) headers["content-md5"] = createHash("md5").update(body).digest("base64");
  const signed = Object.keys(headers).sort();
  const canonicalHeaders = signed.map((h) => `${h}:${headers[h]}\n`).join("");
  const canonical = [method, path, canonicalQuery, canonicalHeaders, signed.join(";"), payloadHash].join("\n");
  const scope = `${date}/${t.region}/s3/aws4_request`;
  const toSign = ["AWS4-HMAC-SHA256", amzDate, scope, sha256(canonical)].join("\n");
  const key = hmac(hmac(hmac(hmac(`AWS4${t.secretKey}`, date), t.region), "s3"), "aws4_request");
  const signature = createHmac("sha256", key).update(toSign).digest("hex");
  headers.authorization = `AWS4-HMAC-SHA256 Credential=${t.accessKey}/${scope}, SignedHeaders=${signed.join(";")}, Signature=${signature}`;
  return new Promise((resolve, reject) => {
    const req = http.request({ host: t.endpoint.hostname, port: t.endpoint.port || 80, method, path: query ? `${path}?${query}` : path, headers }, (res) => {
      let b = "";
      res.on("data", (c: Buffer) => (b += c.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: b }));
    });
    req.on("error", reject);
    req.setTimeout(10_000, () => req.destroy(new Error(`S3 ${method} ${bucket}?${query} timed out`)));
    req.end(body);
  });
}

export function versioningXml(status: string): string {
  return `<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>${status}</Status></VersioningConfiguration>`;
}
