import type {
  MessageContent,
  MessageReference,
  NeutralText,
  RemoteEvent,
  RemoteMessageId,
  RemoteUserId,
} from "../../core/network.js";
import type { BareJid, MessageId } from "../../util/ids.js";
import type { ContentElement } from "../codec/content.js";
import { phoneOfJid } from "../codec/jid.js";
import { NS } from "../codec/namespaces.js";
import { disappearingNotice } from "./degrade.js";
import { inboundMedia, neutralMedia, type InboundMedia, type MediaOpener } from "./media.js";
import { parseStyling } from "./styling.js";

/** The authenticated parts of a decrypted envelope (§12.2), after its binding was checked. */
export interface InboundEnvelope {
  readonly from: BareJid;
  readonly id: MessageId;
  readonly time: Date;
  readonly content: readonly ContentElement[];
}

export interface InboundContext {
  /** The gatekeeper's `seq` (§15.6). */
  readonly order: number;
  /** First contact from an unknown sender (§10.3). */
  readonly isRequest: boolean;
  /** Opens a media item's verified plaintext; called lazily by the core. */
  readonly openMedia: MediaOpener;
  /** How the sender is named in notices; defaults to the phone number of a gatekeeper JID. */
  readonly senderLabel?: string;
  /**
   * `keep` (default): `text` is the body as sent, markers included and covered by the spans, as
   * §13.1 wants for plain display. `strip`: markers removed (see styling.ts).
   */
  readonly markers?: "keep" | "strip";
}

interface InboundConversion {
  /** For the core, in this order. Empty when the content holds nothing to show. */
  readonly events: RemoteEvent[];
  /** §13.11: user-asserted, shown only as secondary text beside the phone number (§9.3). */
  readonly nick: string | undefined;
  /** The message's media, for a media layer that prefetches; also inside `events`. */
  readonly media: InboundMedia | undefined;
  /** Element names present but not shown (for debug logs; never their content). */
  readonly ignored: readonly string[];
}

type Kind = ContentElement["kind"];
type Of<K extends Kind> = Extract<ContentElement, { kind: K }>;

/** Elements that say something about a message but are not one (sender keys: crypto layer). */
const METADATA: readonly Kind[] = ["nick", "expire", "sender-key"];

/** A notice event derived from a message gets this suffix: `#` never occurs in an origin-id. */
const DISAPPEARING_NOTICE_SUFFIX = "#disappearing";
/** Suffix of the notice's message id for a media element the codec could not accept. */
const REFUSED_MEDIA_NOTICE_SUFFIX = "#media-refused";

/**
 * One decrypted envelope -> the core's events (§13). Precedence: `retract`, then `reactions`,
 * then `replace` (an edit of the body), otherwise a message whose content is the first of media,
 * location, contact, call, body (a body with media is the caption). A message with no element
 * this bridge can show becomes `unsupported` with the `<fallback>` text, if any (§7.5), keeping
 * its reply reference. Never throws: the codec already turned broken elements into `unknown`.
 *
 * Authorisation (edits and retractions only from the author, within their windows: §13.6, §13.7)
 * needs the stored original and is the core's job; `target.author` of a group admin's retraction
 * is the element's `author`.
 */
export function toNeutral(env: InboundEnvelope, ctx: InboundContext): InboundConversion {
  const first = <K extends Kind>(kind: K): Of<K> | undefined =>
    env.content.find((e): e is Of<K> => e.kind === kind);
  const from = env.from as string as RemoteUserId;
  const ref = (author: BareJid, id: MessageId): MessageReference => ({
    author: author as string as RemoteUserId,
    id: id as string as RemoteMessageId,
  });
  const body = first("body");
  const text = (s: string): NeutralText => {
    const parsed = parseStyling(s);
    return ctx.markers === "strip" ? parsed.withoutMarkers : parsed.withMarkers;
  };
  const nick = first("nick")?.nick;
  const used = new Set<ContentElement>();
  const use = <T extends ContentElement | undefined>(e: T): T => {
    if (e !== undefined) used.add(e);
    return e;
  };
  const result = (events: RemoteEvent[], media?: InboundMedia): InboundConversion => ({
    events,
    nick,
    media,
    ignored: env.content
      .filter((e) => !used.has(e) && !METADATA.includes(e.kind))
      .map((e) => (e.kind === "unknown" ? `unknown:${e.name}` : e.kind)),
  });

  const retract = use(first("retract"));
  if (retract !== undefined) {
    return result([{ kind: "retract", from, target: ref(retract.author ?? env.from, retract.id) }]);
  }
  const reactions = use(first("reactions"));
  if (reactions !== undefined) {
    const emojis = [...new Set(reactions.reactions)];
    return result([
      { kind: "reactions", from, target: ref(reactions.author, reactions.id), emojis },
    ]);
  }
  const replace = use(first("replace"));
  if (replace !== undefined) {
    if (body === undefined) return result([]);
    use(body);
    const content: MessageContent = { type: "text", text: text(body.text) };
    const target = ref(env.from, replace.id);
    return result([{ kind: "edit", from, target, content, order: ctx.order }]);
  }

  const mediaEl = use(first("media"));
  const media = mediaEl === undefined ? undefined : inboundMedia(mediaEl.media);
  const content = primaryContent(env, media, ctx, text, use);
  const reply = use(first("reply"));
  const disappearing = use(first("disappearing"));
  const events: RemoteEvent[] = [];
  if (disappearing !== undefined) {
    const label = ctx.senderLabel ?? phoneOfJid(env.from) ?? env.from;
    const notice = disappearingNotice(label, disappearing.timer);
    const suffix = content === undefined ? "" : DISAPPEARING_NOTICE_SUFFIX;
    events.push(message(env, ctx, `${env.id}${suffix}`, noticeContent(notice)));
  }
  // A media element whose URL the codec refused (a `file:` or other non-http URL) would
  // otherwise vanish and leave only its caption: the user is told a file did not come through,
  // in the words of the media layer's own refusal (src/core/remote-events.ts).
  const refusedMedia =
    mediaEl === undefined
      ? env.content.find(
          (e) =>
            e.kind === "unknown" &&
            e.name === "media" &&
            e.ns === NS.content &&
            e.path?.endsWith("@url") === true,
        )
      : undefined;
  const shown =
    content ??
    (disappearing === undefined && refusedMedia === undefined ? unsupported(env, use) : undefined);
  if (shown !== undefined) {
    const event = message(env, ctx, env.id, shown);
    if (reply !== undefined) {
      event.replyTo = {
        ...ref(reply.author, reply.id),
        ...(reply.quote === undefined ? {} : { quote: reply.quote }),
      };
    }
    events.push(event);
  }
  if (refusedMedia !== undefined) {
    use(refusedMedia);
    const label = ctx.senderLabel ?? phoneOfJid(env.from) ?? env.from;
    events.push(
      message(
        env,
        ctx,
        `${env.id}${REFUSED_MEDIA_NOTICE_SUFFIX}`,
        noticeContent(
          `${label} sent a file that could not be received: it failed the bridge's safety ` +
            "checks. Ask them to send it again.",
        ),
      ),
    );
  }
  return result(events, media);
}

type MessageEvent = Extract<RemoteEvent, { kind: "message" }>;

function message(
  env: InboundEnvelope,
  ctx: InboundContext,
  id: string,
  content: MessageContent,
): MessageEvent {
  return {
    kind: "message",
    from: env.from as string as RemoteUserId,
    id: id as RemoteMessageId,
    sentAt: env.time,
    order: ctx.order,
    content,
    isRequest: ctx.isRequest,
  };
}

const noticeContent = (notice: string): MessageContent => ({
  type: "text",
  text: { text: notice, spans: [] },
  notice: true,
});

/** The message's own content; marks the elements it came from through `use`. */
function primaryContent(
  env: InboundEnvelope,
  media: InboundMedia | undefined,
  ctx: InboundContext,
  text: (s: string) => NeutralText,
  use: <T extends ContentElement | undefined>(e: T) => T,
): MessageContent | undefined {
  const body = env.content.find((e): e is Of<"body"> => e.kind === "body");
  if (media !== undefined) {
    const caption = use(body);
    const content: MessageContent = {
      type: "media",
      media: neutralMedia(media, ctx.openMedia(media)),
    };
    if (caption !== undefined && caption.text.trim() !== "") content.caption = text(caption.text);
    return content;
  }
  for (const e of env.content) {
    switch (e.kind) {
      case "location":
        use(e);
        return {
          type: "location",
          lat: e.lat,
          lon: e.lon,
          ...(e.accuracy === undefined ? {} : { accuracy: e.accuracy }),
          ...(e.name === undefined ? {} : { name: e.name }),
          ...(e.address === undefined ? {} : { address: e.address }),
        };
      case "contact":
        use(e);
        return { type: "contacts", vcards: [...e.vcards] };
      case "call":
        use(e);
        return {
          type: "call",
          media: e.media,
          outcome: e.outcome,
          ...(e.duration === undefined ? {} : { durationSeconds: e.duration }),
        };
      default:
        break;
    }
  }
  if (body !== undefined) return { type: "text", text: text(use(body).text) };
  return undefined;
}

/**
 * Nothing to show: the fallback text or the placeholder (§7.5), unless the content held only
 * metadata (a nick, an expire marker, a sender key), which is no message at all.
 */
function unsupported(
  env: InboundEnvelope,
  use: <T extends ContentElement | undefined>(e: T) => T,
): MessageContent | undefined {
  const meaningful = env.content.filter((e) => !METADATA.includes(e.kind));
  if (env.content.length > 0 && meaningful.length === 0) return undefined;
  const fallback = use(env.content.find((e): e is Of<"fallback"> => e.kind === "fallback"));
  return fallback !== undefined && fallback.text.trim() !== ""
    ? { type: "unsupported", fallback: fallback.text }
    : { type: "unsupported" };
}
