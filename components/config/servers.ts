// `railhead:servers`: roles (Kamal's servers), each a host list or `{hosts, cmd, options, env, proxy}`.
import { z } from "zod";
import { command, dockerOptions, int, nameKey, obj, port } from "./shared";
import { RESERVED_ROLE } from "./hardening";
import { envSchema, ENV_EXAMPLE } from "./env";
import type { Section } from "./section";

export const DOMAIN_RE = /^(?=.{1,253}$)(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i;

export const domain = z
  .string()
  .regex(DOMAIN_RE, { error: (iss) => `"${String(iss.input)}" is not a domain name (no scheme, port or path)` })
  .refine((d) => !d.startsWith("*."), {
    error: (iss) => `"${String(iss.input)}" is a wildcard domain, which Railhead does not route (the proxy maps exact host names and a wildcard certificate needs a DNS challenge); list each domain`,
    params: { example: "hosts: [app.example.com, www.example.com]" },
  });

/** A role name: a name that is not one of Railhead's own containers or labels. */
export const roleName = nameKey.refine((n) => !RESERVED_ROLE.test(n), {
  error: (iss) => `"${String(iss.input)}" is reserved: Railhead's own containers and labels use it (litestream, proxy, tls, migrate, drill, railhead-*); pick another role name`,
});

const hostList = z.array(z.string().min(1)).min(1, { error: "a role needs at least one host; remove the role or name a host from railhead:hosts" });

const notHere = (what: string) => `not supported here: ${what}`;
const underProxy = (k: string) => `set under railhead:proxy (shared by every proxied role): railhead:proxy.${k}`;

export const roleProxySchema = z
  .union(
    [
      z.boolean(),
      obj(
        {
          hosts: z.array(domain).optional().describe("domains for this role (default railhead:proxy.hosts)"),
          ssl: z.boolean().optional().describe("default railhead:proxy.ssl"),
          appPort: port().optional().describe("default railhead:proxy.appPort"),
        },
        {
          host: "a role's domains are a list: hosts: [app.example.com]",
          healthcheck: underProxy("healthcheck"),
          response_timeout: underProxy("responseTimeout"),
          responseTimeout: underProxy("responseTimeout"),
          forward_headers: notHere("HAProxy forwards X-Forwarded-For"),
          buffering: notHere("no request buffering settings"),
          path_prefix: notHere("routing is by domain"),
          logging: notHere("proxy logs go to Docker's json-file driver"),
        },
      ),
    ],
    { error: "proxy is true, false or `{ hosts, ssl, appPort }`" },
  )
  .describe("proxy this role (default: only the primary role `web`)");

export const OPTION_RE = /^[a-z][a-z0-9-]*$/;

export const roleObject = obj(
  {
    hosts: hostList.describe("host names from `railhead:hosts`"),
    cmd: command("cmd").optional().describe("container command, e.g. bin/jobs (split into words as the host tool splits them; quotes must balance)"),
    options: dockerOptions(),
    env: envSchema.optional(),
    proxy: roleProxySchema.optional(),
    stopTimeout: int(1, 3600, "a number of seconds").optional().describe("docker stop -t for this role (default railhead:stopTimeout)"),
  },
  {
    labels: notHere("containers carry railhead.* labels"),
    logging: notHere("logs use Docker's json-file driver with a size cap"),
    asset_path: notHere("there is no asset bridging yet"),
    tags: "Kamal's env tags: put the role's env here as env: { clear: {...} }",
    hosts_: "=hosts",
    host: "=hosts",
    servers: "=hosts",
    command: "=cmd",
  },
);

export const roleSchema = z
  .union([hostList.transform((hosts) => ({ hosts })), roleObject], {
    error: (iss) =>
      typeof iss.input === "string"
        ? `a role is a list of host names, e.g. [${iss.input}], or { hosts: [...], cmd: ... }`
        : "a role is a list of host names or `{ hosts: [...], cmd, options, env, proxy }`",
  })
  .describe("a role: a host list, or `{hosts, cmd, options, env, proxy}`");

export type RoleInput = { hosts: string[] } | z.output<typeof roleObject>;

export const servers: Section = {
  key: "servers",
  schema: z
    .record(roleName, roleSchema, {
      error: (iss) =>
        Array.isArray(iss.input)
          ? "servers is a map of roles, not a list of addresses (Kamal's short form): name each server in railhead:hosts and list the names per role"
          : undefined,
    })
    .refine((s) => Object.keys(s).length > 0, { error: "needs at least one role" }),
  entries: { name: roleName, value: roleSchema },
  examples: [
    [/^servers\.[^.]+\.hosts/, "web: { hosts: [web-1, web-2] }   (names from railhead:hosts)"],
    [/^servers\.[^.]+\.proxy/, "web: { hosts: [web-1], proxy: { hosts: [app.example.com], ssl: true } }"],
    [/^servers\.[^.]+\.cmd/, "job: { hosts: [job-1], cmd: bin/jobs }"],
    [/^servers\.[^.]+\.options/, "options: { memory: 1g, cpus: 2 }"],
    [/^servers\.[^.]+\.env/, ENV_EXAMPLE],
    [/^servers\.[^.]+\.stopTimeout/, "stopTimeout: 30"],
    [/^servers/, "railhead:servers: { web: { hosts: [web-1] }, job: { hosts: [web-1], cmd: bin/jobs } }"],
  ],
};
