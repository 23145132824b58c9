import { z } from "zod";
import type { ContentElement } from "../../src/interop/codec/index.js";
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
  const content = (elements: ContentElement[]) => users.send(phone, to, elements);
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
        },
        r.caption,
      );
    case "receipt":
      return { sent: await users.sendReceipt(phone, to, r.refs.map(ref)) };
    case "displayed":
      return { sent: await users.sendDisplayed(phone, to, ref(r.ref)) };
    case "typing":
      return { sent: await users.sendTyping(phone, to, r.state) };
  }
}
