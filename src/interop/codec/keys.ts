import type { BareJid, DeviceId } from "../../util/ids.js";
import {
  decodeIdentityKey,
  decodeKyberPreKey,
  decodePreKey,
  decodeSignedPreKey,
  encodeIdentityKey,
  encodeKyberPreKey,
  encodePreKey,
  encodeSignedPreKey,
  parseRegistrationId,
  type KyberPreKey,
  type PreKey,
  type SignedPreKey,
} from "./key-material.js";
import { NS } from "./namespaces.js";
import {
  formatBoolean,
  parseBoolean,
  parseDeviceId,
  parseInteger,
  parseUserJid,
} from "./primitives.js";
import {
  childrenNamed,
  expect,
  fail,
  optionalChild,
  parsedAttr,
  requiredChild,
  requiredParsedAttr,
} from "./read.js";
import { xml, type XmlElement } from "./xml.js";

export {
  parseRegistrationId,
  type KyberPreKey,
  type PreKey,
  type SignedPreKey,
} from "./key-material.js";

/** Key directory IQs (§11.2-§11.6). */

/** `<bundle>` as published (§11.2). */
export interface PublishedBundle {
  device: DeviceId;
  registration: number;
  /** `reset='true'`: a deliberate identity change (§11.2). */
  reset: boolean;
  identity: Uint8Array;
  signedPreKey: SignedPreKey;
  lastResortKyberPreKey: KyberPreKey;
  /** One-time keys published with the bundle, with the semantics of §11.5. */
  preKeys: OneTimePreKeys | undefined;
}

export interface OneTimePreKeys {
  ec: PreKey[];
  kyber: KyberPreKey[];
}

/** `<bundle>` as fetched (§11.4): one Kyber prekey, at most one one-time EC prekey. */
export interface FetchedBundle {
  device: DeviceId;
  registration: number;
  identity: Uint8Array;
  signedPreKey: SignedPreKey;
  kyberPreKey: KyberPreKey;
  preKey: PreKey | undefined;
}

const deviceAttr = (el: XmlElement, name = "device"): DeviceId =>
  requiredParsedAttr(el, name, parseDeviceId);
const registrationAttr = (el: XmlElement): number =>
  requiredParsedAttr(el, "registration", parseRegistrationId);

function encodeOneTime(keys: OneTimePreKeys): XmlElement[] {
  return [
    ...keys.ec.map(encodePreKey),
    ...keys.kyber.map((k) => encodeKyberPreKey({ ...k, lastResort: false })),
  ];
}

function decodeOneTime(el: XmlElement): OneTimePreKeys {
  const kyber = childrenNamed(el, "kyber-prekey", NS.keys).map(decodeKyberPreKey);
  const lastResort = kyber.findIndex((k) => k.lastResort);
  if (lastResort >= 0) {
    fail(
      childrenNamed(el, "kyber-prekey", NS.keys)[lastResort] as XmlElement,
      "last-resort key among one-time keys",
    );
  }
  return { ec: childrenNamed(el, "prekey", NS.keys).map(decodePreKey), kyber };
}

export function encodePublishedBundle(b: PublishedBundle): XmlElement {
  return xml(
    "bundle",
    {
      xmlns: NS.keys,
      device: b.device,
      registration: b.registration,
      reset: b.reset ? formatBoolean(true) : undefined,
    },
    encodeIdentityKey(b.identity),
    encodeSignedPreKey(b.signedPreKey),
    encodeKyberPreKey({ ...b.lastResortKyberPreKey, lastResort: true }),
    b.preKeys === undefined ? undefined : xml("prekeys", {}, encodeOneTime(b.preKeys)),
  );
}

export function decodePublishedBundle(el: XmlElement): PublishedBundle {
  expect(el, "bundle", NS.keys);
  const kyber = childrenNamed(el, "kyber-prekey", NS.keys);
  if (kyber.length !== 1) fail(el, `expected one last-resort <kyber-prekey>, got ${kyber.length}`);
  const lastResort = decodeKyberPreKey(kyber[0] as XmlElement);
  if (!lastResort.lastResort)
    fail(kyber[0] as XmlElement, "bundle Kyber prekey is not last-resort", "last-resort");
  const preKeys = optionalChild(el, "prekeys", NS.keys);
  return {
    device: deviceAttr(el),
    registration: registrationAttr(el),
    reset: parsedAttr(el, "reset", parseBoolean) ?? false,
    identity: decodeIdentityKey(requiredChild(el, "identity", NS.keys)),
    signedPreKey: decodeSignedPreKey(requiredChild(el, "signed-prekey", NS.keys)),
    lastResortKyberPreKey: lastResort,
    preKeys: preKeys === undefined ? undefined : decodeOneTime(preKeys),
  };
}

function encodeFetchedBundle(b: FetchedBundle): XmlElement {
  return xml(
    "bundle",
    { device: b.device, registration: b.registration },
    encodeIdentityKey(b.identity),
    encodeSignedPreKey(b.signedPreKey),
    encodeKyberPreKey(b.kyberPreKey),
    b.preKey === undefined ? undefined : encodePreKey(b.preKey),
  );
}

function decodeFetchedBundle(el: XmlElement): FetchedBundle {
  const preKey = optionalChild(el, "prekey", NS.keys);
  return {
    device: deviceAttr(el),
    registration: registrationAttr(el),
    identity: decodeIdentityKey(requiredChild(el, "identity", NS.keys)),
    signedPreKey: decodeSignedPreKey(requiredChild(el, "signed-prekey", NS.keys)),
    kyberPreKey: decodeKyberPreKey(requiredChild(el, "kyber-prekey", NS.keys)),
    preKey: preKey === undefined ? undefined : decodePreKey(preKey),
  };
}

// --- device lists (§11.3) -------------------------------------------------------------------------

interface DeviceList {
  jid: BareJid;
  version: number;
  devices: DeviceId[];
}

function decodeDeviceIds(el: XmlElement, name: string): DeviceId[] {
  const seen = new Set<number>();
  return childrenNamed(el, name, NS.keys).map((d) => {
    const id = deviceAttr(d, "id");
    if (seen.has(id)) fail(d, `device ${id} listed twice`, "id");
    seen.add(id);
    return id;
  });
}

const deviceChildren = (ids: readonly DeviceId[]): XmlElement[] =>
  ids.map((id) => xml("device", { id }));
const jidAttr = (el: XmlElement): BareJid => requiredParsedAttr(el, "jid", parseUserJid);
const versionAttr = (el: XmlElement): number => requiredParsedAttr(el, "version", parseInteger);

/** Publish (set): the sender's full list, possibly empty. */
export function encodeDevicesPublish(devices: readonly DeviceId[]): XmlElement {
  return xml("devices", { xmlns: NS.keys }, deviceChildren(devices));
}

export function decodeDevicesPublish(el: XmlElement): DeviceId[] {
  expect(el, "devices", NS.keys);
  return decodeDeviceIds(el, "device");
}

/** Fetch (get) of `jid`'s list. */
export const encodeDevicesFetch = (jid: BareJid): XmlElement =>
  xml("devices", { xmlns: NS.keys, jid });

export function decodeDevicesFetch(el: XmlElement): BareJid {
  expect(el, "devices", NS.keys);
  return jidAttr(el);
}

/** Result of a publish (no children) or of a fetch (the list). */
export function encodeDeviceList(list: DeviceList): XmlElement {
  return xml(
    "devices",
    { xmlns: NS.keys, jid: list.jid, version: list.version },
    deviceChildren(list.devices),
  );
}

export function decodeDeviceList(el: XmlElement): DeviceList {
  expect(el, "devices", NS.keys);
  return { jid: jidAttr(el), version: versionAttr(el), devices: decodeDeviceIds(el, "device") };
}

// --- bundle fetch (§11.4) --------------------------------------------------------------------------

/** `devices` empty: all devices are requested. */
export function encodeBundlesFetch(jid: BareJid, devices: readonly DeviceId[] = []): XmlElement {
  return xml("bundles", { xmlns: NS.keys, jid }, deviceChildren(devices));
}

export function decodeBundlesFetch(el: XmlElement): { jid: BareJid; devices: DeviceId[] } {
  expect(el, "bundles", NS.keys);
  return { jid: jidAttr(el), devices: decodeDeviceIds(el, "device") };
}

export function encodeBundlesResult(jid: BareJid, bundles: readonly FetchedBundle[]): XmlElement {
  return xml("bundles", { xmlns: NS.keys, jid }, bundles.map(encodeFetchedBundle));
}

export function decodeBundlesResult(el: XmlElement): { jid: BareJid; bundles: FetchedBundle[] } {
  expect(el, "bundles", NS.keys);
  const bundles = childrenNamed(el, "bundle", NS.keys).map(decodeFetchedBundle);
  const seen = new Set<number>();
  for (const [i, b] of bundles.entries()) {
    if (seen.has(b.device))
      fail(childrenNamed(el, "bundle", NS.keys)[i] as XmlElement, "device twice");
    seen.add(b.device);
  }
  return { jid: jidAttr(el), bundles };
}

// --- prekeys (§11.5) ----------------------------------------------------------------------------------

interface PreKeyCounts {
  device: DeviceId;
  ec: number;
  kyber: number;
}

/** Replenish (set) with one-time keys; with no keys it is the count query (get). */
export function encodePreKeysUpload(device: DeviceId, keys: OneTimePreKeys): XmlElement {
  return xml("prekeys", { xmlns: NS.keys, device }, encodeOneTime(keys));
}

export function decodePreKeysUpload(el: XmlElement): { device: DeviceId } & OneTimePreKeys {
  expect(el, "prekeys", NS.keys);
  return { device: deviceAttr(el), ...decodeOneTime(el) };
}

export const encodePreKeyCountQuery = (device: DeviceId): XmlElement =>
  xml("prekeys", { xmlns: NS.keys, device });

export function decodePreKeyCountQuery(el: XmlElement): DeviceId {
  expect(el, "prekeys", NS.keys);
  return deviceAttr(el);
}

export const encodePreKeyCounts = (c: PreKeyCounts): XmlElement =>
  xml("prekeys", { xmlns: NS.keys, device: c.device, ec: c.ec, kyber: c.kyber });

export function decodePreKeyCounts(el: XmlElement): PreKeyCounts {
  expect(el, "prekeys", NS.keys);
  return {
    device: deviceAttr(el),
    ec: requiredParsedAttr(el, "ec", parseInteger),
    kyber: requiredParsedAttr(el, "kyber", parseInteger),
  };
}

// --- rotation (§11.6) --------------------------------------------------------------------------------

export interface Rotation {
  device: DeviceId;
  signedPreKey: SignedPreKey;
  /** Replaces the last-resort Kyber prekey when present. */
  lastResortKyberPreKey: KyberPreKey | undefined;
}

export function encodeRotate(r: Rotation): XmlElement {
  return xml(
    "rotate",
    { xmlns: NS.keys, device: r.device },
    encodeSignedPreKey(r.signedPreKey),
    r.lastResortKyberPreKey === undefined
      ? undefined
      : encodeKyberPreKey({ ...r.lastResortKyberPreKey, lastResort: true }),
  );
}

/** A `<kyber-prekey>` in `<rotate>` can only be the last-resort key; `last-resort` may be omitted. */
export function decodeRotate(el: XmlElement): Rotation {
  expect(el, "rotate", NS.keys);
  const kyber = optionalChild(el, "kyber-prekey", NS.keys);
  return {
    device: deviceAttr(el),
    signedPreKey: decodeSignedPreKey(requiredChild(el, "signed-prekey", NS.keys)),
    lastResortKyberPreKey:
      kyber === undefined ? undefined : { ...decodeKyberPreKey(kyber), lastResort: true },
  };
}
