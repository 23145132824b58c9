import type { MessageContent } from "../../core/network.js";
import type { BareJid, MessageId } from "../../util/ids.js";
import type { ContentElement } from "../codec/content.js";
import { FEATURE } from "../codec/namespaces.js";
import { RETRACT_FALLBACK, reactionFallback } from "./degrade.js";
import { ConvertError } from "./errors.js";
import {
  bodyElement,
  checkBody,
  fallbackElement,
  featureMode,
  limitsOf,
  notNegotiated,
  styledBody,
  type OutboundContext,
} from "./outbound.js";
import { utf8Bytes, wireText } from "./text.js";

/**
 * Edits, retractions and reaction sets towards the gatekeeper (§13.5-§13.7). None of them has a
 * 1:1 stand-in: without the negotiated feature they throw `feature-not-negotiated`, which the core
 * shows as a notice. In groups they are sent with a `<fallback>` (§7.6).
 */

/** An edit of the original message `target` (never of an earlier edit, §13.6): text or caption. */
export function editElements(
  target: MessageId,
  content: MessageContent,
  ctx: OutboundContext,
): ContentElement[] {
  const mode = featureMode(ctx, FEATURE.edit);
  if (mode === "absent") throw notNegotiated(FEATURE.edit, "An edit");
  let body: string;
  if (content.type === "text") body = styledBody(content.text);
  else if (content.type === "media") {
    body = content.caption === undefined ? "" : styledBody(content.caption);
  } else {
    throw new ConvertError("unsupported-content", `a ${content.type} message cannot be edited`);
  }
  checkBody(body, limitsOf(ctx));
  const out: ContentElement[] = [{ kind: "replace", id: target }, bodyElement(body)];
  if (mode === "with-fallback") out.push(fallbackElement(body === "" ? "(edited)" : body));
  return out;
}

/**
 * Delete for everyone (§13.7). `author` names the original author when a group admin retracts
 * someone else's message; it is omitted otherwise.
 */
export function retractElements(
  target: MessageId,
  ctx: OutboundContext,
  author?: BareJid,
): ContentElement[] {
  const mode = featureMode(ctx, FEATURE.retract);
  if (mode === "absent") throw notNegotiated(FEATURE.retract, "Deleting for everyone");
  const out: ContentElement[] = [{ kind: "retract", id: target, author }];
  if (mode === "with-fallback") out.push(fallbackElement(RETRACT_FALLBACK));
  return out;
}

const MAX_REACTION_BYTES = 32;
const graphemes = new Intl.Segmenter(undefined, { granularity: "grapheme" });
const EMOJI = /\p{Extended_Pictographic}|\p{Regional_Indicator}|\u20E3/u;

const isOneEmoji = (r: string): boolean =>
  r !== "" &&
  utf8Bytes(r) <= MAX_REACTION_BYTES &&
  [...graphemes.segment(r)].length === 1 &&
  EMOJI.test(r);

/**
 * The sender's complete reaction set for a message (§13.5); empty removes every reaction.
 * Duplicates are dropped; each reaction must be one emoji grapheme cluster of at most 32 bytes
 * (Extended_Pictographic, a flag or a keycap: Matrix allows any text as a reaction) and the
 * set at most `max-reactions` long (else `invalid-reactions`). `quote` feeds the group fallback.
 */
export function reactionElements(
  target: { id: MessageId; author: BareJid },
  emojis: readonly string[],
  ctx: OutboundContext,
  quote?: string,
): ContentElement[] {
  const mode = featureMode(ctx, FEATURE.reactions);
  if (mode === "absent") throw notNegotiated(FEATURE.reactions, "A reaction");
  const reactions = [...new Set(emojis.map((e) => wireText(e).trim()))];
  for (const r of reactions) {
    if (!isOneEmoji(r)) {
      throw new ConvertError("invalid-reactions", `"${r.slice(0, 40)}" is not a single emoji`);
    }
  }
  const { maxReactions } = limitsOf(ctx);
  if (reactions.length > maxReactions) {
    throw new ConvertError(
      "invalid-reactions",
      `${reactions.length} reactions exceed the gatekeeper's limit of ${maxReactions}`,
      { limit: maxReactions },
    );
  }
  const out: ContentElement[] = [{ kind: "reactions", ...target, reactions }];
  if (mode === "with-fallback") out.push(fallbackElement(reactionFallback(reactions, quote)));
  return out;
}
