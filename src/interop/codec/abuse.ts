import type { BareJid, MessageId, StanzaId } from "../../util/ids.js";
import { NS } from "./namespaces.js";
import {
  encodeBase64,
  formatBoolean,
  formatTimestamp,
  parseBase64,
  parseBoolean,
  parseGatekeeperUserJid,
  parseMessageId,
  parseStanzaId,
  parseTimestamp,
  parseUserJid,
} from "./primitives.js";
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

/** Block list and reports (§16.1, §16.2). */

const REPORT_REASONS = ["spam", "phishing", "abuse", "impersonation", "other"] as const;
export type ReportReason = (typeof REPORT_REASONS)[number];
export const MAX_REPORTED_MESSAGES = 5;

export interface ReportedMessage {
  originId: MessageId;
  stanzaId: StanzaId | undefined;
  stamp: Date | undefined;
  from: BareJid;
  /** The decrypted envelope's UTF-8 bytes exactly as received. */
  envelopeData: Uint8Array;
}

export interface Report {
  jid: BareJid;
  reason: ReportReason;
  block: boolean;
  text: string | undefined;
  messages: ReportedMessage[];
}

export interface ReportReceived {
  jid: BareJid;
  reason: ReportReason;
  stamp: Date;
}

type BlockListKind = "blocklist" | "block" | "unblock";

const items = (jids: readonly BareJid[]): XmlElement[] => jids.map((jid) => xml("item", { jid }));

/** `<blocklist/>` (get), its result, `<block>` and `<unblock>` (set). */
export function encodeBlockList(kind: BlockListKind, jids: readonly BareJid[] = []): XmlElement {
  return xml(kind, { xmlns: NS.abuse }, items(jids));
}

/** Items must be gatekeeper-user JIDs (§16.1); `<block>` needs at least one, `<unblock/>` clears. */
export function decodeBlockList(el: XmlElement, kind: BlockListKind): BareJid[] {
  expect(el, kind, NS.abuse);
  const jids = childrenNamed(el, "item", NS.abuse).map((i) =>
    requiredParsedAttr(i, "jid", parseGatekeeperUserJid),
  );
  if (kind === "block" && jids.length === 0) fail(el, "block without items");
  return jids;
}

export function encodeReport(r: Report): XmlElement {
  return xml(
    "report",
    {
      xmlns: NS.abuse,
      jid: r.jid,
      reason: r.reason,
      block: r.block ? formatBoolean(true) : undefined,
    },
    r.text === undefined ? undefined : xml("text", {}, r.text),
    r.messages.map((m) =>
      xml(
        "message",
        {
          "origin-id": m.originId,
          "stanza-id": m.stanzaId,
          stamp: m.stamp === undefined ? undefined : formatTimestamp(m.stamp),
          from: m.from,
        },
        xml("envelope-data", {}, encodeBase64(m.envelopeData)),
      ),
    ),
  );
}

export function decodeReport(el: XmlElement): Report {
  expect(el, "report", NS.abuse);
  const messageEls = childrenNamed(el, "message", NS.abuse);
  if (messageEls.length > MAX_REPORTED_MESSAGES) {
    fail(el, `more than ${MAX_REPORTED_MESSAGES} reported messages`);
  }
  const text = optionalChild(el, "text", NS.abuse);
  return {
    jid: requiredParsedAttr(el, "jid", parseUserJid),
    reason: requiredEnumAttr(el, "reason", REPORT_REASONS),
    block: parsedAttr(el, "block", parseBoolean) ?? false,
    text: text === undefined ? undefined : textOf(text),
    messages: messageEls.map((m) => {
      const data = requiredChild(m, "envelope-data", NS.abuse);
      return {
        originId: requiredParsedAttr(m, "origin-id", parseMessageId),
        stanzaId: parsedAttr(m, "stanza-id", parseStanzaId),
        stamp: parsedAttr(m, "stamp", parseTimestamp),
        from: requiredParsedAttr(m, "from", parseUserJid),
        envelopeData: parseBase64(textOf(data), `${pathOf(data)}/text()`),
      };
    }),
  };
}

export function encodeReportReceived(r: ReportReceived): XmlElement {
  return xml("report-received", {
    xmlns: NS.abuse,
    jid: r.jid,
    reason: r.reason,
    stamp: formatTimestamp(r.stamp),
  });
}

export function decodeReportReceived(el: XmlElement): ReportReceived {
  expect(el, "report-received", NS.abuse);
  return {
    jid: requiredParsedAttr(el, "jid", parseUserJid),
    reason: requiredEnumAttr(el, "reason", REPORT_REASONS),
    stamp: requiredParsedAttr(el, "stamp", parseTimestamp),
  };
}
