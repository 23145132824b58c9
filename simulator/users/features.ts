import { FEATURE, type ContentElement } from "../../src/interop/codec/index.js";
import { BridgeError } from "../../src/util/errors.js";

const NEEDS: Partial<Record<ContentElement["kind"], string>> = {
  reply: FEATURE.reply,
  reactions: FEATURE.reactions,
  replace: FEATURE.edit,
  retract: FEATURE.retract,
  location: FEATURE.location,
  contact: FEATURE.contact,
  nick: FEATURE.nick,
  call: FEATURE.call,
};

/**
 * §7.6 for the gatekeeper's own clients (G28): in 1:1 they send content elements only of features
 * the recipient's provider negotiated (`disappearing` excepted), and typing and read markers only
 * with `chatstates` and `#displayed`.
 */
export function requireFeatures(
  negotiated: ReadonlySet<string>,
  needed: readonly (string | undefined)[],
): void {
  for (const feature of needed) {
    if (feature !== undefined && !negotiated.has(feature)) {
      throw new BridgeError("feature-not-negotiated", `the provider did not negotiate ${feature}`);
    }
  }
}

export function featuresOf(content: readonly ContentElement[]): (string | undefined)[] {
  return content.map((c) => NEEDS[c.kind]);
}
