// Shared by tests/unit/accessory.test.ts and litestream.test.ts: a HostHandle without a Host, and
// a record of `retainOnDelete` per resource name (tests/support/mocks.ts records the rest of the
// RegisterResourceRequest).
import * as pulumi from "@pulumi/pulumi";
import { MockMonitor } from "@pulumi/pulumi/runtime/mocks";
import type { RegisterResourceRequest } from "@pulumi/pulumi/proto/resource_pb";
import type { HostHandle } from "../../components/host-command";
import type { HostConfig } from "../../components/config";

export const retainOnDelete = new Map<string, boolean>();

let patched = false;
export function recordRetainOnDelete(): void {
  if (patched) return;
  patched = true;
  type Register = (this: MockMonitor, req: RegisterResourceRequest, cb: (e: unknown, r: unknown) => void) => Promise<void>;
  const proto = MockMonitor.prototype as unknown as { registerResource: Register };
  const original = proto.registerResource;
  proto.registerResource = async function (req, cb) {
    retainOnDelete.set(req.getName(), req.getRetainondelete() ?? false);
    return original.call(this, req, cb);
  };
}

/** A host handle as components see it, for hosts of a loaded config (private IPs as configured). */
export function fakeHosts(hosts: Record<string, HostConfig>): Record<string, HostHandle> {
  return Object.fromEntries(
    Object.values(hosts).map((h) => [
      h.name,
      {
        hostName: h.name,
        kind: h.kind,
        connection: h.kind === "local" ? undefined : pulumi.secret({ host: `203.0.113.${h.name.length}`, user: "deploy", privateKey: "KEY" }),
        address: pulumi.output(h.kind === "local" ? "127.0.0.1" : `203.0.113.${h.name.length}`),
        privateAddress: pulumi.output(h.privateIp),
        identity: pulumi.output(`id-${h.name}`),
        toolPath: "$HOME/.railhead/bin/railhead-host-0123456789ab",
        ready: [],
      } satisfies HostHandle,
    ]),
  );
}
