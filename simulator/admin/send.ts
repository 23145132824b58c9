import { z } from "zod";
import {
  CALL_MEDIA,
  CALL_OUTCOMES,
  DISAPPEARING_TIMERS,
  type ContentElement,
} from "../../src/interop/codec/index.js";
import type { BareJid, MessageId, PhoneNumber } from "../../src/util/ids.js";
import type { SimulatedUsers } from "../users/index.js";

const Ref = z.object({ id: z.string().min(1).max(64), author: z.string().min(3) });

/** `POST /users/{digits}/send`: one message or transport element as the user, by `type`. */
export const SendSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("text"), to: z.string(), text: z.string() }),
  z.object({
    type: z.literal("reply"),
    to: z.string(),
    text: z.string(),
    replyTo: Ref,
    quote: z.string().max(256).optional(),
  }),
  z.object({
    type: z.literal("reaction"),
    to: z.string(),
    target: Ref,
    reactions: z.array(z.string()).max(20),
  }),
  z.object({ type: z.literal("edit"), to: z.string(), id: z.string(), text: z.string() }),
  z.object({ type: z.literal("retract"), to: z.string(), id: z.string() }),
  z.object({
    type: z.literal("media"),
    to: z.string(),
    kind: z.enum(["image", "video", "audio", "document"]),
    /** base64 of the plaintext. */
    data: z.string(),
    mime: z.string(),
    filename: z.string().optional(),
    caption: z.string().optional(),
    width: z.number().int().positive().optional(),
    height: z.number().int().positive().optional(),
    duration: z.number().int().nonnegative().optional(),
    voice: z.boolean().optional(),
    /** base64 of a JPEG preview, sent inline. */
    thumbnail: z
      .object({
        data: z.string(),
        width: z.number().int().positive().optional(),
        height: z.number().int().positive().optional(),
      })
      .optional(),
    waveform: z.array(z.number().int().min(0).max(100)).length(64).optional(),
  }),
  z.object({
    type: z.literal("location"),
    to: z.string(),
    lat: z.number().min(-90).max(90),
    lon: z.number().min(-180).max(180),
    accuracy: z.number().int().nonnegative().optional(),
    name: z.string().optional(),
    address: z.string().optional(),
  }),
  z.object({ type: z.literal("contact"), to: z.string(), vcards: z.array(z.string()).min(1) }),
  z.object({
    type: z.literal("call"),
    to: z.string(),
    callId: z.string().min(1).max(128),
    media: z.enum(CALL_MEDIA),
    outcome: z.enum(CALL_OUTCOMES),
    duration: z.number().int().nonnegative().optional(),
  }),
  z.object({
    type: z.literal("disappearing"),
    to: z.string(),
    timer: z
      .number()
      .int()
      .refine((t) => (DISAPPEARING_TIMERS as readonly number[]).includes(t), "not a §13.10 timer"),
  }),
  z.object({ type: z.literal("receipt"), to: z.string(), refs: z.array(Ref).min(1).max(50) }),
  z.object({ type: z.literal("displayed"), to: z.string(), ref: Ref }),
  z.object({ type: z.literal("typing"), to: z.string(), state: z.enum(["composing", "paused"]) }),
]);

export type SendRequest = z.infer<typeof SendSchema>;

const ref = (r: { id: string; author: string }) => ({
  id: r.id as MessageId,
  author: r.author as BareJid,
});

export async function sendAsUser(
  users: SimulatedUsers,
  phone: PhoneNumber,
  r: SendRequest,
): Promise<unknown> {
  const to = r.to as BareJid;
  // Recorded, so that the chat view (GET /users/{digits}/chats/{jid}) shows what was sent.
  const content = (elements: ContentElement[]) => users.send(phone, to, elements, { record: true });
  switch (r.type) {
    case "text":
      return content([{ kind: "body", text: r.text }]);
    case "reply":
      return content([
        { kind: "reply", ...ref(r.replyTo), quote: r.quote },
        { kind: "body", text: r.text },
      ]);
    case "reaction":
      return content([{ kind: "reactions", ...ref(r.target), reactions: r.reactions }]);
    case "edit":
      return content([
        { kind: "replace", id: r.id as MessageId },
        { kind: "body", text: r.text },
      ]);
    case "retract":
      return content([{ kind: "retract", id: r.id as MessageId, author: undefined }]);
    case "media":
      return users.sendMedia(
        phone,
        to,
        {
          kind: r.kind,
          data: Buffer.from(r.data, "base64"),
          type: r.mime,
          ...(r.filename === undefined ? {} : { filename: r.filename }),
          ...(r.width === undefined ? {} : { width: r.width }),
          ...(r.height === undefined ? {} : { height: r.height }),
          ...(r.duration === undefined ? {} : { duration: r.duration }),
          ...(r.voice === undefined ? {} : { voice: r.voice }),
          ...(r.thumbnail === undefined
            ? {}
            : {
                thumbnail: {
                  jpeg: Buffer.from(r.thumbnail.data, "base64"),
                  ...(r.thumbnail.width === undefined ? {} : { width: r.thumbnail.width }),
                  ...(r.thumbnail.height === undefined ? {} : { height: r.thumbnail.height }),
                },
              }),
          ...(r.waveform === undefined ? {} : { waveform: Uint8Array.from(r.waveform) }),
        },
        r.caption,
        { record: true },
      );
    case "location":
      return content([
        {
          kind: "location",
          lat: r.lat,
          lon: r.lon,
          accuracy: r.accuracy,
          name: r.name,
          address: r.address,
        },
      ]);
    case "contact":
      return content([{ kind: "contact", vcards: r.vcards }]);
    case "call":
      return content([
        {
          kind: "call",
          callId: r.callId,
          media: r.media,
          outcome: r.outcome,
          duration: r.duration,
          initiator: undefined,
        },
      ]);
    case "disappearing":
      return content([{ kind: "disappearing", timer: r.timer }]);
    case "receipt":
      return { sent: await users.sendReceipt(phone, to, r.refs.map(ref)) };
    case "displayed":
      return { sent: await users.sendDisplayed(phone, to, ref(r.ref)) };
    case "typing":
      return { sent: await users.sendTyping(phone, to, r.state) };
  }
}
