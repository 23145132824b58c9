import type { MessageContent, NeutralText, TextSpan } from "../../core/network.js";
import type { EventId, MatrixUserId } from "../../util/ids.js";
import { formatCoordinate, formatGeoUri } from "./geo.js";
import { hasFormatting, neutralToHtml, neutralToPlain } from "./html-render.js";
import { mediaToMatrix, type UploadedMedia } from "./from-neutral-media.js";
import type {
  LocationContent,
  MatrixMessageContent,
  Mentions,
  ReactionContent,
  RoomMessageContent,
  TextContent,
} from "./types.js";
import { summarizeVcard } from "./vcard.js";

/**
 * The core's neutral content to Matrix contents for a ghost to send. Pure functions: the caller
 * uploads media first and passes where it went, and sends what comes back.
 */

const UNSUPPORTED_TEXT = "Unsupported message";
/** The reason given when a network retraction ("delete for everyone") redacts the Matrix event. */
const RETRACTED_REASON = "This message was deleted";

export function redactionReason(): string {
  return RETRACTED_REASON;
}

function text(t: NeutralText, msgtype: TextContent["msgtype"] = "m.text"): TextContent {
  const content: TextContent = { msgtype, body: neutralToPlain(t) };
  // A body made only of markers (a lone ``` or `> `) has nothing left to show as HTML: an empty
  // formatted_body would show an empty message, so the plain body (the markers) is shown.
  const html = hasFormatting(t) ? neutralToHtml(t) : "";
  if (html !== "") {
    content.format = "org.matrix.custom.html";
    content.formatted_body = html;
  }
  return content;
}

function plainText(
  body: string,
  spans: TextSpan[] = [],
  msgtype: TextContent["msgtype"] = "m.text",
): TextContent {
  return text({ text: body, spans }, msgtype);
}

function location(c: Extract<MessageContent, { type: "location" }>): MatrixMessageContent {
  if (!(Math.abs(c.lat) <= 90 && Math.abs(c.lon) <= 180)) {
    return plainText(UNSUPPORTED_TEXT, [], "m.notice");
  }
  const point = {
    lat: c.lat,
    lon: c.lon,
    ...(c.accuracy === undefined ? {} : { accuracy: c.accuracy }),
  };
  const uri = formatGeoUri(point);
  const label = [c.name, c.address].filter((s) => s !== undefined && s.trim() !== "").join(", ");
  const lat = formatCoordinate(c.lat);
  const lon = formatCoordinate(c.lon);
  const map = `https://www.openstreetmap.org/?mlat=${lat}&mlon=${lon}#map=16/${lat}/${lon}`;
  const content: LocationContent = {
    msgtype: "m.location",
    body: `Location: ${label === "" ? `${lat}, ${lon}` : label}\n${map}`,
    geo_uri: uri,
    "org.matrix.msc3488.location": { uri, ...(label === "" ? {} : { description: label }) },
    // A pin, not m.self: the network does not say whether the point is the sender's position.
    "org.matrix.msc3488.asset": { type: "m.pin" },
  };
  return content;
}

/**
 * Shared contacts as a readable m.text (name in bold, then numbers and e-mail addresses) rather
 * than an m.file of text/vcard: it needs no upload, every client and notification shows it, and
 * the numbers are what a person acts on. The vCard itself is not kept in the room.
 */
function contacts(vcards: readonly string[]): TextContent {
  let body = "";
  const spans: TextSpan[] = [];
  for (const vcard of vcards) {
    const card = summarizeVcard(vcard);
    if (body !== "") body += "\n\n";
    const name = card.name ?? card.phones[0] ?? "Unnamed contact";
    body += "Contact: ";
    spans.push({ start: body.length, end: body.length + name.length, style: "bold" });
    body += name;
    const details = [card.organization, ...card.phones, ...card.emails].filter(
      (d): d is string => d !== undefined && d !== name,
    );
    for (const d of details) body += `\n${d}`;
  }
  return body === "" ? plainText(UNSUPPORTED_TEXT, [], "m.notice") : plainText(body, spans);
}

function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${rest}` : `${m}:${rest}`;
}

/** "Missed video call", "Voice call ended (2:05)": display only, the bridge places no calls. */
function callNoticeText(c: Extract<MessageContent, { type: "call" }>): string {
  const kind = c.media === "video" ? "video call" : "voice call";
  const Kind = kind.charAt(0).toUpperCase() + kind.slice(1);
  switch (c.outcome) {
    case "missed":
      return `Missed ${kind}`;
    case "declined":
      return `Declined ${kind}`;
    case "no-answer":
      return `${Kind}, no answer`;
    case "ended":
      return c.durationSeconds === undefined
        ? `${Kind} ended`
        : `${Kind} ended (${duration(c.durationSeconds)})`;
  }
}

/**
 * The msgtype-specific part of a message. `media` is required for media content (where the
 * caller uploaded it); without it mediaToMatrix throws BridgeError `media-not-uploaded`.
 */
export function neutralToMatrix(
  content: MessageContent,
  media?: UploadedMedia,
): MatrixMessageContent {
  switch (content.type) {
    case "text":
      return text(
        content.text,
        content.emote === true ? "m.emote" : content.notice === true ? "m.notice" : "m.text",
      );
    case "media":
      return mediaToMatrix(content.media, content.caption, media ?? {});
    case "location":
      return location(content);
    case "contacts":
      return contacts(content.vcards);
    case "call":
      return plainText(callNoticeText(content), [], "m.notice");
    case "unsupported": {
      const fallback = content.fallback?.trim();
      return plainText(
        fallback === undefined || fallback === "" ? UNSUPPORTED_TEXT : fallback,
        [],
        "m.notice",
      );
    }
  }
}

interface ReplyTarget {
  eventId: EventId;
  /** The replied-to event's sender, mentioned so the reply notifies them (spec: rich replies). */
  sender?: MatrixUserId;
}

/**
 * A complete m.room.message content. Replies carry only `m.in_reply_to`: since v1.13 the spec
 * no longer has reply fallbacks in `body`/`formatted_body`. `m.mentions` is always present (empty
 * when nobody is mentioned) so that display-name keyword rules do not fire on bridged text.
 */
export function roomMessage(
  content: MatrixMessageContent,
  replyTo?: ReplyTarget,
): RoomMessageContent {
  const mentions: Mentions = replyTo?.sender === undefined ? {} : { user_ids: [replyTo.sender] };
  const message: RoomMessageContent = { ...content, "m.mentions": mentions };
  if (replyTo !== undefined)
    message["m.relates_to"] = { "m.in_reply_to": { event_id: replyTo.eventId } };
  return message;
}

/**
 * An edit (`m.replace`) of `target` to `content`. The top level is the `* `-prefixed fallback for
 * clients without edit support; `m.new_content` is the replacement, without any relation (a reply
 * stays a reply through the original event). Mentions are empty at both levels: a ghost's edit
 * mentions nobody new.
 */
export function editContent(target: EventId, content: MatrixMessageContent): RoomMessageContent {
  const fallback: MatrixMessageContent = { ...content, body: `* ${content.body}` };
  if (fallback.msgtype !== "m.location" && fallback.formatted_body !== undefined) {
    fallback.formatted_body = `* ${fallback.formatted_body}`;
  }
  return {
    ...fallback,
    "m.mentions": {},
    "m.new_content": { ...content, "m.mentions": {} },
    "m.relates_to": { rel_type: "m.replace", event_id: target },
  };
}

/** An m.reaction content: the annotation `key` (an emoji) on `target`. */
export function reactionContent(target: EventId, key: string): ReactionContent {
  return { "m.relates_to": { rel_type: "m.annotation", event_id: target, key } };
}

/**
 * The text of a reply whose target has no Matrix event (never bridged, or deleted): the network's
 * quote as a quote block above the reply, so the context is not lost.
 */
export function withQuote(reply: NeutralText, quote: string): NeutralText {
  const q = quote.trim();
  if (q === "") return reply;
  const offset = q.length + 1;
  return {
    text: `${q}\n${reply.text}`,
    spans: [
      { start: 0, end: q.length, style: "quote" },
      ...reply.spans.map((s) => ({ ...s, start: s.start + offset, end: s.end + offset })),
    ],
  };
}
