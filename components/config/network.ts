// `railhead:network`: the Hetzner private network the hcloud hosts share.
import { z } from "zod";
import { cidr, cidrContains, obj, parseCidr, type Cidr } from "./shared";
import type { Section } from "./section";

export const NETWORK_ZONES = ["eu-central", "us-east", "us-west", "ap-southeast"] as const;

export const networkSchema = obj(
  {
    ipRange: cidr(4).default("10.0.0.0/16").describe("the private network"),
    subnet: cidr(4).default("10.0.1.0/24").describe("the hosts' subnet inside it"),
    zone: z.enum(NETWORK_ZONES).default("eu-central").describe("Hetzner network zone of the locations used"),
    confirmRangeChange: z
      .boolean()
      .optional()
      .describe("allow an ipRange change of an existing network (Hetzner replaces it: private networking is down during the deploy)"),
  },
  { ip_range: "=ipRange", range: "=ipRange", cidr: "=ipRange" },
).check((ctx) => {
  const range = parseCidr(ctx.value.ipRange);
  const subnet = parseCidr(ctx.value.subnet);
  if (typeof range !== "string" && typeof subnet !== "string" && !cidrContains(range, subnet)) {
    ctx.issues.push({
      code: "custom",
      input: ctx.value.subnet,
      path: ["subnet"],
      message: `${ctx.value.subnet} is not inside ipRange ${ctx.value.ipRange}`,
      params: { example: `ipRange: ${ctx.value.ipRange}, subnet: ${subnetExample(range)}` },
    });
  }
});

function subnetExample(range: Cidr): string {
  const b = range.base;
  return `${b >>> 24}.${(b >>> 16) & 255}.${Math.min(255, ((b >>> 8) & 255) + 1)}.0/24`;
}

export const network: Section = {
  key: "network",
  schema: networkSchema.optional().describe("a Hetzner private network for the hcloud hosts"),
  examples: [
    [/^network\.zone/, "zone: eu-central   (fsn1, nbg1, hel1: eu-central; ash: us-east; hil: us-west; sin: ap-southeast)"],
    [/^network/, "railhead:network: { ipRange: 10.0.0.0/16, subnet: 10.0.1.0/24, zone: eu-central }"],
  ],
};
