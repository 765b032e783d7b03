// How components run the host tool on a host: one helper that turns an argv into a
// remote.Command (SSH) or local.Command (this machine) with Railhead's rules applied
// (DESIGN.md decision 3): no triggers, data in arguments or stdin, secrets only in stdin,
// no `environment`, addPreviousOutputInEnv off, everything after the host's tool upload.
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import type { HostKind } from "./config";

/** What a component needs to know about a host to run commands on it. Host implements it. */
export interface HostHandle {
  /** The host's name in `railhead:hosts`. */
  readonly hostName: string;
  readonly kind: HostKind;
  /** SSH connection for hcloud/ssh hosts (secret: it holds the private key); undefined for local. */
  readonly connection?: pulumi.Input<command.types.input.remote.ConnectionArgs>;
  /** Public address (or 127.0.0.1 for local). */
  readonly address: pulumi.Output<string>;
  /** Address on the private network, if any. */
  readonly privateAddress: pulumi.Output<string | undefined>;
  /** Changes when the server is rebuilt (the hcloud server id; the address for ssh; "local"). */
  readonly identity: pulumi.Output<string>;
  /** Absolute-or-$HOME path of the uploaded host tool (its name holds the tool's hash). */
  readonly toolPath: string;
  /** Resources every command on this host must wait for (readiness, tool upload). */
  readonly ready: pulumi.Resource[];
}

/** Single-quotes a word for a POSIX shell. */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'"'"'`)}'`;
}

/**
 * Builds `RAILHEAD_HOST_IDENTITY=<id> bash "$HOME/.railhead/bin/railhead-host-<hash>" --host-label <host> <argv...>`.
 * Inputs may be Outputs (e.g. an address); never pass a secret here: use stdin.
 *
 * The identity prefix is there for Pulumi, not for the tool: a rebuilt hcloud server keeps its
 * PrimaryIp, so the connection does not change and nothing would re-run on the new, empty server.
 * With the server id in every command string, a rebuild changes every command on that host, which
 * is an update that re-runs it (DESIGN.md decision 3). The tool ignores the variable.
 */
export function toolCommand(host: HostHandle, argv: pulumi.Input<string>[]): pulumi.Output<string> {
  return pulumi.all([host.identity, pulumi.all(argv)]).apply(([identity, words]) => {
    const toolPath = host.toolPath.startsWith("$HOME/") ? `"$HOME/${host.toolPath.slice(6)}"` : shellQuote(host.toolPath);
    return [`RAILHEAD_HOST_IDENTITY=${shellQuote(identity)}`, "bash", toolPath, "--host-label", shellQuote(host.hostName), ...words.map(shellQuote)].join(" ");
  });
}

export interface HostCommandArgs {
  /** argv for the tool on create and on every update (a changed argv or stdin re-runs it). */
  readonly create: pulumi.Input<string>[];
  /** argv run when the resource is deleted (a role removed, a host dropped); only touches what this instance made. */
  readonly delete?: pulumi.Input<string>[];
  /** Data and secrets; sent on the command's standard input, never as arguments. */
  readonly stdin?: pulumi.Input<string>;
  /** Streamed output: "stdoutAndStderr" (default) prints the deploy log. */
  readonly logging?: "stdout" | "stderr" | "stdoutAndStderr" | "none";
}

export type HostCommand = command.remote.Command | command.local.Command;

/** Registers one tool invocation on a host. */
export function hostCommand(
  host: HostHandle,
  name: string,
  args: HostCommandArgs,
  opts: pulumi.CustomResourceOptions = {},
): HostCommand {
  const create = toolCommand(host, args.create);
  const del = args.delete ? toolCommand(host, args.delete) : undefined;
  const dependsOn = [...host.ready, ...toArray(opts.dependsOn)];
  const common = {
    create,
    delete: del,
    stdin: args.stdin,
    logging: args.logging ?? "stdoutAndStderr",
    addPreviousOutputInEnv: false,
  };
  // stdout and stderr are kept secret in state: a tool never prints a secret, but state is not the
  // place to find out that one did.
  const secretOutputs = { additionalSecretOutputs: ["stdout", "stderr"] };
  if (host.kind === "local" || !host.connection) {
    return new command.local.Command(name, { ...common, interpreter: ["/bin/bash", "-c"] }, { ...opts, ...secretOutputs, dependsOn });
  }
  return new command.remote.Command(name, { ...common, connection: host.connection }, { ...opts, ...secretOutputs, dependsOn });
}

function toArray(d: pulumi.CustomResourceOptions["dependsOn"]): pulumi.Input<pulumi.Resource>[] {
  if (!d) return [];
  return Array.isArray(d) ? d : [d as pulumi.Input<pulumi.Resource>];
}
