import type { BareJid, DeviceId, MessageId } from "../../util/ids.js";
import { NS } from "./namespaces.js";
import {
  encodeBase64,
  formatBoolean,
  parseBase64,
  parseBoolean,
  parseDeviceId,
  parseInteger,
  parseMessageId,
  parseUserJid,
} from "./primitives.js";
import { parseRegistrationId } from "./key-material.js";
import {
  childrenNamed,
  expect,
  fail,
  optionalChild,
  parsedAttr,
  pathOf,
  requiredChild,
  requiredEnumAttr,
  requiredParsedAttr,
  textOf,
} from "./read.js";
import { xml, type XmlElement } from "./xml.js";

/** The `<encrypted>` element (§12.1, §17.4) and retry requests (§12.5, §17.6). */

export interface EncryptedKey {
  rid: DeviceId;
  /** True iff the ciphertext is a PreKeySignalMessage. */
  kex: boolean;
  ciphertext: Uint8Array;
}

export interface KeyGroup {
  jid: BareJid;
  keys: EncryptedKey[];
}

export interface Encrypted {
  sid: DeviceId;
  keyGroups: KeyGroup[];
  /** Sender-key ciphertext of a group message (§17.4). */
  group: Uint8Array | undefined;
  /** Retry re-send counter (§12.5); undefined on first transmission. */
  retry: number | undefined;
}

const nonEmptyBase64 = (el: XmlElement): Uint8Array => {
  const bytes = parseBase64(textOf(el), `${pathOf(el)}/text()`);
  if (bytes.length === 0) fail(el, "empty ciphertext");
  return bytes;
};

export function encodeEncrypted(e: Encrypted): XmlElement {
  return xml(
    "encrypted",
    { xmlns: NS.e2ee, retry: e.retry },
    xml(
      "header",
      { sid: e.sid },
      e.keyGroups.map((g) =>
        xml(
          "keys",
          { jid: g.jid },
          g.keys.map((k) =>
            xml(
              "key",
              { rid: k.rid, kex: k.kex ? formatBoolean(true) : undefined },
              encodeBase64(k.ciphertext),
            ),
          ),
        ),
      ),
    ),
    e.group === undefined ? undefined : xml("group", {}, encodeBase64(e.group)),
  );
}

export function decodeEncrypted(el: XmlElement): Encrypted {
  expect(el, "encrypted", NS.e2ee);
  const header = requiredChild(el, "header", NS.e2ee);
  const groupEl = optionalChild(el, "group", NS.e2ee);
  const jids = new Set<string>();
  const keyGroups = childrenNamed(header, "keys", NS.e2ee).map((keysEl): KeyGroup => {
    const jid = requiredParsedAttr(keysEl, "jid", parseUserJid);
    if (jids.has(jid)) fail(keysEl, `second <keys> group for ${jid}`, "jid");
    jids.add(jid);
    const rids = new Set<number>();
    const keys = childrenNamed(keysEl, "key", NS.e2ee).map((k): EncryptedKey => {
      const rid = requiredParsedAttr(k, "rid", parseDeviceId);
      if (rids.has(rid)) fail(k, `second key for device ${rid}`, "rid");
      rids.add(rid);
      return {
        rid,
        kex: parsedAttr(k, "kex", parseBoolean) ?? false,
        ciphertext: nonEmptyBase64(k),
      };
    });
    return { jid, keys };
  });
  return {
    sid: requiredParsedAttr(header, "sid", parseDeviceId),
    keyGroups,
    group: groupEl === undefined ? undefined : nonEmptyBase64(groupEl),
    retry: parsedAttr(el, "retry", (v, p) => parseInteger(v, p, { min: 1, max: 2 })),
  };
}

/** The key for one of our devices, if the stanza carries one (§12.4 step 2). */
export function keyFor(e: Encrypted, jid: BareJid, device: DeviceId): EncryptedKey | undefined {
  return e.keyGroups.find((g) => g.jid === jid)?.keys.find((k) => k.rid === device);
}

// --- retry requests ------------------------------------------------------------------------------

const RETRY_REASONS = ["decrypt-failed", "no-key", "no-session", "no-sender-key"] as const;
export type RetryReason = (typeof RETRY_REASONS)[number];

export interface RetryRequest {
  /** origin-id of the message that failed. */
  id: MessageId;
  count: 1 | 2;
  registration: number;
  reason: RetryReason;
  /** Group retries name the sending device of the failed message (§17.6). */
  author: { jid: BareJid; device: DeviceId } | undefined;
}

export function encodeRetryRequest(r: RetryRequest): XmlElement {
  return xml("retry", {
    xmlns: NS.e2ee,
    id: r.id,
    author: r.author?.jid,
    device: r.author?.device,
    count: r.count,
    registration: r.registration,
    reason: r.reason,
  });
}

export function decodeRetryRequest(el: XmlElement): RetryRequest {
  expect(el, "retry", NS.e2ee);
  const author = parsedAttr(el, "author", parseUserJid);
  const device = parsedAttr(el, "device", parseDeviceId);
  if ((author === undefined) !== (device === undefined)) {
    fail(el, "retry with only one of author and device");
  }
  return {
    id: requiredParsedAttr(el, "id", parseMessageId),
    count: requiredParsedAttr(el, "count", (v, p) => parseInteger(v, p, { min: 1, max: 2 })) as
      1 | 2,
    registration: requiredParsedAttr(el, "registration", parseRegistrationId),
    reason: requiredEnumAttr(el, "reason", RETRY_REASONS),
    author: author === undefined || device === undefined ? undefined : { jid: author, device },
  };
}
