// `railhead:registry`: where hosts pull the image from, and the login (a secret reference).
import { obj, secretRef } from "./shared";
import { z } from "zod";
import type { Section } from "./section";

export const registrySchema = obj(
  {
    server: z.string().min(1).regex(/^[a-zA-Z0-9.-]+(:\d+)?$/, { error: "a registry host, e.g. ghcr.io or registry.example.com:5000 (no scheme, no path)" }).describe("registry host, e.g. ghcr.io"),
    username: z.string().min(1).describe("registry user"),
    password: secretRef,
  },
  { user: "=username" },
);

export const registry: Section = {
  key: "registry",
  schema: registrySchema.optional(),
  examples: [
    [/^registry\.password/, "password: [REGISTRY_PASSWORD]   then: pulumi config set --secret --path 'railhead:secrets.REGISTRY_PASSWORD' <token>"],
    [/^registry\.server/, "server: ghcr.io"],
    [/^registry/, "railhead:registry: { server: ghcr.io, username: acme, password: [REGISTRY_PASSWORD] }"],
  ],
};
