// The staging stack file: see stack-suite.ts for what is asserted.
import { stackSuite } from "./stack-suite";

// SQLite + Litestream on staging-1: web, job and the migration mount the storage volume the
// replicator shares. boot.wait is 0: no --wait-after.
stackSuite("staging", {
  volumes: { web: ["demo-staging-storage:/rails/storage"], job: ["demo-staging-storage:/rails/storage"] },
});
