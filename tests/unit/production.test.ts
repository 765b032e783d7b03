// The production stack file: see stack-suite.ts for what is asserted.
import { stackSuite } from "./stack-suite";

stackSuite("production");
