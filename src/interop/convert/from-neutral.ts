import { randomUUID } from "node:crypto";
import type { MessageContent } from "../../core/network.js";
import type { BareJid, MessageId } from "../../util/ids.js";
import type { ContentElement } from "../codec/content.js";
import { FEATURE } from "../codec/namespaces.js";
import { callText, contactsText, locationText, quotedReplyText } from "./degrade.js";
import { estimateEnvelopeBytes } from "./envelope-size.js";
import { ConvertError } from "./errors.js";
import { mediaElement, type UploadedMediaRef } from "./media.js";
import {
  bodyElement,
  checkBody,
  featureMode,
  limitsOf,
  nickElements,
  styledBody,
  type OutboundContext,
  type OutboundLimits,
} from "./outbound.js";
import { truncateChars, utf8Bytes, wireText } from "./text.js";

interface OutboundReply {
  readonly id: MessageId;
  readonly author: BareJid;
  /** The replied-to message's text, if the bridge still has it: `<quote>` or the degraded quote. */
  readonly quote?: string;
}

interface MessageExtras {
  readonly replyTo?: OutboundReply;
  /** Required for media content: what the media layer's upload returned. */
  readonly media?: UploadedMediaRef;
  /** The call-id of a call notice (§13.12); a fresh UUID when absent. */
  readonly callId?: string;
}

const MAX_QUOTE_CHARS = 256;
const MAX_VCARDS = 10;
const MAX_VCARD_BYTES = 8192;

/**
 * A new message -> the content elements of its envelope. In 1:1 only negotiated features are used
 * (§7.6); without them a reply becomes a quote line above the text, a location its name and a map
 * link, contact cards their names and numbers, a call notice its text. Groups degrade the same
 * way, which needs no `<fallback>`. A body above `max-body-bytes` is refused, never split (one
 * message, one id); a degraded quote is dropped first if that makes it fit.
 *
 * Throws ConvertError: `body-too-large`, `envelope-too-large`, `unsupported-content` (nothing
 * sendable, or media without its upload), `invalid-reference`.
 */
export function messageElements(
  content: MessageContent,
  ctx: OutboundContext,
  extras: MessageExtras = {},
): ContentElement[] {
  const limits = limitsOf(ctx);
  const replyNative = extras.replyTo !== undefined && ctx.features.has(FEATURE.reply);
  const { elements, body, quotable } = primary(content, ctx, extras, limits);

  let text = body;
  if (extras.replyTo !== undefined && !replyNative && quotable && extras.replyTo.quote) {
    const quoted = quotedReplyText(wireText(extras.replyTo.quote), body ?? "");
    // The quote is a courtesy: dropped rather than making the message too large.
    if (utf8Bytes(quoted) <= limits.maxBodyBytes) text = quoted;
  }
  if (text !== undefined) checkBody(text, limits);

  const out: ContentElement[] = [];
  if (replyNative && extras.replyTo !== undefined) out.push(replyElement(extras.replyTo));
  out.push(...elements);
  if (text !== undefined && text !== "") out.push(bodyElement(text));
  if (!out.some((e) => e.kind !== "reply")) {
    throw new ConvertError("unsupported-content", "an empty message cannot be sent");
  }
  out.push(...nickElements(ctx));
  return fitEnvelope(out, ctx, limits);
}

function replyElement(r: OutboundReply): ContentElement {
  const quote = r.quote === undefined ? "" : truncateChars(wireText(r.quote), MAX_QUOTE_CHARS);
  return { kind: "reply", id: r.id, author: r.author, quote: quote === "" ? undefined : quote };
}

interface Primary {
  elements: ContentElement[];
  body: string | undefined;
  /** Whether a degraded reply may put its quote line into `body` (text and captions). */
  quotable: boolean;
}

function primary(
  content: MessageContent,
  ctx: OutboundContext,
  extras: MessageExtras,
  limits: OutboundLimits,
): Primary {
  const degraded = (body: string): Primary => ({
    elements: [],
    body: wireText(body),
    quotable: false,
  });
  switch (content.type) {
    case "text": {
      const body = styledBody(content.text);
      return { elements: [], body: content.emote === true ? `/me ${body}` : body, quotable: true };
    }
    case "media": {
      if (extras.media === undefined) {
        throw new ConvertError("unsupported-content", "media must be uploaded before sending");
      }
      const media = mediaElement(content.media, extras.media, limits.maxThumbnailBytes);
      const caption = content.caption === undefined ? undefined : styledBody(content.caption);
      return { elements: [{ kind: "media", media }], body: caption, quotable: true };
    }
    case "location": {
      if (!validCoordinates(content.lat, content.lon)) {
        throw new ConvertError("unsupported-content", "location coordinates out of range");
      }
      if (featureMode(ctx, FEATURE.location) !== "native") return degraded(locationText(content));
      const text = (s: string | undefined): string | undefined =>
        s === undefined || s.trim() === "" ? undefined : wireText(s);
      const accuracy = content.accuracy;
      const element: ContentElement = {
        kind: "location",
        lat: content.lat,
        lon: content.lon,
        accuracy:
          accuracy !== undefined && Number.isFinite(accuracy) && accuracy >= 0
            ? Math.round(accuracy)
            : undefined,
        name: text(content.name),
        address: text(content.address),
      };
      return { elements: [element], body: undefined, quotable: false };
    }
    case "contacts": {
      const vcards = content.vcards
        .map((v) => wireText(v).replace(/\r?\n/g, "\r\n"))
        .filter((v) => v.trim() !== "" && utf8Bytes(v) <= MAX_VCARD_BYTES)
        .slice(0, MAX_VCARDS);
      if (featureMode(ctx, FEATURE.contact) !== "native" || vcards.length === 0) {
        return degraded(contactsText(content.vcards));
      }
      return { elements: [{ kind: "contact", vcards }], body: undefined, quotable: false };
    }
    case "call": {
      if (featureMode(ctx, FEATURE.call) !== "native") return degraded(callText(content));
      const duration = content.durationSeconds;
      const element: ContentElement = {
        kind: "call",
        callId: extras.callId ?? randomUUID(),
        media: content.media,
        outcome: content.outcome,
        duration:
          duration !== undefined && Number.isFinite(duration) && duration >= 0
            ? Math.round(duration)
            : content.outcome === "ended"
              ? 0
              : undefined,
        initiator: undefined,
      };
      return { elements: [element], body: undefined, quotable: false };
    }
    case "unsupported":
      if (content.fallback === undefined || content.fallback.trim() === "") {
        throw new ConvertError("unsupported-content", "this kind of message cannot be sent");
      }
      return { elements: [], body: wireText(content.fallback), quotable: true };
  }
}

const validCoordinates = (lat: number, lon: number): boolean =>
  Number.isFinite(lat) && Number.isFinite(lon) && Math.abs(lat) <= 90 && Math.abs(lon) <= 180;

/**
 * §13.9: "a sender sends only as many vCards as fit". Other content that cannot fit is refused
 * here rather than failing later in the envelope encoder. Needs the addresses; without them the
 * sender's own envelope check is the only one.
 */
function fitEnvelope(
  elements: ContentElement[],
  ctx: OutboundContext,
  limits: OutboundLimits,
): ContentElement[] {
  if (ctx.envelope === undefined) return elements;
  const addresses = ctx.envelope;
  const fits = (els: ContentElement[]): boolean =>
    estimateEnvelopeBytes(els, addresses) <= limits.maxEnvelopeBytes;
  let current = elements;
  for (;;) {
    if (fits(current)) return current;
    const index = current.findIndex((e) => e.kind === "contact" && e.vcards.length > 1);
    const contact = current[index];
    if (contact === undefined || contact.kind !== "contact") break;
    current = current.map((e, i) =>
      i === index ? { kind: "contact", vcards: contact.vcards.slice(0, -1) } : e,
    );
  }
  throw new ConvertError(
    "envelope-too-large",
    `the message does not fit the gatekeeper's limit of ${limits.maxEnvelopeBytes} bytes`,
    { limit: limits.maxEnvelopeBytes },
  );
}
