// The assertions every stack file must pass, run by <stack>.test.ts (one process per stack, since
// the mock runtime is per process). The program runs under Pulumi's mock runtime; tests/support/
// mocks.ts records each RegisterResourceRequest, so parents, dependencies and secrecy are read as the
// engine would receive them.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { parse as parseYaml } from "yaml";
import { canary, loadStackFile } from "../support/stack-config";
import { isSecretWire, MOCK_DIGESTS, plainStrings, setupMocks, settle, unwrap, type Recorder, type Registration } from "../support/mocks";
import { bootGroups, type DeployConfig } from "../../components/config";
import { shellQuote } from "../../components/host-command";
import { planImage, repositoryOf, versionFromDigest, type ImagePlan } from "../../components/image";
import type { RailheadOutputs } from "../../components/program";

/** A fixed tool so names and command strings do not change with the tool's sources. */
export const STUB_TOOL = { text: "#!/usr/bin/env bash\necho railhead-host stub\n", hash: "0123456789ab" };

const COMMAND_TYPES = new Set(["command:remote:Command", "command:local:Command"]);
const EXPECTED_DIR = join(__dirname, "expected");
const GET_REGISTRY_IMAGE = "docker:index/getRegistryImage:getRegistryImage";

interface ExpectedImage {
  readonly kind: ImagePlan["kind"];
  /** The ref every release and the migration must run. */
  readonly ref: string;
  readonly version: string;
}

/** What the program must run, from the plan and what the mock docker provider answers (tests/support/mocks.ts). */
function expectedImage(config: DeployConfig): ExpectedImage {
  const plan = planImage(config);
  switch (plan.kind) {
    case "build": {
      const ref = plan.push ? `${repositoryOf(config)}@${MOCK_DIGESTS.pushed}` : MOCK_DIGESTS.imageId;
      return { kind: plan.kind, ref, version: plan.version ?? versionFromDigest(ref) };
    }
    case "resolve":
      return { kind: plan.kind, ref: `${plan.name}@${MOCK_DIGESTS.registry}`, version: plan.version };
    default:
      return { kind: plan.kind, ref: plan.ref, version: plan.version };
  }
}

/** What a stack file must produce, stated per stack file (not derived from the code under test). */
export interface StackExpectations {
  /** `name:/path` volumes each role's releases mount (`--volume`); a role not listed mounts none. The migration mounts the primary role's. */
  readonly volumes?: Record<string, string[]>;
  /** `--wait-after N` (boot.wait) by release resource name; every other release has none. */
  readonly waitAfter?: Record<string, number>;
}

/** The values of every `--OPTION VALUE` pair in a command string, in order. */
function optionValues(create: string, option: string): string[] {
  const words = create.split(" ");
  return words.flatMap((w, i) => (w === option ? [words[i + 1]] : []));
}

export function stackSuite(stack: string, expect: StackExpectations = {}): void {
  const fx = loadStackFile(stack);
  const canaries = Object.values(fx.secretValues);
  let rec: Recorder;
  let config: DeployConfig;
  let outputs: RailheadOutputs;
  let image: ExpectedImage;
  const regs = () => rec.registrations;
  const byName = (name: string, type?: string): Registration => {
    const found = regs().filter((r) => r.name === name && (!type || r.type === type));
    assert.equal(found.length, 1, `expected one registration named ${name}${type ? ` of ${type}` : ""}, found ${found.length}`);
    return found[0];
  };
  const byUrn = (urn: string) => regs().find((r) => r.urn === urn);
  const commands = () => regs().filter((r) => COMMAND_TYPES.has(r.type));
  /** Every URN `r` waits for, directly or through what it waits for. */
  const closure = (r: Registration): Set<string> => {
    const seen = new Set<string>();
    const todo = [...r.dependencies];
    while (todo.length) {
      const u = todo.pop() as string;
      if (seen.has(u)) continue;
      seen.add(u);
      todo.push(...(byUrn(u)?.dependencies ?? []));
    }
    return seen;
  };
  const waitsFor = (r: Registration, dep: Registration, direct = false) =>
    assert.ok((direct ? new Set(r.dependencies) : closure(r)).has(dep.urn), `${r.name} must wait for ${dep.name}${direct ? " (directly)" : ""}`);
  const releasesOf = (role: string) => config.roles.find((r) => r.name === role)?.hosts.map((h) => byName(`${role}-${h}/release`)) ?? [];

  before(async () => {
    rec = await setupMocks(stack, fx);
    const { loadConfig } = await import("../../components/config");
    const { railhead } = await import("../../components/program");
    const loaded = loadConfig(fx.raw);
    config = loaded.config;
    image = expectedImage(config);
    outputs = railhead(loaded, { tool: STUB_TOOL });
    await settle();
  });

  test(`${stack}: resource names match the committed list (stable and per stack)`, () => {
    const names = regs()
      .map((r) => `${r.type} ${r.name}`)
      .sort()
      .join("\n");
    const file = join(EXPECTED_DIR, `${stack}.names.txt`);
    if (process.env.UPDATE_EXPECTED === "1") {
      mkdirSync(EXPECTED_DIR, { recursive: true });
      writeFileSync(file, `${names}\n`);
    }
    assert.ok(existsSync(file), `${file} is missing; run with UPDATE_EXPECTED=1 once and commit it`);
    assert.equal(`${names}\n`, readFileSync(file, "utf8"), `resource names changed for ${stack}; a rename replaces resources (add aliases), or update the list with UPDATE_EXPECTED=1`);
    const urns = regs().map((r) => r.urn);
    assert.equal(new Set(urns).size, urns.length, "URNs are unique");
  });

  test(`${stack}: one component per host, proxy per web host, role and release per role host`, () => {
    const count = (t: string) => regs().filter((r) => r.type === t).length;
    const hostNames = Object.keys(config.hosts);
    const webHosts = new Set(config.roles.filter((r) => r.proxy).flatMap((r) => r.hosts));
    assert.equal(count("railhead:index:Host"), hostNames.length);
    assert.equal(count("railhead:index:Proxy"), webHosts.size);
    assert.equal(count("railhead:index:WebRole"), config.roles.filter((r) => r.proxy).length);
    assert.equal(count("railhead:index:JobRole"), config.roles.filter((r) => !r.proxy).length);
    assert.equal(count("railhead:index:Migrate"), config.migrate === false ? 0 : 1);
    assert.equal(count("railhead:index:Image"), 1);
    const releases = regs().filter((r) => r.name.endsWith("/release"));
    assert.equal(releases.length, config.roles.reduce((n, r) => n + r.hosts.length, 0));
    const hcloudHosts = Object.values(config.hosts).filter((h) => h.kind === "hcloud").length;
    assert.equal(count("hcloud:index/server:Server"), hcloudHosts);
    assert.equal(count("hcloud:index/primaryIp:PrimaryIp"), hcloudHosts);
    assert.equal(count("hcloud:index/sshKey:SshKey"), hcloudHosts > 0 ? 1 : 0, "one SSH key per stack, shared");
    assert.equal(count("hcloud:index/firewall:Firewall"), hcloudHosts > 0 ? 1 : 0);
    assert.equal(count("hcloud:index/firewallAttachment:FirewallAttachment"), hcloudHosts > 0 ? 1 : 0);
    assert.equal(count("hcloud:index/network:Network"), hcloudHosts > 0 && config.network ? 1 : 0);
    assert.equal(count("hcloud:index/serverNetwork:ServerNetwork"), config.network ? hcloudHosts : 0);
    const remote = Object.values(config.hosts).some((h) => h.kind !== "local");
    assert.equal(count(remote ? "command:local:Command" : "command:remote:Command"), 0, "commands match the host kind");
  });

  test(`${stack}: every child has a component parent named after it, every component registers outputs`, () => {
    for (const r of regs()) {
      if (!r.custom) {
        assert.ok(rec.outputsRegistered.has(r.urn), `${r.type} ${r.name} never called registerOutputs`);
        continue;
      }
      const parent = byUrn(r.parent);
      assert.ok(parent && !parent.custom, `${r.type} ${r.name} has no component parent`);
      // `<component>/<child>`, or `<component>-<host>/release` under a role.
      assert.ok(r.name.startsWith(`${parent.name}/`) || r.name.startsWith(`${parent.name}-`), `${r.name} is not named after its parent ${parent.name}`);
    }
  });

  test(`${stack}: order host ready -> tool -> check -> proxy -> migrate -> web groups -> jobs`, () => {
    for (const h of Object.values(config.hosts)) {
      const tool = byName(`host-${h.name}/tool`);
      const check = byName(`host-${h.name}/check`);
      const net = byName(`host-${h.name}/app-network`);
      if (h.kind === "hcloud") {
        const ready = byName(`host-${h.name}/cloud-init`);
        waitsFor(ready, byName(`host-${h.name}/server`), true);
        waitsFor(tool, ready, true);
      }
      waitsFor(check, tool, true);
      waitsFor(net, check, true);
    }
    const webRoles = config.roles.filter((r) => r.proxy);
    const proxyCommands = regs().filter((r) => r.name.startsWith("proxy-") && r.custom);
    for (const p of proxyCommands) {
      const host = p.name.slice("proxy-".length, p.name.indexOf("/"));
      waitsFor(p, byName(`host-${host}/app-network`), true);
      waitsFor(p, byName(`host-${host}/check`));
    }
    const migrate = config.migrate === false ? undefined : byName("migrate/run");
    if (migrate) for (const p of proxyCommands) waitsFor(migrate, p, true);
    // The data path: accessories booted (healthy) and SQLite restored before the migration.
    const dataSteps = regs().filter((r) => /\/(boot|restore)$/.test(r.name) && ["railhead:index:Accessory", "railhead:index:LitestreamReplica"].includes(byUrn(r.parent)?.type ?? ""));
    assert.equal(dataSteps.length, Object.keys(config.accessories).length + (config.litestream?.enabled ? 1 : 0));
    if (migrate) for (const d of dataSteps) waitsFor(migrate, d);
    for (const role of webRoles) {
      const groups = bootGroups(role.hosts, config.boot.limit);
      groups.forEach((group, i) => {
        for (const h of group) {
          const rel = byName(`${role.name}-${h}/release`);
          if (migrate) waitsFor(rel, migrate, true);
          waitsFor(rel, byName(`proxy-${h}/${role.name === config.primaryRole ? "service" : `service-${role.name}`}`), true);
          waitsFor(rel, byName(`host-${h}/app-network`), true);
          if (config.registry) waitsFor(rel, byName(`host-${h}/registry-login`), true);
          if (i > 0) for (const prev of groups[i - 1]) waitsFor(rel, byName(`${role.name}-${prev}/release`), true);
          // A release never waits for a later group.
          if (i + 1 < groups.length) for (const next of groups[i + 1]) assert.ok(!closure(rel).has(byName(`${role.name}-${next}/release`).urn));
        }
      });
    }
    const primaryFirst = webRoles.find((r) => r.name === config.primaryRole);
    const firstGroup = primaryFirst ? bootGroups(primaryFirst.hosts, config.boot.limit)[0] : [];
    for (const role of config.roles.filter((r) => !r.proxy)) {
      for (const rel of releasesOf(role.name)) {
        if (migrate) waitsFor(rel, migrate, true);
        for (const h of firstGroup) waitsFor(rel, byName(`${config.primaryRole}-${h}/release`), true);
      }
    }
  });

  test(`${stack}: the image is built or resolved first, and every release and the migration run it digest-pinned`, async () => {
    const component = byName("image", "railhead:index:Image");
    const imageResources = regs().filter((r) => r.parent === component.urn);
    const builds = regs().filter((r) => r.type === "docker:index/image:Image");
    const lookups = rec.invokes.filter((i) => i.token === GET_REGISTRY_IMAGE);
    // Exactly the image types and invokes the e2e harness has to implement for this stack.
    assert.deepEqual(
      [...new Set(regs().filter((r) => r.type.startsWith("docker:") || r.type === "pulumi:providers:docker").map((r) => r.type))].sort(),
      [...(image.kind === "build" ? ["docker:index/image:Image"] : []), ...(image.kind === "resolve" && config.registry ? ["pulumi:providers:docker"] : [])],
    );
    assert.deepEqual([...new Set(rec.invokes.map((i) => i.token))], image.kind === "resolve" ? [GET_REGISTRY_IMAGE] : []);
    if (image.kind === "build") {
      assert.equal(builds.length, 1);
      assert.equal(builds[0].parent, component.urn);
      assert.equal(builds[0].inputs.buildOnPreview, false, "a preview neither builds nor pushes");
      assert.equal(imageResources.length, 1);
    }
    if (image.kind === "resolve") {
      assert.equal(lookups.length, 1, "one registry lookup for the app image");
      assert.equal(lookups[0].inputs.name, config.image);
      if (config.registry) {
        const provider = byName(`image/${config.service}-registry`, "pulumi:providers:docker");
        assert.ok(lookups[0].provider?.startsWith(`${provider.urn}::`), "the lookup goes through the provider holding the registry login");
        // Provider inputs go to the engine JSON-encoded; the login is one secret string.
        assert.ok(isSecretWire(provider.wire.registryAuth), "the registry login is secret");
      }
    }
    if (image.kind === "pinned" || image.kind === "as-given") assert.equal(imageResources.length, 0, "a pinned image registers nothing");

    const migrate = config.migrate === false ? [] : [byName("migrate/run")];
    const runners = [...config.roles.flatMap((r) => releasesOf(r.name)), ...migrate];
    assert.ok(runners.length > 0);
    for (const r of runners) {
      const words = String(r.inputs.create).split(" ");
      const ref = words[words.indexOf("--image") + 1];
      assert.equal(ref, shellQuote(image.ref), `${r.name} runs the image the program built or resolved`);
      if (image.kind === "build" || image.kind === "resolve") assert.match(ref, /(^|@)sha256:[a-f0-9]{64}$/, `${r.name}: --image ${ref} is not digest-pinned`);
      for (const dep of imageResources) waitsFor(r, dep, true);
    }
    assert.equal(await unwrap(outputs.image), image.ref);
    assert.equal(await unwrap(outputs.version), image.version);
  });

  test(`${stack}: commands follow the rules (no triggers, no environment, no previous output in env)`, () => {
    assert.ok(commands().length > 0);
    for (const c of commands()) {
      assert.equal(c.inputs.triggers, undefined, `${c.name} has triggers (a trigger change replaces, and the old delete runs last)`);
      assert.equal(c.inputs.environment, undefined, `${c.name} uses environment (needs sshd AcceptEnv)`);
      assert.equal(c.inputs.addPreviousOutputInEnv, false, `${c.name}: addPreviousOutputInEnv must be false`);
      if (c.type === "command:remote:Command") assert.ok(isSecretWire(c.wire.connection), `${c.name}: the connection holds the key and must be secret`);
    }
    for (const c of regs().filter((r) => r.type === "command:remote:CopyToRemote")) {
      assert.ok(isSecretWire(c.wire.connection), `${c.name}: connection must be secret`);
      assert.equal(c.inputs.remotePath, `.railhead/bin/railhead-host-${STUB_TOOL.hash}`);
    }
  });

  test(`${stack}: release, migrate and proxy commands build the tool's argv`, () => {
    for (const role of config.roles) {
      for (const h of role.hosts) {
        const rel = byName(`${role.name}-${h}/release`);
        const create = rel.inputs.create as string;
        assert.match(create, new RegExp(`--host-label ${h} release --service ${config.service} --role ${role.name} --version ${esc(image.version)} --image ${esc(image.ref)} `));
        assert.match(create, /--host-identity \S+$/);
        assert.match(create, /--stop-timeout \d+ --retain \d+ /);
        assert.match(create, /--readiness-delay \d+ /);
        assert.equal(create.includes(" --web "), Boolean(role.proxy));
        if (role.cmd) assert.ok(create.includes(`--cmd ${shellQuote(role.cmd)}`));
        for (const [k, v] of Object.entries(role.options)) assert.ok(create.includes(`--option ${k}=${v}`));
        assert.match(rel.inputs.delete as string, new RegExp(`role remove --service ${config.service} --role ${role.name}$`));
        assert.ok(isSecretWire(rel.wire.stdin), `${rel.name}: stdin must be secret`);
      }
    }
    if (config.migrate !== false) {
      const m = byName("migrate/run");
      const primaryHost = config.roles.find((r) => r.name === config.primaryRole)?.hosts[0];
      assert.match(m.inputs.create as string, new RegExp(`--host-label ${primaryHost} migrate --service ${config.service} --version ${esc(image.version)} --image ${esc(image.ref)} (--volume \\S+ )*--cmd ${esc(shellQuote(config.migrate))}$`));
      assert.ok(isSecretWire(m.wire.stdin));
    }
    for (const p of regs().filter((r) => /^proxy-.*\/boot$/.test(r.name))) assert.match(p.inputs.create as string, /proxy boot --image \S+ --http-port \d+/);
    for (const p of regs().filter((r) => /^proxy-.*\/service/.test(r.name))) {
      assert.match(p.inputs.create as string, /proxy service add \S+ --app-port \d+/);
      assert.match(p.inputs.delete as string, /proxy service remove \S+$/);
    }
    for (const l of regs().filter((r) => r.name.endsWith("/registry-login"))) assert.ok(isSecretWire(l.wire.stdin), "the registry password goes on stdin, secret");
  });

  test(`${stack}: releases and the migration mount the role's volumes (the SQLite storage the replicator shares)`, () => {
    for (const role of config.roles) {
      const want = (expect.volumes?.[role.name] ?? []).map(shellQuote);
      for (const rel of releasesOf(role.name)) assert.deepEqual(optionValues(rel.inputs.create as string, "--volume"), want, `${rel.name}: --volume`);
    }
    if (config.migrate !== false) {
      const want = (expect.volumes?.[config.primaryRole] ?? []).map(shellQuote);
      assert.deepEqual(optionValues(byName("migrate/run").inputs.create as string, "--volume"), want, "migrate/run: --volume (the primary role's)");
    }
    if (config.litestream?.enabled) {
      // The replicator shares the volume the SQLite roles mount.
      const replicate = regs().filter((r) => r.custom && byUrn(r.parent)?.type === "railhead:index:LitestreamReplica" && /litestream replicate/.test(String(r.inputs.create)));
      assert.equal(replicate.length, 1);
      const shared = optionValues(replicate[0].inputs.create as string, "--volume")[0];
      for (const vols of Object.values(expect.volumes ?? {})) assert.ok(vols.some((v) => v.startsWith(`${shared}:`)), `the releases mount the replicator's volume ${shared}`);
    }
  });

  test(`${stack}: boot.wait: --wait-after on every boot group's releases but the last`, () => {
    const want = expect.waitAfter ?? {};
    for (const name of Object.keys(want)) byName(name);
    for (const role of config.roles) {
      const groups = bootGroups(role.hosts, config.boot.limit);
      groups.forEach((group, i) => {
        for (const h of group) {
          const rel = byName(`${role.name}-${h}/release`);
          const create = rel.inputs.create as string;
          const got = optionValues(create, "--wait-after");
          assert.deepEqual(got, rel.name in want ? [String(want[rel.name])] : [], `${rel.name}: --wait-after`);
          if (got.length) assert.ok(create.includes(`--wait-after ${got[0]} --host-identity `));
          assert.equal(got.length > 0, config.boot.wait > 0 && i < groups.length - 1, `${rel.name}: --wait-after exactly for a group before the last, with boot.wait > 0`);
        }
      });
    }
  });

  test(`${stack}: no secret value appears outside a secret, in inputs or outputs`, async () => {
    assert.ok(canaries.length > 0, "the stack references secrets");
    // The env file really carries them (so the check below is not vacuous).
    const stdin = JSON.stringify(regs().filter((r) => r.name.endsWith("/release")).map((r) => r.inputs.stdin));
    for (const name of config.env.secret) assert.ok(stdin.includes(`${name}=${canary(name)}`), `release stdin carries ${name}`);
    // Command strings are echoed by the provider when a command fails, secret or not: a secret
    // there is a leak even if the string is marked secret, so they must be plain and clean.
    for (const c of commands()) {
      for (const key of ["create", "update", "delete"]) {
        if (c.wire[key] === undefined) continue;
        assert.ok(!isSecretWire(c.wire[key]), `${c.name}: ${key} became secret, so something secret was put into the command string`);
        for (const k of canaries) assert.ok(!String(c.inputs[key]).includes(k), `${c.name}: ${key} holds a secret`);
      }
    }
    for (const r of regs()) {
      for (const { path, value } of plainStrings(r.wire)) {
        for (const c of canaries) assert.ok(!value.includes(c), `${r.type} ${r.name} input ${path} holds a secret in the clear`);
      }
    }
    const resolved = JSON.stringify({
      ...outputs,
      urls: await unwrap(outputs.urls),
      hosts: await Promise.all(Object.values(outputs.hosts).map(async (h) => ({ a: await unwrap(h.address), p: await unwrap(h.privateAddress) }))),
    });
    for (const c of canaries) assert.ok(!resolved.includes(c), "outputs hold a secret");
  });

  test(`${stack}: every SSH connection pins the host's key; hcloud servers get theirs from cloud-init`, async () => {
    const connected = regs().filter((r) => r.inputs.connection !== undefined);
    const remoteHosts = Object.values(config.hosts).filter((h) => h.kind !== "local");
    if (remoteHosts.length === 0) return assert.equal(connected.length, 0, "a stack of local hosts opens no SSH connection");
    assert.ok(connected.length > 0, "the stack's remote hosts are reached over SSH");
    const byAddress = new Map<string, { name: string; kind: string; hostKey: string | undefined }>();
    for (const [name, h] of Object.entries(outputs.hosts)) byAddress.set(await unwrap(h.address), { name, kind: h.kind, hostKey: await unwrap(h.hostKey) });
    const seen = new Set<string>();
    for (const r of connected) {
      assert.ok(isSecretWire(r.wire.connection), `${r.name}: the connection (private key) is secret`);
      const conn = r.inputs.connection as Record<string, unknown>;
      const host = byAddress.get(String(conn.host));
      assert.ok(host, `${r.name}: connection to ${String(conn.host)}, which is no host of the stack`);
      assert.match(String(conn.hostKey), /^ssh-ed25519 [A-Za-z0-9+/]+={0,2}$/, `${r.name}: connection.hostKey pins an ED25519 key (without it pulumi-command ignores the host key)`);
      assert.equal(conn.hostKey, host.hostKey, `${r.name}: pins ${host.name}'s key`);
      seen.add(host.name);
    }
    assert.deepEqual([...seen].sort(), remoteHosts.map((h) => h.name).sort(), "every remote host is connected to (and pinned)");
    for (const h of remoteHosts.filter((x) => x.kind === "ssh")) assert.equal(await unwrap(outputs.hosts[h.name].hostKey), h.ssh?.hostKey, `${h.name}: the configured hostKey`);
    for (const h of remoteHosts.filter((x) => x.kind === "hcloud")) {
      const server = byName(`host-${h.name}/server`, "hcloud:index/server:Server");
      const key = byName(`host-${h.name}/host-key`, "tls:index/privateKey:PrivateKey");
      assert.equal(key.inputs.algorithm, "ED25519");
      assert.ok(key.additionalSecretOutputs.includes("privateKeyOpenssh"), "the private half is secret in state");
      assert.deepEqual(server.replaceWith, [key.urn], "a replaced key replaces the server (only cloud-init installs it)");
      assert.ok(isSecretWire(server.wire.userData), `${server.name}: userData holds the private host key, so it is secret`);
      const doc = parseYaml(server.inputs.userData as string) as { ssh_keys: Record<string, string>; ssh_deletekeys: boolean };
      assert.equal(doc.ssh_deletekeys, true);
      assert.equal(doc.ssh_keys.ed25519_public, await unwrap(outputs.hosts[h.name].hostKey), "cloud-init installs the key connections pin");
      const dir = mkdtempSync(join(tmpdir(), "railhead-hostkey-"));
      writeFileSync(join(dir, "key"), doc.ssh_keys.ed25519_private, { mode: 0o600 });
      const derived = spawnSync("ssh-keygen", ["-y", "-f", join(dir, "key")], { encoding: "utf8" });
      rmSync(dir, { recursive: true, force: true });
      assert.equal(derived.status, 0, `ssh-keygen reads the private host key: ${derived.stderr}`);
      assert.equal(derived.stdout.trim(), doc.ssh_keys.ed25519_public, "the installed private key is the pinned public key's");
      for (const r of regs()) {
        for (const { path, value } of plainStrings(r.wire)) assert.ok(!value.includes(doc.ssh_keys.ed25519_private.split("\n")[1]), `${r.type} ${r.name} input ${path} holds the private host key in the clear`);
      }
    }
  });

  test(`${stack}: Hetzner servers, addresses and firewall`, async () => {
    const servers = regs().filter((r) => r.type === "hcloud:index/server:Server");
    const prefix = `${config.service}-${config.stack}`;
    for (const s of servers) {
      assert.ok(s.ignoreChanges.includes("userData"), `${s.name}: userData changes must not rebuild the server`);
      assert.ok(s.deleteBeforeReplace, `${s.name}: the PrimaryIp is free only after the old server is gone`);
      assert.ok((s.inputs.name as string).startsWith(`${prefix}-`), "Hetzner names carry <service>-<stack>");
      assert.match(s.inputs.userData as string, /^#cloud-config\n/);
      const nets = s.inputs.publicNets as Array<Record<string, unknown>>;
      assert.equal(nets.length, 1);
      assert.equal(typeof nets[0].ipv4, "number", "the server takes its PrimaryIp");
      const host = s.name.slice("host-".length, -"/server".length);
      const ready = byName(`host-${host}/cloud-init`);
      const conn = ready.inputs.connection as Record<string, unknown>;
      assert.equal(conn.dialErrorLimit, -1);
      assert.ok(Number(conn.perDialTimeout) > 0);
      assert.equal(ready.customTimeouts?.create, "10m");
      assert.match(ready.inputs.create as string, /cloud-init status --wait/);
      const copy = byName(`host-${host}/tool`, "command:remote:CopyToRemote");
      assert.ok(Array.isArray(copy.inputs.triggers) && (copy.inputs.triggers as unknown[]).length === 1, "the tool upload is re-done on a new server");
    }
    for (const ip of regs().filter((r) => r.type === "hcloud:index/primaryIp:PrimaryIp")) {
      assert.equal(ip.inputs.autoDelete, false);
      assert.equal(ip.inputs.assigneeType, "server");
      assert.equal(ip.inputs.type, "ipv4");
      const host = ip.name.slice("host-".length, -"/ip".length);
      const inDns = config.roles.some((r) => r.proxy && r.proxy.domains.length > 0 && r.hosts.includes(host));
      assert.equal(ip.protect, inDns, `${ip.name}: protected exactly when DNS points at it`);
    }
    for (const r of regs().filter((x) => x.type.startsWith("hcloud:") && typeof x.inputs.name === "string")) {
      assert.ok((r.inputs.name as string).startsWith(prefix), `${r.name}: Hetzner name ${r.inputs.name} is not per stack`);
    }
    const fws = regs().filter((r) => r.type === "hcloud:index/firewall:Firewall");
    if (servers.length === 0) return assert.equal(fws.length, 0);
    const rules = fws[0].inputs.rules as Array<Record<string, unknown>>;
    const tcp = rules.filter((r) => r.protocol === "tcp");
    assert.deepEqual(tcp.map((r) => r.port).sort(), ["22", "443", "80"]);
    assert.deepEqual(tcp.find((r) => r.port === "22")?.sourceIps, config.ssh.allowFrom);
    for (const p of ["80", "443"]) assert.deepEqual(tcp.find((r) => r.port === p)?.sourceIps, ["0.0.0.0/0", "::/0"]);
    assert.ok(rules.some((r) => r.protocol === "icmp"));
    assert.ok(rules.every((r) => r.direction === "in"));
    const att = byName("hcloud/firewall-attachment");
    const labels = servers.map((s) => s.inputs.labels as Record<string, string>);
    for (const sel of att.inputs.labelSelectors as string[]) {
      const [k, v] = sel.split("=");
      for (const l of labels) assert.equal(l[k], v, "every server carries the firewall's label");
    }
  });
}

function esc(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
