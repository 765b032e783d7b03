// Accessory config lives in components/config/accessories.ts (one module per section).
export * from "./config/accessories";
