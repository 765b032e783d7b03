// The deploy description: one module per `railhead:` section (schema, examples, normalisation), the
// shared shapes once (./shared.ts), and a root (./root.ts) that composes them and runs the
// cross-section checks. This module is the only reader of pulumi.Config.
export { NAMESPACE, ConfigError, formatProblems, keyPath, type ConfigProblem } from "./problems";
export { CONFIG_KEYS, SECTIONS, configSchema, exampleFor, loadConfig, readRawStackConfig, bootGroups, type LoadedConfig, type RawStackConfig } from "./root";
export { IMAGE_RE, parseImageRef, deriveVersion, type ImageRef } from "./image";
export type { BuilderConfig, DeployConfig, HostConfig, HostKind, ProxySettings, RoleConfig, RoleProxy } from "./types";
