// The normalised config the components consume.
import type { z } from "zod";
import type { ImageRef } from "./image";
import type { builderSchema } from "./builder";
import type { AccessoriesConfig } from "./accessories";
import type { LitestreamConfig } from "./litestream";

export type HostKind = "hcloud" | "ssh" | "local";

export interface HostConfig {
  readonly name: string;
  readonly kind: HostKind;
  readonly hcloud?: { serverType: string; location: string; image: string };
  readonly ssh?: { address: string; user: string; port: number; hostKey?: string };
  readonly privateIp?: string;
  readonly labels: Record<string, string>;
}

export interface RoleProxy {
  readonly domains: string[];
  readonly ssl: boolean;
  readonly appPort: number;
}

export interface RoleConfig {
  readonly name: string;
  readonly hosts: string[];
  readonly cmd?: string;
  readonly options: Record<string, string>;
  readonly env: { clear: Record<string, string>; secret: string[] };
  /** Set for proxied (web) roles. */
  readonly proxy?: RoleProxy;
  readonly stopTimeout: number;
}

export interface ProxySettings {
  readonly healthcheck: { path: string; interval: number; timeout: number };
  readonly responseTimeout: number;
  readonly deployTimeout: number;
  readonly drainTimeout: number;
  readonly httpPort: number;
  readonly httpsPort: number;
  readonly bindIps: string[];
  readonly image: string;
  readonly tlsImage: string;
}

export type BuilderConfig = z.output<typeof builderSchema>;

export interface DeployConfig {
  readonly project: string;
  readonly stack: string;
  readonly service: string;
  /** The image as run: with Kamal's rule applied (`registry.server` prefixed to a bare repository). */
  readonly image: string;
  readonly imageRef: ImageRef;
  readonly version: string;
  readonly registry?: { server: string; username: string; passwordSecret: string };
  readonly builder?: BuilderConfig;
  readonly ssh: { user: string; port: number; privateKeySecret?: string; publicKey?: string; allowFrom: string[] };
  readonly hosts: Record<string, HostConfig>;
  readonly network?: { ipRange: string; subnet: string; zone: string; confirmRangeChange?: boolean };
  /** Roles in stack-file order; the primary role (`web`, else the first proxied) first. */
  readonly roles: RoleConfig[];
  /** The service-wide env (`railhead:env`); a role's own env is laid over it. */
  readonly env: { clear: Record<string, string>; secret: string[] };
  readonly primaryRole: string;
  readonly proxy: ProxySettings;
  readonly boot: { limit?: number | string; wait: number };
  readonly retain: number;
  readonly migrate: string | false;
  readonly readinessDelay: number;
  readonly stopTimeout: number;
  readonly accessories: AccessoriesConfig;
  readonly litestream: LitestreamConfig;
  /** Names of keys present in `railhead:secrets`. */
  readonly secretNames: string[];
}
