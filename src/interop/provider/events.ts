import type { StanzaId } from "../../util/ids.js";
import { decodeEnvelope } from "../codec/envelope.js";
import type { IdentityChangeEvent } from "../crypto/types.js";
import { LOCAL_ENTRY_PREFIX, type PendingEntry } from "./inbox.js";
import type { DurableEvent } from "./types.js";

/**
 * The event a pending entry hands over: the stored event itself, and for a message the envelope
 * decoded and checked when it was decrypted (the normal path decodes a message once). An entry
 * read back from `inbox` (a replay after a restart, or of an event the core deferred)
 * has no decoded envelope, so its envelope is decoded again from the bytes checked at decrypt
 * time; the size limit of that time is kept, so that a later hello with a smaller
 * `max-envelope-bytes` cannot refuse it. Throws CodecError if it no longer decodes (a codec
 * change between runs). `firstHandOver` marks a message's first hand-over (types.ts); the
 * receiver alone knows when it is one.
 */
export function eventOf(
  entry: PendingEntry,
  maxEnvelopeBytes: number,
  firstHandOver = false,
): DurableEvent {
  const { event } = entry;
  if (event.kind !== "message") return event;
  const envelope =
    entry.envelope ??
    decodeEnvelope(event.envelopeXml, {
      maxEnvelopeBytes: Math.max(maxEnvelopeBytes, Buffer.byteLength(event.envelopeXml)),
    });
  return firstHandOver ? { ...event, envelope, firstHandOver } : { ...event, envelope };
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
    event: {
      kind: "identity-changed",
      local: change.localJid,
      contact: change.remoteJid,
      wasVerified: change.wasVerified,
      changeId: change.id,
    },
    receipt: undefined,
  };
}
