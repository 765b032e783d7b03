// JobRole: a role without the proxy (jobs, workers). One release per host, in boot groups; ready
// when its container is healthy or still running after the readiness delay.
import * as pulumi from "@pulumi/pulumi";
import type { HostCommand } from "./host-command";
import { registerReleases, type RoleArgs } from "./release";

export type JobRoleArgs = RoleArgs;

export class JobRole extends pulumi.ComponentResource {
  /** Release commands per boot group, in order. */
  readonly groups: HostCommand[][];
  readonly releases: Record<string, HostCommand>;

  constructor(name: string, args: JobRoleArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("railhead:index:JobRole", name, {}, opts);
    if (args.spec.web) throw new Error(`role ${args.spec.role.name}: a job role has no proxy settings`);
    const r = registerReleases(this, name, args);
    this.groups = r.groups;
    this.releases = r.byHost;
    this.registerOutputs({ version: args.spec.version, hosts: args.spec.role.hosts });
  }
}
