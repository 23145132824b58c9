import type { BareJid, DeviceId, MessageId, PhoneNumber, StanzaId } from "../../util/ids.js";
import type { ReportReason } from "../codec/abuse.js";
import { decodeEnvelope } from "../codec/envelope.js";
import type { GroupEventType } from "../codec/groups.js";
import type { IdentityChangeEvent } from "../crypto/types.js";
import { LOCAL_ENTRY_PREFIX, type PendingEntry, type PendingRecord } from "./inbox.js";
import type { ProviderEvent } from "./types.js";

const jid = (v: string): BareJid => v as BareJid;
const date = (v: string | null): Date | undefined => (v === null ? undefined : new Date(v));

/**
 * The event for a stored pending record. A message's envelope is decoded again from the bytes
 * that were checked when it was decrypted; the size limit of that time is kept, so that a later
 * hello with a smaller `max-envelope-bytes` cannot refuse it. Throws CodecError if it no longer
 * decodes (a codec change between runs).
 */
export function pendingToEvent(record: PendingRecord, maxEnvelopeBytes: number): ProviderEvent {
  switch (record.kind) {
    case "message":
      return {
        kind: "message",
        local: jid(record.local),
        from: jid(record.from),
        device: record.device as DeviceId,
        originId: record.originId as MessageId,
        stanzaId: record.stanzaId as StanzaId,
        seq: record.seq ?? undefined,
        stamp: date(record.stamp),
        envelope: decodeEnvelope(record.envelopeXml, {
          maxEnvelopeBytes: Math.max(maxEnvelopeBytes, Buffer.byteLength(record.envelopeXml)),
        }),
        envelopeXml: record.envelopeXml,
        ...(record.group === undefined ? {} : { group: jid(record.group) }),
      };
    case "delivered":
      return {
        kind: "delivered",
        local: jid(record.local),
        from: jid(record.from),
        refs: record.refs.map((r) => ({ id: r.id as MessageId, author: jid(r.author) })),
        ...(record.group === undefined ? {} : { group: jid(record.group) }),
      };
    case "displayed":
      return {
        kind: "displayed",
        local: jid(record.local),
        from: jid(record.from),
        ref: { id: record.ref.id as MessageId, author: jid(record.ref.author) },
        ...(record.group === undefined ? {} : { group: jid(record.group) }),
      };
    case "undecryptable":
      return {
        kind: "undecryptable",
        local: jid(record.local),
        from: jid(record.from),
        originId: record.originId as MessageId,
        stamp: date(record.stamp),
        ...(record.group === undefined ? {} : { group: jid(record.group) }),
      };
    case "group-info":
      return {
        kind: "group-info",
        local: jid(record.local),
        group: jid(record.group),
        info: record.info,
        addedBy: record.addedBy === null ? undefined : jid(record.addedBy),
      };
    case "group-event":
      return {
        kind: "group-event",
        local: jid(record.local),
        group: jid(record.group),
        type: record.type as GroupEventType,
        version: record.version,
        by: jid(record.by),
        participants: record.participants,
        subject: record.subject ?? undefined,
      };
    case "request-accepted":
      return { kind: "request-accepted", local: jid(record.local), contact: jid(record.contact) };
    case "identity-changed":
      return {
        kind: "identity-changed",
        local: jid(record.local),
        contact: jid(record.contact),
        wasVerified: record.wasVerified,
        changeId: record.changeId,
      };
    case "unbound":
      return {
        kind: "unbound",
        local: jid(record.local),
        phone: record.phone as PhoneNumber,
        reason: record.reason,
      };
    case "report-received":
      return {
        kind: "report-received",
        reported: jid(record.reported),
        reason: record.reason as ReportReason,
        stamp: new Date(record.stamp),
      };
  }
}

/**
 * The pending entry of an identity change (issue #16): written in the crypto transaction that
 * recorded the new identity and handed over after its commit, both from the same event, so the
 * two are the same row. Its stanza-id is local and derived from the change's id (stanza_id holds
 * 64 characters: the prefix and a UUID take 42).
 */
export function identityChangeEntry(change: IdentityChangeEvent): PendingEntry {
  return {
    stanzaId: `${LOCAL_ENTRY_PREFIX}identity:${change.id}` as StanzaId,
    by: "",
    record: {
      kind: "identity-changed",
      local: change.localJid,
      contact: change.remoteJid,
      wasVerified: change.wasVerified,
      changeId: change.id,
    },
    receipt: undefined,
  };
}
