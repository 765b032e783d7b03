// =============================================================================================
// TEST EQUIPMENT — NOT A RAILHEAD FEATURE.
// The e2e APPLY HARNESS: runs the Railhead program (index.ts) under Pulumi's mock runtime
// (`pulumi.runtime.setMocks`) and applies every registered resource to real local targets (rig
// hosts over SSH, this machine and its Docker engine, a local registry / S3 endpoint), keeping state
// between runs. There is no Pulumi CLI or provider plugin here: nothing this harness does is a
// `pulumi up`. It mirrors the engine's and providers' DOCUMENTED semantics for exactly the types
// Railhead uses, and fails loudly on anything else.
//
// How it works
// - One child process per `up` (engine/child.ts): the SDK's runtime settings and module graph are
//   process-global, so a program can only run once per process.
// - Options: the mock's `newResource` is not given resource options, so the harness wraps
//   `MockMonitor.prototype.registerResource` (@pulumi/pulumi/runtime/mocks.js) and reads them from
//   the RegisterResourceRequest itself: parent, dependencies (dependsOn + the resources inputs
//   came from), propertyDependencies, protect, ignoreChanges, retainOnDelete, deleteBeforeReplace
//   (+ "defined"), replaceOnChanges, additionalSecretOutputs, replaceWith, replacementTrigger,
//   provider, customTimeouts. mocks.js calls `mocks.newResource` synchronously inside
//   registerResource, so the request is handed to exactly its own newResource (checked by type
//   and name; a mismatch fails the run).
// - Ordering: a resource is applied inside `newResource`, which returns only when the real work is
//   done. The Node SDK sends a registration only after every `dependsOn` resource's URN and every
//   Output input has resolved (runtime/resource.js prepareResource / serializeProperties), and a
//   resource's URN and outputs resolve only when its RegisterResource call returns. So a dependent
//   is applied strictly after its dependencies, as the engine's step executor does, and
//   independent resources run concurrently, as the engine's parallel steps do. Verified by
//   scenarios/harness-semantics.test.ts for dependsOn, for Output inputs and for a component in
//   dependsOn (waits for its children).
//
// Semantics mirrored (sources as cited in /work/shared/research/pulumi.md)
// - Step per registration (pulumi/pulumi pkg/resource/deploy/step_generator.go): not in state ->
//   create; in state -> diff the inputs after `ignoreChanges` (old values kept for those paths):
//   no change -> same (nothing runs); a change to a replace-forcing input (per provider below) or
//   to a `replaceOnChanges` path, a replaced `replaceWith` resource, or a changed
//   `replacementTrigger` -> replace; any other change -> update.
// - Replace: create-before-delete by default: the new create runs in place, the old resource's
//   delete runs AT THE END of the update (pulumi/pulumi#9979: "creates all new resources and
//   schedules the deletion ... at the very end"); with `deleteBeforeReplace` (explicit option, which
//   overrides the provider's default, step_generator.go) the old delete runs first. Pending deletes
//   left by a failed run are processed first on the next run (#9979).
// - Delete of resources no longer registered: at the end, dependents before dependencies and
//   children before parents (reverse topological order). `protect` refuses a delete or a replace:
//   the run fails naming the resource. `retainOnDelete` drops it from state without deleting.
// - Failure: a failed create/update fails the `up` with the provider's error; successful steps are
//   saved; dependents never run (their registration waits on a rejected URN); no new step starts
//   after a failure (the engine stops scheduling, in-flight steps finish); deletes at the end do not
//   run. A failed create is not saved; a failed update keeps the old state (harness choice: the
//   provider's partial-failure state is not modelled).
// - pulumi-command (pulumi/pulumi-command provider/pkg/provider/remote/commandController.go,
//   local/…): create runs `create` (nothing if unset); update runs `update` if set, else `create`,
//   with the NEW inputs; delete runs `delete` from state (OLD command, OLD connection). Only
//   `triggers` forces replacement (schema.json replaceOnChanges; common/inputs.go), every other
//   input change (create, update, delete, stdin, logging, connection, ...) is an update. A failure's
//   error is `"%w: running %q:\n%s"` with the command and its combined output
//   (remote/commandOutputs.go). stdout/stderr outputs lose one trailing newline. Remote commands
//   go to sshd as an exec request (Go `session.Run`; here the OpenSSH client, same sshd path) with
//   stdin piped; `environment` on remote fails (it needs sshd AcceptEnv, pulumi-command #48).
//   Dial retries: dialErrorLimit (default 10, -1 unlimited; the harness caps that at 180 s),
//   perDialTimeout, 100 ms backoff x1.5 up to 5 s (dialWithRetry, retry.Until). Without `hostKey`
//   host keys are ignored (#794); with it they are pinned (remote/connection.go SSHConfig:
//   ParseAuthorizedKey, FixedHostKey, HostKeyAlgorithms [type]; a mismatch is a dial error, retried;
//   engine/ssh.ts; self-test scenarios/ssh-pinning.test.ts).
// - tls.PrivateKey (hashicorp/terraform-provider-tls internal/provider/resource_private_key.go):
//   create generates the key (ED25519 only here), every input replaces, update/delete do nothing.
//   A booted hcloud server's rig host presents the key of its user-data's `ssh_keys` (engine/rig.ts).
// - CopyToRemote (remote/copyController.go, copy.go): SFTP, parents created (#1161), relative paths
//   against the login directory; update copies only when the asset hash or remotePath changed;
//   `triggers` replace; delete does nothing (files stay).
// - hcloud (terraform-provider-hcloud ForceNew, research/pulumi.md §3): Server image, location,
//   userData, sshKeys replace (Railhead ignores userData/sshKeys changes). A created server is a NEW
//   MACHINE: its rig host is wiped (containers, volumes, networks, images, $HOME, /tmp,
//   /run/cloud-init, firewall), gets a new id, and cloud-init "boots" in the background: the
//   user-data is validated with Debian's `cloud-init schema`, what a rig host can take is applied,
//   the rest recorded, then cloud-init's own status files are written so the REAL
//   `cloud-init status --wait` on the host returns (it blocks until then). Deleting a server wipes
//   its host. PrimaryIp/Server addresses are the rig host's. Firewalls attached by server id or
//   label selector become iptables rules on the host's public interface (eth0) in its netns;
//   private-network traffic is not filtered (as on Hetzner); IPv6 sources are recorded only.
//   SshKey, Network, NetworkSubnet are recorded; ServerNetwork checks the requested IP is the rig
//   host's private IP.
// - aws: Bucket (CreateBucket/DeleteBucket) and BucketVersioning are applied to the S3 endpoint the
//   resource's explicit aws.Provider names (`endpoints[].s3`, path style, SigV4 with its keys;
//   loopback/rig addresses only, engine/s3.ts); lifecycle, encryption, public access block and IAM
//   are recorded. A provider without an endpoint (real AWS) is recorded, never called.
// - docker: the `getRegistryImage` invoke (Railhead pins a tag to its registry digest) reads the
//   manifest digest from the rig's registry v2 API (plain HTTP there; HTTPS on a real registry).
// - docker.Image (@pulumi/docker's native Image; engine/docker.ts buildImage): built with THIS
//   machine's Docker engine (`docker build -f <dockerfile> -t <imageName> --build-arg ... [--target]
//   [--platform] <context>`, paths relative to the project directory) on create and on update;
//   every input change is an update (a rebuild), none forces a replace. As the provider's Check
//   does, the harness adds `build.contextDigest` (a hash of the context's files after
//   .dockerignore, and of the Dockerfile), so an edited source file is an update and an unchanged
//   context is `same` (nothing built). `skipPush`: no push, `repoDigest` = the local image id
//   (`sha256:...`, the docs' "local-only images" rule); otherwise `docker push` and `repoDigest` =
//   `repo@sha256:<manifest digest>`, to the rig's registry only (127.0.0.1:5000 / 10.77.0.1:5000;
//   any other registry, Docker Hub included, fails the step by name). Other outputs: imageName,
//   baseImageName, context, dockerfile, platform, registryServer. Delete keeps the tag ("does not
//   delete tags, locally or remotely, when destroyed"). Preview: the harness only models `up`, and a
//   build never runs outside create/update (buildOnPreview false = no build on preview).
//   Harness deviation: builds run with `--network host`, because this machine's dockerd may run with
//   --iptables=false (no NAT for build containers), as the rig's own image builds do.
// - Any other custom resource type, and any other invoke, fails the run by name.
// =============================================================================================
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadStackFile } from "../support/stack-config";
import type { Job, UpResultFile } from "./engine/child";
import { loadState, type StackState } from "./engine/state";
import { REPO } from "./engine/rig";

export { REPO };

export interface StackSpec {
  /** Stack name (`pulumi stack` name; names the state file). */
  stack: string;
  /** A stack file (default Pulumi.<stack>.yaml in the repo, or tests/e2e/stacks/<stack>.yaml). */
  file?: string;
  /** Inline config instead of (or over) the file: `railhead:` keys with or without the prefix. */
  config?: Record<string, unknown>;
  /** Secret values by name (railhead:secrets.NAME). */
  secrets?: Record<string, string>;
  /** config host name -> rig host name. */
  hostMap?: Record<string, string>;
  /** Program module (default: the repo's index.ts). */
  program?: string;
  /** Apply to rig hosts (default true). */
  useRig?: boolean;
}

export interface UpResult extends UpResultFile {
  log: string;
  /** Real commands and copies run on hosts or locally (0 on an idempotent up). */
  executed: number;
}

export interface HarnessOptions {
  /** Where state files and logs live (default tmp/e2e under the repo). */
  dir?: string;
  /** Per-up time limit. */
  timeoutMs?: number;
}

export class Harness {
  readonly dir: string;
  private readonly timeoutMs: number;
  private seq = 0;

  constructor(opts: HarnessOptions = {}) {
    this.dir = opts.dir ?? join(REPO, "tmp", "e2e");
    this.timeoutMs = opts.timeoutMs ?? 600_000;
    mkdirSync(join(this.dir, "state"), { recursive: true });
    mkdirSync(join(this.dir, "runs"), { recursive: true });
  }

  stateFile(stack: string): string {
    return join(this.dir, "state", `${stack}.json`);
  }

  state(stack: string): StackState {
    return loadState(this.stateFile(stack), stack);
  }

  /** Forgets a stack's state (the rig hosts are wiped by the next server create). */
  forget(stack: string): void {
    rmSync(this.stateFile(stack), { force: true });
  }

  /** `pulumi destroy`: an up of a program that registers nothing, so every resource is deleted. */
  async destroy(spec: StackSpec): Promise<UpResult> {
    return this.up({ ...spec, program: join(__dirname, "programs", "empty.ts") });
  }

  async up(spec: StackSpec): Promise<UpResult> {
    const run = `${Date.now()}-${process.pid}-${++this.seq}-${spec.stack}`;
    const base = join(this.dir, "runs", run);
    const { values, secretKeys } = stackConfig(spec);
    const job: Job = {
      project: "railhead",
      stack: spec.stack,
      program: spec.program ?? join(REPO, "index.ts"),
      config: values,
      secretKeys,
      stateFile: this.stateFile(spec.stack),
      resultFile: `${base}.result.json`,
      logFile: `${base}.log`,
      hostMap: spec.hostMap ?? {},
      useRig: spec.useRig ?? true,
    };
    writeFileSync(`${base}.job.json`, JSON.stringify(job, null, 2));
    writeFileSync(job.logFile, "");
    const stderr = await new Promise<string>((resolve) => {
      const child = spawn(process.execPath, ["--import", "tsx", join(__dirname, "engine", "child.ts"), `${base}.job.json`], {
        cwd: REPO,
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, PULUMI_CONFIG: undefined },
      });
      let err = "";
      child.stdout.on("data", (b: Buffer) => (err += b.toString()));
      child.stderr.on("data", (b: Buffer) => (err += b.toString()));
      const timer = setTimeout(() => {
        err += `\n[harness] up timed out after ${this.timeoutMs / 1000}s; killed`;
        child.kill("SIGKILL");
      }, this.timeoutMs);
      child.on("close", () => {
        clearTimeout(timer);
        resolve(err);
      });
    });
    const log = readFileSync(job.logFile, "utf8");
    if (!existsSync(job.resultFile)) {
      return { ok: false, error: `harness child produced no result:\n${stderr}`, registrations: [], steps: [], actions: [], outputs: {}, notes: [], seconds: 0, log, executed: 0 };
    }
    const result = JSON.parse(readFileSync(job.resultFile, "utf8")) as UpResultFile;
    const executed = result.actions.filter((a) => a.kind === "command" || a.kind === "copy" || a.kind === "server").length;
    return { ...result, log: stderr ? `${log}\n[child output]\n${stderr}` : log, executed };
  }
}

/** Raw config values and secret keys for the mock runtime, from a stack file and/or inline config. */
export function stackConfig(spec: StackSpec): { values: Record<string, string>; secretKeys: string[] } {
  const override = Object.fromEntries(Object.entries(spec.config ?? {}).map(([k, v]) => [k.includes(":") ? k : `railhead:${k}`, v]));
  let file = spec.file;
  if (!file) {
    const e2e = join(__dirname, "stacks", `${spec.stack}.yaml`);
    file = existsSync(e2e) ? e2e : join(REPO, `Pulumi.${spec.stack}.yaml`);
  }
  if (!existsSync(file)) {
    file = join(__dirname, "stacks", "empty.yaml");
  }
  const fx = loadStackFile(spec.stack, { file, override, extraSecrets: spec.secrets });
  // The e2e stack files name the default rig's registry; a second rig (RH_RIG_PREFIX) serves the
  // same images at its own address (rig.json registry.pull).
  const rigJson = process.env.E2E_RIG_JSON ?? join(REPO, ".rig", "rig.json");
  const pull = existsSync(rigJson) ? (JSON.parse(readFileSync(rigJson, "utf8")) as { registry?: { pull?: string } }).registry?.pull : undefined;
  if (pull && pull !== "10.77.0.1:5000") {
    for (const [k, v] of Object.entries(fx.values)) fx.values[k] = v.split("10.77.0.1:5000/").join(`${pull}/`);
  }
  return { values: fx.values, secretKeys: fx.secretKeys };
}
