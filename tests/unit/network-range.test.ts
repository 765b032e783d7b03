// A private network's range change is refused unless confirmed (components/hcloud-base.ts
// checkNetworkRange): Hetzner replaces the network delete-before-create with its attachments.
import { test } from "node:test";
import assert from "node:assert/strict";
import { checkNetworkRange } from "../../components/hcloud-base";

const live = [{ name: "demo-production", ipRange: "10.0.0.0/16" }, { name: "other-stack", ipRange: "10.9.0.0/16" }];

test("network.ipRange: a change of an existing network is refused with what to do; confirmed, new or unchanged passes", () => {
  assert.throws(
    () => checkNetworkRange(live, "demo-production", "10.1.0.0/16", false),
    (e: Error) =>
      /railhead:network\.ipRange: the network demo-production has 10\.0\.0\.0\/16, the config asks for 10\.1\.0\.0\/16/.test(e.message) &&
      /confirmRangeChange: true/.test(e.message) &&
      /keep ipRange: 10\.0\.0\.0\/16/.test(e.message),
  );
  assert.doesNotThrow(() => checkNetworkRange(live, "demo-production", "10.1.0.0/16", true));
  assert.doesNotThrow(() => checkNetworkRange(live, "demo-production", "10.0.0.0/16", false));
  assert.doesNotThrow(() => checkNetworkRange(live, "demo-staging", "10.1.0.0/16", false), "a network not created yet");
  assert.doesNotThrow(() => checkNetworkRange([], "demo-production", "10.1.0.0/16", false));
});
