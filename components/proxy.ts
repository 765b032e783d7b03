// Proxy: HAProxy (with a Caddy TLS front when a service wants ssl) on one web host, and the app
// backends it routes to (DESIGN.md decision 9). The host tool does the work; this component says
// which proxy should run there and which services it serves.
import * as pulumi from "@pulumi/pulumi";
import type { ProxySettings } from "./config";
import { hostCommand, type HostCommand, type HostHandle } from "./host-command";

export interface ProxyService {
  /** Backend name on the proxy: the service, or `<service>-<role>` for a second proxied role. */
  readonly name: string;
  /** The proxied role it routes to. */
  readonly role: string;
  /** The primary role's backend is the child `<proxy>/service`; others are `<proxy>/service-<role>`. */
  readonly primary: boolean;
  readonly appPort: number;
  readonly domains: string[];
  readonly ssl: boolean;
}

export interface ProxyArgs {
  readonly host: HostHandle;
  readonly settings: ProxySettings;
  /** The proxied roles on this host. */
  readonly services: ProxyService[];
}

/** `proxy boot ...`: the same spec twice changes nothing on the host. Pure. */
export function proxyBootArgv(s: ProxySettings): string[] {
  return [
    "proxy",
    "boot",
    "--image",
    s.image,
    "--http-port",
    String(s.httpPort),
    "--https-port",
    String(s.httpsPort),
    ...s.bindIps.flatMap((ip) => ["--bind-ip", ip]),
    "--tls-image",
    s.tlsImage,
  ];
}

/** `proxy service add ...`. Pure. */
export function proxyServiceAddArgv(svc: ProxyService, s: ProxySettings): string[] {
  return [
    "proxy",
    "service",
    "add",
    svc.name,
    "--app-port",
    String(svc.appPort),
    ...svc.domains.flatMap((d) => ["--domain", d]),
    ...(svc.ssl ? ["--ssl"] : []),
    "--health-path",
    s.healthcheck.path,
    "--response-timeout",
    String(s.responseTimeout),
  ];
}

export class Proxy extends pulumi.ComponentResource {
  readonly boot: HostCommand;
  /** The backend registration per proxied role name. */
  readonly services: Record<string, HostCommand>;
  /** What a release on this host waits for. */
  readonly ready: pulumi.Resource[];

  constructor(name: string, args: ProxyArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("railhead:index:Proxy", name, {}, opts);
    const parent = { parent: this };
    // The proxy is shared by every service on the host: on delete (a destroy, or the host leaving the
    // web roles) it goes only if no other service still routes through it, after this stack's own
    // backend registrations (which depend on it) were removed.
    this.boot = hostCommand(args.host, `${name}/boot`, { create: proxyBootArgv(args.settings), delete: ["proxy", "remove-if-unused"] }, parent);
    this.services = {};
    for (const svc of args.services) {
      const child = svc.primary ? `${name}/service` : `${name}/service-${svc.role}`;
      this.services[svc.role] = hostCommand(
        args.host,
        child,
        // Delete touches only this backend: a renamed service removes the old name, never the new.
        { create: proxyServiceAddArgv(svc, args.settings), delete: ["proxy", "service", "remove", svc.name] },
        { ...parent, dependsOn: [this.boot] },
      );
    }
    this.ready = [this.boot, ...Object.values(this.services)];
    this.registerOutputs({});
  }
}
