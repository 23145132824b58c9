import type { MessageReference, NeutralText } from "../../core/network.js";
import type { BareJid, MessageId } from "../../util/ids.js";
import type { ContentElement } from "../codec/content.js";
import { CodecError } from "../codec/codec-error.js";
import { DEFAULT_LIMITS } from "../codec/limits.js";
import { FEATURE, type FeatureVar } from "../codec/namespaces.js";
import { parseMessageId, parseUserJid } from "../codec/primitives.js";
import type { EnvelopeAddresses } from "./envelope-size.js";
import { ConvertError } from "./errors.js";
import { renderStyling } from "./styling.js";
import { truncateChars, utf8Bytes, wireText } from "./text.js";

/** What the conversion towards the gatekeeper needs to know about the conversation. */
export interface OutboundContext {
  /** Negotiated feature vars: the intersection of both hellos (§8.3). */
  readonly features: ReadonlySet<string>;
  /** A group conversation (§7.6: elements of other features MAY be sent there, with a fallback). */
  readonly group?: boolean;
  /** Announced limits; each one missing takes its §8.3 default. */
  readonly limits?: Partial<OutboundLimits>;
  /** The sender's display name, sent as `<nick>` when `#nick` is negotiated (§13.11). */
  readonly nick?: string;
  /** With the addresses, contact cards are cut to what fits and oversize content refused early. */
  readonly envelope?: EnvelopeAddresses;
}

export interface OutboundLimits {
  maxBodyBytes: number;
  maxReactions: number;
  maxThumbnailBytes: number;
  maxEnvelopeBytes: number;
}

export function limitsOf(ctx: OutboundContext): OutboundLimits {
  return {
    maxBodyBytes: ctx.limits?.maxBodyBytes ?? DEFAULT_LIMITS["max-body-bytes"],
    maxReactions: ctx.limits?.maxReactions ?? DEFAULT_LIMITS["max-reactions"],
    maxThumbnailBytes: ctx.limits?.maxThumbnailBytes ?? DEFAULT_LIMITS["max-thumbnail-bytes"],
    maxEnvelopeBytes: ctx.limits?.maxEnvelopeBytes ?? DEFAULT_LIMITS["max-envelope-bytes"],
  };
}

/**
 * How an element of `feature` may be sent (§7.6): `native` when negotiated; in groups
 * `with-fallback` (the element plus a `<fallback>`); in 1:1 `absent` (degrade or refuse).
 */
export function featureMode(
  ctx: OutboundContext,
  feature: FeatureVar,
): "native" | "with-fallback" | "absent" {
  if (ctx.features.has(feature)) return "native";
  return ctx.group === true ? "with-fallback" : "absent";
}

export function notNegotiated(feature: FeatureVar, what: string): ConvertError {
  return new ConvertError(
    "feature-not-negotiated",
    `${what} cannot be sent: the gatekeeper did not negotiate ${feature}`,
    { feature },
  );
}

/** A §13.1 body from neutral text, as the wire wants it. */
export const styledBody = (text: NeutralText): string => wireText(renderStyling(text));

export function checkBody(body: string, limits: OutboundLimits): void {
  const size = utf8Bytes(body);
  if (size > limits.maxBodyBytes) {
    throw new ConvertError(
      "body-too-large",
      `text of ${size} bytes exceeds the gatekeeper's limit of ${limits.maxBodyBytes} bytes`,
      { limit: limits.maxBodyBytes },
    );
  }
}

export function bodyElement(text: string): ContentElement {
  return { kind: "body", text };
}

export function fallbackElement(text: string): ContentElement {
  return { kind: "fallback", text: wireText(text) };
}

const MAX_NICK_CHARS = 64;

/** `<nick>` when negotiated and known (§13.11); never degraded, it is only a courtesy. */
export function nickElements(ctx: OutboundContext): ContentElement[] {
  const nick = ctx.nick === undefined ? "" : wireText(ctx.nick).trim();
  if (nick === "" || !ctx.features.has(FEATURE.nick)) return [];
  return [{ kind: "nick", nick: truncateChars(nick, MAX_NICK_CHARS) }];
}

/** A core message reference as the protocol's (id, author) pair (§13), validated. */
export function interopReference(ref: MessageReference): { id: MessageId; author: BareJid } {
  try {
    return {
      id: parseMessageId(ref.id, "reference/@id"),
      author: parseUserJid(ref.author, "reference/@author"),
    };
  } catch (err) {
    if (!(err instanceof CodecError)) throw err;
    throw new ConvertError("invalid-reference", `cannot reference message ${ref.id}`, {
      cause: err,
    });
  }
}
