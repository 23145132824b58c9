import type { BareJid, DeviceId } from "../../util/ids.js";
import { NS } from "./namespaces.js";
import { parseDeviceId, parseUserJid } from "./primitives.js";
import { expect, parsedAttr, requiredParsedAttr } from "./read.js";
import { xml, type XmlElement } from "./xml.js";

/**
 * `<sender>` on stanzas the gatekeeper delivers from a group JID on behalf of a member (§17.4).
 * `device` is absent only where no device is concerned (receipts may name just the user).
 */
export interface GroupSender {
  jid: BareJid;
  device: DeviceId | undefined;
}

export const encodeGroupSender = (s: GroupSender): XmlElement =>
  xml("sender", { xmlns: NS.groups, jid: s.jid, device: s.device });

export function decodeGroupSender(el: XmlElement): GroupSender {
  expect(el, "sender", NS.groups);
  return {
    jid: requiredParsedAttr(el, "jid", parseUserJid),
    device: parsedAttr(el, "device", parseDeviceId),
  };
}
