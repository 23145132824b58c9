import assert from "node:assert/strict";
import type { MessageContent, NeutralText } from "../../../src/core/network.js";
import type { ContentElement } from "../../../src/interop/codec/content.js";
import { encodeEnvelope } from "../../../src/interop/codec/envelope.js";
import { ALL_FEATURES, FEATURE } from "../../../src/interop/codec/namespaces.js";
import { ConvertError, sendFailureOf } from "../../../src/interop/convert/errors.js";
import { estimateEnvelopeBytes } from "../../../src/interop/convert/envelope-size.js";
import { messageElements } from "../../../src/interop/convert/from-neutral.js";
import type { OutboundContext } from "../../../src/interop/convert/outbound.js";
import { toNeutral } from "../../../src/interop/convert/to-neutral.js";
import type { MessageId } from "../../../src/util/ids.js";
import { ALICE, GK, inboundContext, onlyMessage, overTheWire } from "./helpers.js";

const ALL: OutboundContext = { features: new Set(ALL_FEATURES) };
const NONE: OutboundContext = { features: new Set() };
const plain = (text: string): NeutralText => ({ text, spans: [] });
const textMsg = (text: string): MessageContent => ({ type: "text", text: plain(text) });
const REPLY = {
  id: "3EB0A91C52" as MessageId,
  author: GK,
  quote: "Are you coming tonight?\nsecond",
};

function assertConvertError(fn: () => unknown, code: string): ConvertError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ConvertError, `expected ConvertError, got ${String(caught)}`);
  assert.equal(caught.code, code);
  return caught;
}

const kinds = (els: readonly ContentElement[]): string[] => els.map((e) => e.kind);
const bodyOf = (els: readonly ContentElement[]): string | undefined => {
  const b = els.find((e) => e.kind === "body");
  return b?.kind === "body" ? b.text : undefined;
};

describe("neutral messages -> interop content (§13, §7.6)", () => {
  it("writes styled text as a §13.1 body", () => {
    const content: MessageContent = {
      type: "text",
      text: { text: "bold move", spans: [{ start: 0, end: 4, style: "bold" }] },
    };
    assert.deepEqual(messageElements(content, NONE), [{ kind: "body", text: "*bold* move" }]);
  });

  it("writes an emote as /me and normalises text for the wire", () => {
    const emote: MessageContent = { type: "text", text: plain("waves"), emote: true };
    assert.equal(bodyOf(messageElements(emote, NONE)), "/me waves");
    const dirty = textMsg("cafe\u0301\u0000 \uD800ok");
    assert.equal(bodyOf(messageElements(dirty, NONE)), "café ok");
  });

  it("sends a reply element with a quote of at most 256 characters when #reply is negotiated", () => {
    const long = { ...REPLY, quote: "q".repeat(300) };
    const els = messageElements(textMsg("Yes!"), ALL, { replyTo: long });
    assert.deepEqual(kinds(els), ["reply", "body"]);
    const reply = els[0];
    assert.equal(reply?.kind === "reply" && [...(reply.quote ?? "")].length, 256);
    assert.equal(bodyOf(els), "Yes!");
  });

  it("degrades a reply without #reply into a quoted first line above the text", () => {
    const els = messageElements(textMsg("Yes!"), NONE, { replyTo: REPLY });
    assert.deepEqual(els, [{ kind: "body", text: "> Are you coming tonight?\nYes!" }]);
    const noQuote = messageElements(textMsg("Yes!"), NONE, {
      replyTo: { id: REPLY.id, author: GK },
    });
    assert.deepEqual(noQuote, [{ kind: "body", text: "Yes!" }]);
  });

  it("drops a degraded quote rather than exceeding max-body-bytes", () => {
    const ctx: OutboundContext = { features: new Set(), limits: { maxBodyBytes: 10 } };
    assert.deepEqual(messageElements(textMsg("0123456789"), ctx, { replyTo: REPLY }), [
      { kind: "body", text: "0123456789" },
    ]);
  });

  it("refuses a body above max-body-bytes with a typed error the core shows as too-large", () => {
    const ctx: OutboundContext = { features: new Set(), limits: { maxBodyBytes: 8 } };
    const err = assertConvertError(() => messageElements(textMsg("ééééé"), ctx), "body-too-large");
    assert.equal(err.details.limit, 8);
    assert.equal(sendFailureOf(err).code, "too-large");
    assert.doesNotThrow(() => messageElements(textMsg("éééé"), ctx));
  });

  it("sends a location element with #location and a map link without it", () => {
    const loc: MessageContent = {
      type: "location",
      lat: 52.5200066,
      lon: 13.404954,
      accuracy: 12.4,
      name: "Alexanderplatz",
      address: "10178 Berlin",
    };
    assert.deepEqual(messageElements(loc, ALL), [
      {
        kind: "location",
        lat: 52.5200066,
        lon: 13.404954,
        accuracy: 12,
        name: "Alexanderplatz",
        address: "10178 Berlin",
      },
    ]);
    assert.equal(
      bodyOf(messageElements(loc, NONE)),
      "📍 Alexanderplatz, 10178 Berlin\n" +
        "https://www.openstreetmap.org/?mlat=52.5200066&mlon=13.404954#map=16/52.5200066/13.404954",
    );
    const bad: MessageContent = { type: "location", lat: 91, lon: 0 };
    assertConvertError(() => messageElements(bad, ALL), "unsupported-content");
  });

  it("sends contact cards with CRLF lines with #contact and their names and numbers without", () => {
    const card =
      "BEGIN:VCARD\nVERSION:3.0\nFN:Carol Example\nTEL;TYPE=CELL:+491705550123\nEND:VCARD\n";
    const v4 =
      "BEGIN:VCARD\r\nVERSION:4.0\r\nN:Doe;Jane;;;\r\nTEL;VALUE=uri:tel:+4930\r\n 1234\r\nEND:VCARD";
    const content: MessageContent = { type: "contacts", vcards: [card, v4] };
    assert.deepEqual(messageElements(content, ALL), [
      { kind: "contact", vcards: [card.replace(/\n/g, "\r\n"), v4] },
    ]);
    assert.equal(
      bodyOf(messageElements(content, NONE)),
      "👤 Carol Example: +491705550123\n👤 Jane Doe: +49301234",
    );
  });

  it("sends only as many vCards as fit the envelope (§13.9)", () => {
    const card = `BEGIN:VCARD\r\nVERSION:3.0\r\nFN:${"x".repeat(7000)}\r\nEND:VCARD\r\n`;
    const ctx: OutboundContext = { ...ALL, envelope: { to: GK, from: ALICE } };
    const els = messageElements({ type: "contacts", vcards: [card, card, card, card, card] }, ctx);
    const contact = els[0];
    assert.equal(contact?.kind, "contact");
    assert.equal(contact?.kind === "contact" && contact.vcards.length, 4);
    assert.ok(estimateEnvelopeBytes(els, { to: GK, from: ALICE }) <= 32768);
  });

  it("sends a call notice with #call and its text without", () => {
    const call: MessageContent = { type: "call", media: "video", outcome: "missed" };
    const [el] = messageElements(call, ALL, { callId: "c-1" });
    assert.deepEqual(el, {
      kind: "call",
      callId: "c-1",
      media: "video",
      outcome: "missed",
      duration: undefined,
      initiator: undefined,
    });
    assert.equal(bodyOf(messageElements(call, NONE)), "Missed video call");
    const ended: MessageContent = {
      type: "call",
      media: "audio",
      outcome: "ended",
      durationSeconds: 125,
    };
    assert.equal(bodyOf(messageElements(ended, NONE)), "Voice call (2:05)");
  });

  it("adds <nick> only when #nick is negotiated", () => {
    const ctx = (features: string[]): OutboundContext => ({
      features: new Set(features),
      nick: "Alice",
    });
    assert.deepEqual(kinds(messageElements(textMsg("hi"), ctx([FEATURE.nick]))), ["body", "nick"]);
    assert.deepEqual(kinds(messageElements(textMsg("hi"), ctx([]))), ["body"]);
  });

  it("sends an unsupported message's fallback text, and refuses one without any", () => {
    assert.deepEqual(messageElements({ type: "unsupported", fallback: "A poll" }, NONE), [
      { kind: "body", text: "A poll" },
    ]);
    assertConvertError(() => messageElements({ type: "unsupported" }, NONE), "unsupported-content");
    assertConvertError(() => messageElements(textMsg(""), NONE), "unsupported-content");
  });

  describe("round trips through a real envelope", () => {
    const roundTrip = (content: MessageContent, ctx: OutboundContext = ALL) =>
      onlyMessage(toNeutral(overTheWire(messageElements(content, ctx)), inboundContext()).events);

    it("brings text back with the same words and styles", () => {
      const sent: NeutralText = {
        text: "bold and code\nquoted",
        spans: [
          { start: 0, end: 4, style: "bold" },
          { start: 9, end: 13, style: "monospace" },
          { start: 14, end: 20, style: "quote" },
        ],
      };
      const back = toNeutral(overTheWire(messageElements({ type: "text", text: sent }, ALL)), {
        ...inboundContext(),
        markers: "strip",
      });
      assert.deepEqual(onlyMessage(back.events).content, { type: "text", text: sent });
    });

    it("brings location, contacts and calls back unchanged", () => {
      const contents: MessageContent[] = [
        { type: "location", lat: -33.8688, lon: 151.2093, name: "Sydney" },
        { type: "contacts", vcards: ["BEGIN:VCARD\r\nFN:A\r\nEND:VCARD\r\n"] },
        { type: "call", media: "audio", outcome: "ended", durationSeconds: 3 },
      ];
      for (const c of contents) assert.deepEqual(roundTrip(c).content, c);
    });

    it("brings a reply back as a reply with its quote", () => {
      const msg = onlyMessage(
        toNeutral(
          overTheWire(messageElements(textMsg("Yes!"), ALL, { replyTo: REPLY })),
          inboundContext(),
        ).events,
      );
      assert.deepEqual(msg.replyTo, { author: GK, id: REPLY.id, quote: REPLY.quote });
    });
  });

  it("degrades in groups the same way, so that no fallback is needed", () => {
    const group: OutboundContext = { features: new Set(), group: true };
    const loc: MessageContent = { type: "location", lat: 1, lon: 2 };
    assert.deepEqual(kinds(messageElements(loc, group)), ["body"]);
    assert.deepEqual(kinds(messageElements(textMsg("Yes!"), group, { replyTo: REPLY })), ["body"]);
  });

  it("never throws anything but a ConvertError on hostile content, and what it sends parses", () => {
    const styles = ["bold", "italic", "strikethrough", "monospace", "code-block", "quote", "link"];
    const pieces = [
      "*",
      "_",
      "`",
      "```",
      "> ",
      "\n",
      "a",
      " ",
      "\u0000",
      "\uD800",
      "👍",
      "e\u0301",
    ];
    let seed = 11;
    const next = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    for (let round = 0; round < 300; round++) {
      let text = "";
      for (let i = next(60); i > 0; i--) text += pieces[next(pieces.length)];
      const spans = Array.from({ length: next(8) }, () => ({
        start: next(text.length + 3) - 1,
        end: next(text.length + 3),
        style: styles[next(styles.length)] as NeutralText["spans"][number]["style"],
        url: next(2) === 0 ? "https://x.example/_*`" : "",
      }));
      const content: MessageContent = { type: "text", text: { text, spans }, emote: next(2) === 0 };
      try {
        const els = messageElements(content, next(2) === 0 ? ALL : NONE, { replyTo: REPLY });
        assert.ok(overTheWire(els).content.every((e) => e.kind !== "unknown"));
      } catch (err) {
        assert.ok(err instanceof ConvertError, String(err));
      }
    }
  });

  it("estimates at least the real envelope size", () => {
    const els = messageElements(textMsg("x".repeat(1000)), ALL, { replyTo: REPLY });
    const real = encodeEnvelope({
      content: els,
      id: "c8f1a0e2-8d6b-4a57-9b1e-0f3d2c7a9e11" as MessageId,
      time: new Date(),
      to: GK,
      from: ALICE,
    });
    const estimate = estimateEnvelopeBytes(els, { to: GK, from: ALICE });
    assert.ok(estimate >= Buffer.byteLength(real, "utf8"));
    assert.ok(estimate < Buffer.byteLength(real, "utf8") + 400);
  });
});
