// Bundles the host tool's sources into the one self-contained script a host receives.
// The bundle's hash names the file on the host, so a new tool version is a new path.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, writeFileSync, chmodSync } from "node:fs";
import { join } from "node:path";

export interface HostToolBundle {
  /** The whole script, `#!/usr/bin/env bash` first. */
  readonly text: string;
  /** First 12 hex digits of the script's sha256. */
  readonly hash: string;
}

const SOURCE_DIR = __dirname;

/** Orders the sources: lib/common.sh, the other lib/*.sh by name, then main.sh. */
export function hostToolSources(dir: string = SOURCE_DIR): string[] {
  const lib = readdirSync(join(dir, "lib"))
    .filter((f) => f.endsWith(".sh") && f !== "common.sh")
    .sort();
  return [join(dir, "lib", "common.sh"), ...lib.map((f) => join(dir, "lib", f)), join(dir, "main.sh")];
}

export function bundleHostTool(dir: string = SOURCE_DIR): HostToolBundle {
  const parts = hostToolSources(dir).map((file) => {
    const body = readFileSync(file, "utf8")
      .replace(/^#!.*\n/, "")
      // main.sh loads lib/*.sh itself when run from the source tree; the bundle already holds them.
      .replace(/^# >>> dev-sources[\s\S]*?^# <<< dev-sources\n?/m, "");
    return `# ---- ${file.slice(dir.length + 1)} ----\n${body.trimEnd()}\n`;
  });
  const unhashed = parts.join("\n");
  const hash = createHash("sha256").update(unhashed).digest("hex").slice(0, 12);
  const text = `#!/usr/bin/env bash\n# railhead-host ${hash}: bundled by components/host-tool/bundle.ts; edit the sources, not this file.\nRAILHEAD_TOOL_VERSION=${hash}\n${unhashed}`;
  return { text, hash };
}

if (require.main === module) {
  const out = process.argv[2];
  const bundle = bundleHostTool();
  if (!out) {
    process.stdout.write(bundle.text);
  } else {
    writeFileSync(out, bundle.text);
    chmodSync(out, 0o755);
    process.stderr.write(`railhead-host ${bundle.hash} -> ${out}\n`);
  }
}
