// `railhead:proxy`: domains, TLS, the app port, health check and timeouts of the HAProxy front.
import { z } from "zod";
import { describeValue, ipv4, obj, port, seconds } from "./shared";
import { domain } from "./servers";
import type { Section } from "./section";

const flat = (k: string) => `Kamal's proxy.run settings are flat here: railhead:proxy.${k}`;
const unsupported = (why: string) => `not supported: ${why}`;

export const healthcheckSchema = obj(
  {
    path: z
      .string()
      .regex(/^\/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$/, { error: (iss) => `${describeValue(iss.input)} is not a URL path starting with "/" (no spaces, query or line breaks)` })
      .default("/up")
      .describe("answers 2xx when the app is up (Rails 8: /up)"),
    interval: seconds(1, "longest pause between checks (the first pauses are shorter: 0.05 s, doubling)"),
    timeout: seconds(5, "per check"),
  },
  { cmd: unsupported("the proxy checks the path over HTTP"), port: "the check goes to railhead:proxy.appPort" },
);

export const proxySchema = obj(
  {
    hosts: z.array(domain).default([]).describe("domains routed to the app (Kamal `host`/`hosts`); empty = catch-all"),
    host: domain.optional().describe("a single domain (same as hosts: [x])"),
    ssl: z.boolean().default(false).describe("automatic HTTPS through a Caddy front; needs at least one domain"),
    appPort: port().default(80).describe("the port the app listens on in its container (default 80)"),
    healthcheck: healthcheckSchema.prefault({}),
    responseTimeout: seconds(30, "longest request"),
    deployTimeout: seconds(30, "for a new release to become healthy"),
    drainTimeout: seconds(30, "for in-flight requests on the old release"),
    httpPort: port().default(80).describe("host port for HTTP"),
    httpsPort: port().default(443).describe("host port for HTTPS (with ssl)"),
    bindIps: z.array(ipv4()).default([]).describe("host addresses to publish the proxy on (default all)"),
    image: z.string().min(1).default("haproxy:2.6-bookworm").describe("HAProxy image (an official, pinned tag)"),
    tlsImage: z.string().min(1).default("caddy:2.10-alpine").describe("Caddy image for the TLS front"),
  },
  {
    run: "Kamal's proxy.run settings are flat here: httpPort, httpsPort, bindIps, image",
    http_port: "=httpPort",
    https_port: "=httpsPort",
    bind_ips: "=bindIps",
    forward_headers: unsupported("HAProxy forwards X-Forwarded-For and X-Forwarded-Proto"),
    buffering: unsupported("no request buffering settings"),
    path_prefix: unsupported("routing is by domain"),
    logging: unsupported("proxy logs go to Docker's json-file driver"),
    ssl_certificate_path: unsupported("Caddy gets Let's Encrypt certificates itself"),
    ssl_private_key_path: unsupported("Caddy gets Let's Encrypt certificates itself"),
    version: flat("image"),
    registry: flat("image"),
    repository: flat("image"),
  },
);

export const proxy: Section = {
  key: "proxy",
  schema: proxySchema.prefault({}),
  examples: [
    [/^proxy\.(hosts|host|ssl)/, "railhead:proxy: { hosts: [app.example.com], ssl: true }"],
    [/^proxy\.healthcheck/, "healthcheck: { path: /up, interval: 1, timeout: 5 }"],
    [/^proxy\.(httpPort|httpsPort|run|http_port|https_port)/, "railhead:proxy: { httpPort: 80, httpsPort: 443 }"],
    [/^proxy\.bindIps/, "bindIps: [203.0.113.10]"],
    [/^proxy\.appPort/, "appPort: 3000"],
    [/^proxy/, "railhead:proxy: { hosts: [app.example.com], appPort: 80, deployTimeout: 30 }"],
  ],
};
