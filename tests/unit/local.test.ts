// The local stack file: see stack-suite.ts for what is asserted.
import { stackSuite } from "./stack-suite";

// SQLite (file replica) next to Postgres: both roles and the migration mount the storage volume.
stackSuite("local", {
  volumes: { web: ["demo-storage:/rails/storage"], job: ["demo-storage:/rails/storage"] },
});
