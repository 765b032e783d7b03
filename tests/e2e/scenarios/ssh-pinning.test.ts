// Harness self-test (test equipment): the harness's SSH client pins `connection.hostKey` as
// pulumi-command does (provider/pkg/provider/remote/connection.go: ParseAuthorizedKey, FixedHostKey,
// HostKeyAlgorithms = [key type]; see engine/ssh.ts). A server presenting another key is refused in
// the SSH handshake, before authentication: no session, so no command and no stdin reach it.
// Uses its own sshd on 127.0.0.1 (a free port; /usr/sbin/sshd from openssh-server, which the rig
// needs too), so what the server saw is in its own log. Needs root (sshd privilege separation).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { scenario } from "../summary";
import { SshClient, sleep, type Connection } from "../engine/ssh";
import { generateEd25519 } from "../../support/ssh-keys";

const dir = mkdtempSync(join(tmpdir(), "railhead-e2e-pinning-"));
const served = generateEd25519(); // the key the server presents
const other = generateEd25519(); // a key it does not have
const client = generateEd25519();
const log = join(dir, "sshd.log");
let port = 0;
let sshd: ChildProcess | undefined;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

const sshdLog = () => (existsSync(log) ? readFileSync(log, "utf8") : "");
const count = (re: RegExp) => (sshdLog().match(re) ?? []).length;
const conn = (hostKey: string | undefined, extra: Partial<Connection> = {}): Connection => ({
  host: "127.0.0.1",
  port,
  user: "root",
  privateKey: client.privateKeyOpenssh,
  hostKey,
  dialErrorLimit: 2,
  perDialTimeout: 5,
  ...extra,
});

async function run(c: Connection, command: string, stdin: string) {
  const ssh = new SshClient(c);
  try {
    return await ssh.run(command, stdin);
  } finally {
    ssh.close();
  }
}

before(async () => {
  if (process.getuid?.() !== 0) throw new Error("the pinning self-test starts its own sshd and needs root (as the rig does)");
  if (!existsSync("/usr/sbin/sshd")) throw new Error("/usr/sbin/sshd is missing: install openssh-server (.ci/run does, for the rig)");
  port = await freePort();
  writeFileSync(join(dir, "host_key"), served.privateKeyOpenssh, { mode: 0o600 });
  writeFileSync(join(dir, "authorized_keys"), client.publicKeyOpenssh, { mode: 0o600 });
  writeFileSync(
    join(dir, "sshd_config"),
    [
      `Port ${port}`,
      "ListenAddress 127.0.0.1",
      `HostKey ${join(dir, "host_key")}`,
      `PidFile ${join(dir, "sshd.pid")}`,
      `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
      "PermitRootLogin prohibit-password",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "UsePAM no",
      "StrictModes no",
      "LogLevel VERBOSE",
      "Subsystem sftp internal-sftp",
      "",
    ].join("\n"),
  );
  mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
  sshd = spawn("/usr/sbin/sshd", ["-D", "-f", join(dir, "sshd_config"), "-E", log], { stdio: "ignore" });
  for (let i = 0; i < 100 && !/Server listening/.test(sshdLog()); i++) await sleep(50);
  assert.match(sshdLog(), /Server listening on 127\.0\.0\.1/, `sshd did not start:\n${sshdLog()}`);
});

after(() => {
  sshd?.kill("SIGTERM");
  rmSync(dir, { recursive: true, force: true });
});

test("harness SSH pins connection.hostKey as pulumi-command does", { concurrency: false }, async (t) => {
  await scenario("harness: a host with another key gets no stdin", async () => {
    await t.test("the pinned key: the command runs and reads its stdin (the control)", async () => {
      const r = await run(conn(served.publicKeyOpenssh), `cat > ${dir}/got-right`, "STDIN-RIGHT");
      assert.equal(r.code, 0, r.combined);
      assert.equal(readFileSync(join(dir, "got-right"), "utf8"), "STDIN-RIGHT");
      assert.equal(count(/Accepted publickey for root/g), 1);
    });

    await t.test("another key pinned: refused in the handshake, retried as a dial error, no session and no stdin", async () => {
      const before = { conns: count(/Connection from 127\.0\.0\.1/g), accepted: count(/Accepted publickey/g) };
      const r = await run(conn(other.publicKeyOpenssh), `cat > ${dir}/got-wrong`, "STDIN-WRONG");
      assert.equal(r.code, 255, r.combined);
      assert.match(r.stderr, /Host key verification failed/);
      assert.match(r.stderr, /gave up dialing 127\.0\.0\.1 after \d+ attempts/, "a handshake failure is a dial error (dialWithRetry retries it)");
      await sleep(200); // sshd logs the closed pre-auth connections
      assert.ok(count(/Connection from 127\.0\.0\.1/g) > before.conns, "the client did dial the server");
      assert.equal(count(/Accepted publickey/g), before.accepted, "no user authentication happened, so no session was opened");
      assert.ok(!existsSync(join(dir, "got-wrong")), "the command never ran: its stdin was never sent");
    });

    await t.test("the tool copy (sftp) to a host with another key is refused before anything is written", async () => {
      const src = join(dir, "tool-src");
      writeFileSync(src, "#!/bin/bash\necho tool\n");
      const ssh = new SshClient(conn(other.publicKeyOpenssh));
      try {
        const r = await ssh.upload(src, `${dir}/uploaded/tool`);
        assert.notEqual(r.code, 0, r.combined);
        assert.match(r.combined, /Host key verification failed/);
      } finally {
        ssh.close();
      }
      assert.ok(!existsSync(join(dir, "uploaded")), "nothing was created on the host");
    });

    await t.test("a hostKey that does not parse fails before any dial (SSHConfig: failed to parse host key)", () => {
      const before = count(/Connection from 127\.0\.0\.1/g);
      assert.throws(() => new SshClient(conn("ssh-ed25519 not-base64!")), /failed to parse host key/);
      assert.throws(() => new SshClient(conn(`ssh-rsa ${served.publicKeyOpenssh.split(" ")[1]}`)), /failed to parse host key: key data is not a ssh-rsa key/);
      assert.equal(count(/Connection from 127\.0\.0\.1/g), before);
    });

    await t.test("a comment after the key is accepted, as ParseAuthorizedKey does", async () => {
      const r = await run(conn(`${served.publicKeyOpenssh.trim()} root@example`), "true", "");
      assert.equal(r.code, 0, r.combined);
    });

    await t.test("no hostKey: any key is accepted (ssh.InsecureIgnoreHostKey); Railhead never renders such a connection", async () => {
      const r = await run(conn(undefined), `cat > ${dir}/got-unpinned`, "STDIN-UNPINNED");
      assert.equal(r.code, 0, r.combined);
      assert.equal(readFileSync(join(dir, "got-unpinned"), "utf8"), "STDIN-UNPINNED");
    });
  });
});
