import type { NeutralText } from "../../core/network.js";
import { eventId, type EventId } from "../../util/ids.js";
import { htmlToNeutral } from "./html-parse.js";
import { locationToNeutral, mediaToNeutral, reject, type BodyResult } from "./to-neutral-media.js";
import type { MatrixEventInput, MatrixInbound, MatrixMediaOpener } from "./types.js";
import { field, isEventIdString, isRecord, optString, type JsonRecord } from "./validate.js";

/**
 * Inbound Matrix events to the core's neutral model. Content is whatever the sending client
 * chose, so every function here is total: malformed input answers `{ kind: "unsupported" }` with
 * a reason for the log and for the user's failure notice, and never throws.
 */

const HTML_FORMAT = "org.matrix.custom.html";
/** Matrix events are at most 64 KiB, so a longer string cannot be legitimate content. */
const MAX_BODY = 65536;

const unsupported = (reason: string): MatrixInbound => ({ kind: "unsupported", reason });

function toEventId(v: unknown): EventId | undefined {
  return isEventIdString(v) ? eventId(v) : undefined;
}

/**
 * Removes a pre-v1.13 rich-reply fallback from a plain body: the leading `> <@user> ...` quote
 * lines (`> * <@user>` for emotes) and the blank line after them. Only called for replies, and
 * only when the body starts like a fallback, so a reply that merely starts with "> " is kept.
 */
export function stripReplyFallback(body: string): string {
  if (!(body.startsWith("> <") || body.startsWith("> * <")) || !body.includes("\n")) return body;
  const lines = body.split("\n");
  let i = 0;
  while (i < lines.length && (lines[i]?.startsWith("> ") === true || lines[i] === ">")) i++;
  if (lines[i] === "") i++;
  return lines.slice(i).join("\n");
}

/** The text of a message: its HTML when it has usable HTML, else its plain body. */
function messageText(content: JsonRecord, body: string, isReply: boolean): NeutralText {
  const plain = (): NeutralText => ({
    text: isReply ? stripReplyFallback(body) : body,
    spans: [],
  });
  const html = optString(content, "formatted_body", MAX_BODY);
  if (field(content, "format") !== HTML_FORMAT || typeof html !== "string") return plain();
  const parsed = htmlToNeutral(html);
  // HTML that reduced to nothing (only an image, only a reply fallback) says less than the body.
  return parsed.text === "" ? plain() : parsed;
}

/** The body of an m.room.message content (or an edit's m.new_content). */
function messageBody(
  content: unknown,
  isReply: boolean,
  open: MatrixMediaOpener,
  eventType = "m.room.message",
): BodyResult {
  if (!isRecord(content)) return reject("content is not an object");
  const msgtype = eventType === "m.sticker" ? "m.sticker" : field(content, "msgtype");
  const body = optString(content, "body", MAX_BODY);
  if (typeof msgtype !== "string") return reject("content has no msgtype");
  if (typeof body !== "string") return reject(`${msgtype} has no valid body`);
  switch (msgtype) {
    case "m.text":
    case "m.notice":
    case "m.emote": {
      const text = messageText(content, body, isReply);
      if (text.text.trim() === "") return reject(`${msgtype} is empty`);
      if (msgtype === "m.text") return { ok: true, content: { type: "text", text } };
      const flag = msgtype === "m.notice" ? { notice: true } : { emote: true };
      return { ok: true, content: { type: "text", text, ...flag } };
    }
    case "m.image":
    case "m.video":
    case "m.audio":
    case "m.file":
    case "m.sticker":
      return mediaToNeutral(
        msgtype,
        content,
        body,
        () => messageText(content, body, isReply),
        open,
      );
    case "m.location":
      return locationToNeutral(content);
    default:
      return reject(`msgtype ${msgtype} is not supported`);
  }
}

/**
 * The event a message replies to. A thread message counts as a reply (the network has no
 * threads): to its real reply target, or to the thread root when `m.in_reply_to` is only the
 * thread fallback (`is_falling_back`). Malformed relations are ignored: the text still gets through.
 */
function replyTarget(relates: JsonRecord): EventId | undefined {
  const inReplyTo = field(relates, "m.in_reply_to");
  const direct = isRecord(inReplyTo) ? toEventId(field(inReplyTo, "event_id")) : undefined;
  if (field(relates, "rel_type") !== "m.thread") return direct;
  const fallingBack = field(relates, "is_falling_back") === true;
  return (fallingBack ? undefined : direct) ?? toEventId(field(relates, "event_id"));
}

function roomMessage(content: unknown, open: MatrixMediaOpener, type: string): MatrixInbound {
  if (!isRecord(content)) return unsupported("content is not an object");
  const relatesRaw = field(content, "m.relates_to");
  const relates = isRecord(relatesRaw) ? relatesRaw : undefined;
  if (relates !== undefined && field(relates, "rel_type") === "m.replace") {
    const target = toEventId(field(relates, "event_id"));
    if (target === undefined) return unsupported("edit has no valid target event");
    const edited = messageBody(field(content, "m.new_content"), false, open, type);
    if (!edited.ok) return unsupported(`edit: ${edited.reason}`);
    return { kind: "edit", target, content: edited.content, ...mediaOf(edited) };
  }
  const replyTo = relates === undefined ? undefined : replyTarget(relates);
  const converted = messageBody(content, replyTo !== undefined, open, type);
  if (!converted.ok) return unsupported(converted.reason);
  return {
    kind: "message",
    content: converted.content,
    ...(replyTo === undefined ? {} : { replyTo }),
    ...mediaOf(converted),
  };
}

function mediaOf(result: Extract<BodyResult, { ok: true }>) {
  return result.media === undefined ? {} : { media: result.media };
}

function reaction(content: unknown): MatrixInbound {
  const relates = isRecord(content) ? field(content, "m.relates_to") : undefined;
  if (!isRecord(relates) || field(relates, "rel_type") !== "m.annotation") {
    return unsupported("reaction without an m.annotation relation");
  }
  const target = toEventId(field(relates, "event_id"));
  const key = optString(relates, "key", 256);
  if (target === undefined) return unsupported("reaction has no valid target event");
  if (typeof key !== "string" || key === "") return unsupported("reaction has no valid key");
  return { kind: "reaction", target, key };
}

function redaction(event: MatrixEventInput): MatrixInbound {
  // Room version 11 moved `redacts` into the content; older rooms keep it at the top level.
  const inContent = isRecord(event.content) ? field(event.content, "redacts") : undefined;
  const target = toEventId(inContent ?? event.redacts);
  return target === undefined
    ? unsupported("redaction has no valid target event")
    : { kind: "redaction", target };
}

/**
 * Converts one Matrix room event. `open` supplies the bytes of an attachment when the network
 * asks for them (the conversion itself fetches nothing); `media` in the result names the mxc URI
 * and thumbnail for a caller that wants them earlier.
 */
export function matrixEventToNeutral(
  event: MatrixEventInput,
  open: MatrixMediaOpener,
): MatrixInbound {
  const type: unknown = event.type;
  switch (type) {
    case "m.room.message":
    case "m.sticker":
      return roomMessage(event.content, open, type);
    case "m.reaction":
      return reaction(event.content);
    case "m.room.redaction":
      return redaction(event);
    default:
      return unsupported(`event type ${String(type)} is not bridged`);
  }
}
