/** Interop content elements (§13) <-> the core's neutral message model. */
export * from "./actions.js";
export * from "./degrade.js";
export * from "./envelope-size.js";
export * from "./errors.js";
export * from "./from-neutral.js";
export * from "./media.js";
export {
  featureMode,
  interopReference,
  limitsOf,
  type OutboundContext,
  type OutboundLimits,
} from "./outbound.js";
export * from "./styling.js";
export * from "./to-neutral.js";
