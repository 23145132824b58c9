import type { BareJid, DeviceId } from "../../util/ids.js";
import { NS } from "./namespaces.js";
import { parseDeviceId, parseInteger, parseUserJid } from "./primitives.js";
import {
  childrenNamed,
  expect,
  fail,
  optionalEnumAttr,
  parsedAttr,
  requiredParsedAttr,
} from "./read.js";
import { xml, type XmlElement } from "./xml.js";

/** Key directory notifications (§11.7), delivered as messages from `wa.example`. */

export interface PreKeysLow {
  device: DeviceId;
  ec: number;
  /** Absent when the device never published one-time Kyber prekeys (§11.7). */
  kyber: number | undefined;
}

const DEVICE_CHANGES = ["added", "replaced", "identity-changed"] as const;
export type DeviceChange = (typeof DEVICE_CHANGES)[number];

export interface DevicesChanged {
  jid: BareJid;
  version: number;
  /** The complete new list; `change` undefined means unchanged. */
  devices: { id: DeviceId; change: DeviceChange | undefined }[];
  removed: DeviceId[];
}

export function encodePreKeysLow(n: PreKeysLow): XmlElement {
  return xml("prekeys-low", { xmlns: NS.keys, device: n.device, ec: n.ec, kyber: n.kyber });
}

export function decodePreKeysLow(el: XmlElement): PreKeysLow {
  expect(el, "prekeys-low", NS.keys);
  return {
    device: requiredParsedAttr(el, "device", parseDeviceId),
    ec: requiredParsedAttr(el, "ec", parseInteger),
    kyber: parsedAttr(el, "kyber", parseInteger),
  };
}

export function encodeDevicesChanged(n: DevicesChanged): XmlElement {
  return xml(
    "devices-changed",
    { xmlns: NS.keys, jid: n.jid, version: n.version },
    n.devices.map((d) => xml("device", { id: d.id, change: d.change })),
    n.removed.map((id) => xml("removed", { id })),
  );
}

export function decodeDevicesChanged(el: XmlElement): DevicesChanged {
  expect(el, "devices-changed", NS.keys);
  const seen = new Set<number>();
  const unique = (d: XmlElement): DeviceId => {
    const id = requiredParsedAttr(d, "id", parseDeviceId);
    if (seen.has(id)) fail(d, `device ${id} listed twice`, "id");
    seen.add(id);
    return id;
  };
  return {
    jid: requiredParsedAttr(el, "jid", parseUserJid),
    version: requiredParsedAttr(el, "version", parseInteger),
    devices: childrenNamed(el, "device", NS.keys).map((d) => ({
      id: unique(d),
      change: optionalEnumAttr(d, "change", DEVICE_CHANGES),
    })),
    removed: childrenNamed(el, "removed", NS.keys).map(unique),
  };
}
