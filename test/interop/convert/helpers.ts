import type { NeutralMedia, RemoteEvent } from "../../../src/core/network.js";
import { decodeEnvelope, encodeEnvelope } from "../../../src/interop/codec/envelope.js";
import type { ContentElement } from "../../../src/interop/codec/content.js";
import type { InboundMedia } from "../../../src/interop/convert/media.js";
import type { InboundContext, InboundEnvelope } from "../../../src/interop/convert/to-neutral.js";
import type { BareJid, MessageId } from "../../../src/util/ids.js";

export const GK = "491701234567@wa.example" as BareJid;
export const ALICE = "alice=3amatrix.bridge.example@matrix.bridge.example" as BareJid;
export const NS = "urn:interop:content:0";
export const B64_32 = Buffer.alloc(32, 7).toString("base64");

/** A tiny JPEG: SOI, an APP0 segment, a baseline frame of 64x48, EOI. */
export const JPEG = Uint8Array.from([
  0xff,
  0xd8,
  0xff,
  0xe0,
  0x00,
  0x10,
  ...new Array<number>(14).fill(0),
  0xff,
  0xc0,
  0x00,
  0x11,
  0x08,
  0x00,
  0x30,
  0x00,
  0x40,
  0x03,
  ...new Array<number>(12).fill(0),
  0xff,
  0xd9,
]);

const TAIL = (from: BareJid, to: BareJid): string =>
  `</content><id value='m1'/><time stamp='2025-03-01T12:00:00.000Z'/><to jid='${to}'/>` +
  `<from jid='${from}'/></envelope>`;

/** Decodes content elements the way a received envelope would carry them. */
export function inbound(...elements: string[]): InboundEnvelope {
  const env = decodeEnvelope(
    `<envelope xmlns='urn:interop:envelope:0'><content>${elements.join("")}${TAIL(GK, ALICE)}`,
  );
  return { from: env.from, id: env.id, time: env.time, content: env.content };
}

/** Sends content through a real envelope encode and decode, as the gatekeeper would deliver it. */
export function overTheWire(content: ContentElement[], from: BareJid = ALICE): InboundEnvelope {
  const env = decodeEnvelope(
    encodeEnvelope({
      content,
      id: "m2" as MessageId,
      time: new Date("2025-03-01T12:00:00.000Z"),
      to: GK,
      from,
    }),
  );
  return { from: env.from, id: env.id, time: env.time, content: env.content };
}

export function inboundContext(opened: InboundMedia[] = []): InboundContext {
  return {
    order: 42,
    isRequest: false,
    openMedia: (media) => {
      opened.push(media);
      return async () => (async function* () {})();
    },
  };
}

export type MessageEvent = Extract<RemoteEvent, { kind: "message" }>;

export function onlyMessage(events: readonly RemoteEvent[]): MessageEvent {
  if (events.length !== 1 || events[0]?.kind !== "message") {
    throw new Error(`expected one message event, got ${JSON.stringify(events)}`);
  }
  return events[0];
}

export function neutralMedia(fields: Partial<NeutralMedia> & Pick<NeutralMedia, "kind">) {
  const media: NeutralMedia = {
    mimeType: "application/octet-stream",
    size: 1000,
    open: async () => (async function* () {})(),
    ...fields,
  };
  return media;
}
