// Litestream config lives in components/config/litestream.ts (one module per section).
export * from "./config/litestream";
