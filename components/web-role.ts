// WebRole: a proxied role. One zero-downtime release per host (the tool health-checks the new
// container and switches the host's proxy to it), in boot groups, after the migration.
import * as pulumi from "@pulumi/pulumi";
import type { HostCommand } from "./host-command";
import type { Proxy } from "./proxy";
import { registerReleases, type RoleArgs } from "./release";

export interface WebRoleArgs extends RoleArgs {
  /** The proxy of each of the role's hosts; a release waits for its backend there. */
  readonly proxies: Record<string, Proxy>;
}

export class WebRole extends pulumi.ComponentResource {
  /** Release commands per boot group, in order. */
  readonly groups: HostCommand[][];
  readonly releases: Record<string, HostCommand>;

  constructor(name: string, args: WebRoleArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("railhead:index:WebRole", name, {}, opts);
    if (!args.spec.web || !args.spec.role.proxy) throw new Error(`role ${args.spec.role.name} is not proxied; use JobRole`);
    const role = args.spec.role.name;
    const r = registerReleases(this, name, args, (host) => {
      const proxy = args.proxies[host];
      const backend = proxy?.services[role];
      if (!proxy || !backend) throw new Error(`role ${role}: no proxy backend on host ${host}`);
      return [proxy.boot, backend];
    });
    this.groups = r.groups;
    this.releases = r.byHost;
    this.registerOutputs({ version: args.spec.version, hosts: args.spec.role.hosts });
  }
}
