// The production stack file: see stack-suite.ts for what is asserted.
import { stackSuite } from "./stack-suite";

// No SQLite: no volumes. boot { limit: 1, wait: 2 }: web-1's release pauses 2 s before web-2's
// group starts; the last group (web-2) and the single job group do not.
stackSuite("production", { waitAfter: { "web-web-1/release": 2 } });
