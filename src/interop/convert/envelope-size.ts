import type { BareJid, MessageId } from "../../util/ids.js";
import type { ContentElement } from "../codec/content.js";
import { encodeEnvelope } from "../codec/envelope.js";

/** The two addresses of an envelope (§12.2): they count towards its size. */
export interface EnvelopeAddresses {
  readonly to: BareJid;
  readonly from: BareJid;
}

const WORST_RPAD = "A".repeat(200);
const WORST_ID = "0".repeat(64) as MessageId;

/**
 * An upper bound of the serialized envelope's UTF-8 size for this content (§12.2): the longest
 * pad and id the envelope can hold. The sender still checks the real envelope; this is for
 * deciding beforehand what fits (e.g. how many vCards, §13.9).
 */
export function estimateEnvelopeBytes(
  content: readonly ContentElement[],
  addresses: EnvelopeAddresses,
): number {
  const xml = encodeEnvelope(
    { content: [...content], id: WORST_ID, time: new Date(0), ...addresses },
    { rpad: WORST_RPAD, maxEnvelopeBytes: Number.POSITIVE_INFINITY },
  );
  return Buffer.byteLength(xml, "utf8");
}
