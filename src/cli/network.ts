import type { Config } from "../config/schema.js";
import type { NetworkDescription } from "../core/network.js";
import {
  interopDescription,
  interopDescriptionSettings,
} from "../interop/connector/description.js";

/**
 * The self-description of the network this config runs (today: WhatsApp's interop, the only
 * product network), for what is built before or without a connector: the registration's ghost
 * namespace and protocol, and the third-party lookups. The same function of the config the
 * connector's `describe()` returns, so the two cannot disagree.
 */
export function configuredNetwork(config: Config): NetworkDescription {
  return interopDescription(interopDescriptionSettings(config));
}
