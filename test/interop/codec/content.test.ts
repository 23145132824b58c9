import assert from "node:assert/strict";
import {
  decodeContent,
  DEFAULT_CONTENT_LIMITS,
  encodeContentElement,
  sanitizeFilename,
  type ContentElement,
} from "../../../src/interop/codec/content.js";
import { decodeEnvelope, encodeEnvelope } from "../../../src/interop/codec/envelope.js";
import { xml } from "../../../src/interop/codec/xml.js";
import { HASH, SPEC } from "./fixtures.js";

const HEAD = "<envelope xmlns='urn:interop:envelope:0'><content>";
const TAIL =
  "</content><id value='m1'/><time stamp='2025-03-01T12:00:00.000Z'/><to jid='491701234567@wa.example'/>" +
  "<from jid='alice=3amatrix.bridge.example@matrix.bridge.example'/></envelope>";

/** Decodes content elements from a real envelope and checks that encoding them loses nothing. */
function content(...elements: string[]): ContentElement[] {
  const env = decodeEnvelope(HEAD + elements.join("") + TAIL);
  const again = decodeEnvelope(encodeEnvelope(env));
  assert.deepEqual(
    again.content,
    env.content.filter((c) => c.kind !== "unknown"),
  );
  return env.content;
}

const one = (element: string): ContentElement => {
  const [c] = content(element);
  assert.ok(c !== undefined);
  return c;
};

const unknownReason = (element: string): string => {
  const c = one(element);
  assert.equal(c.kind, "unknown", element);
  return c.kind === "unknown" ? c.reason : "";
};

describe("content elements (§13)", () => {
  it("media: the document test vector, an image with thumbnail and a voice message", () => {
    const doc = one(SPEC.media);
    assert.ok(doc.kind === "media");
    assert.equal(doc.media.kind, "document");
    assert.equal(doc.media.size, 1000);
    assert.equal(doc.media.filename, "pattern.bin");
    assert.equal(
      Buffer.from(doc.media.sha256).toString("base64"),
      "TkwpSzMfeiCZo3m+w0ufn8A9xGq0ZdmY9NaD2lNIfm0=",
    );
    // Appendix B, document-1000-bytes-pattern: the hex forms of the vector's values.
    assert.equal(
      Buffer.from(doc.media.key).toString("hex"),
      "fffefdfcfbfaf9f8f7f6f5f4f3f2f1f0efeeedecebeae9e8e7e6e5e4e3e2e1e0",
    );
    assert.equal(
      Buffer.from(doc.media.encSha256).toString("hex"),
      "f041c3b3baab5b1ecdbb4684b5399029ec537b24e72082193881c885fcb6d449",
    );
    const image = one(SPEC.mediaImage);
    assert.ok(image.kind === "media");
    assert.deepEqual([image.media.width, image.media.height], [1280, 960]);
    assert.deepEqual([image.media.thumbnail?.width, image.media.thumbnail?.height], [64, 48]);
    const voice = one(SPEC.mediaVoice);
    assert.ok(voice.kind === "media");
    assert.equal(voice.media.voice, true);
    assert.equal(voice.media.duration, 7);
    assert.equal(voice.media.type, "audio/ogg; codecs=opus");
    assert.equal(voice.media.waveform?.length, 64);
  });

  it("media lacking what its kind requires, or of an unknown kind, is unknown (§7.5)", () => {
    assert.match(
      unknownReason(SPEC.media.replace("<filename>pattern.bin</filename>", "")),
      /filename/,
    );
    assert.match(unknownReason(SPEC.mediaImage.replace("width='1280' ", "")), /width/);
    assert.match(unknownReason(SPEC.mediaVoice.replace("duration='7'", "")), /duration/);
    assert.match(unknownReason(SPEC.media.replace("kind='document'", "kind='sticker'")), /kind/);
    assert.match(
      unknownReason(SPEC.media.replace(/key='[^']*'/, `key='${HASH(1).slice(0, 20)}'`)),
      /key/,
    );
    assert.match(
      unknownReason(SPEC.media.replace(/url='[^']*'/, "url='javascript:alert(1)'")),
      /url/,
    );
  });

  it("a thumbnail above max-thumbnail-bytes makes the media unknown", () => {
    const big = Buffer.alloc(DEFAULT_CONTENT_LIMITS.maxThumbnailBytes + 1).toString("base64");
    assert.match(unknownReason(SPEC.mediaImage.replace("/9j/4AAQSkZJRgABAQ==", big)), /thumbnail/);
  });

  it("reply with quote, reactions, replace, retract", () => {
    const [reply, body] = content(SPEC.reply, "<body xmlns='urn:interop:content:0'>Yes!</body>");
    assert.deepEqual(reply, {
      kind: "reply",
      id: "3EB0A91C52",
      author: "491701234567@wa.example",
      quote: "Are you coming tonight?",
    });
    assert.deepEqual(body, { kind: "body", text: "Yes!" });
    const reactions = one(SPEC.reactions);
    assert.ok(reactions.kind === "reactions");
    assert.deepEqual(reactions.reactions, ["👍"]);
    const empty = one(
      "<reactions xmlns='urn:interop:content:0' id='3EB0A91C52' author='491701234567@wa.example'/>",
    );
    assert.ok(empty.kind === "reactions" && empty.reactions.length === 0);
    assert.deepEqual(one(SPEC.replace), {
      kind: "replace",
      id: "c8f1a0e2-8d6b-4a57-9b1e-0f3d2c7a9e11",
    });
    assert.deepEqual(one(SPEC.retract), {
      kind: "retract",
      id: "c8f1a0e2-8d6b-4a57-9b1e-0f3d2c7a9e11",
      author: undefined,
    });
  });

  it("reactions beyond max-reactions or above 32 bytes, and quotes above 256 characters, are unknown", () => {
    const many = `<reactions xmlns='urn:interop:content:0' id='a' author='491701234567@wa.example'>${"<reaction>👍</reaction>".repeat(21)}</reactions>`;
    assert.match(unknownReason(many), /max-reactions/);
    assert.match(unknownReason(SPEC.reactions.replace("👍", "👍".repeat(9))), /32 bytes/);
    assert.match(
      unknownReason(SPEC.reply.replace("Are you coming tonight?", "x".repeat(257))),
      /quote/,
    );
  });

  it("location: decimals within range; out-of-range coordinates are unknown", () => {
    const loc = one(SPEC.location);
    assert.deepEqual(loc, {
      kind: "location",
      lat: 52.5200066,
      lon: 13.404954,
      accuracy: 12,
      name: "Alexanderplatz",
      address: "10178 Berlin",
    });
    assert.match(unknownReason(SPEC.location.replace("52.5200066", "90.0000001")), /range/);
    assert.match(unknownReason(SPEC.location.replace("13.4049540", "-180.5")), /range/);
    assert.match(unknownReason(SPEC.location.replace("52.5200066", "52,52")), /decimal/);
    assert.match(unknownReason(SPEC.location.replace("52.5200066", "1.123456789")), /decimal/);
  });

  it("contact keeps CRLF vCards; none or more than ten is unknown", () => {
    const c = one(SPEC.contact);
    assert.ok(c.kind === "contact");
    assert.equal(
      c.vcards[0],
      "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Carol Example\r\nTEL;TYPE=CELL:+491705550123\r\nEND:VCARD\r\n",
    );
    assert.match(unknownReason("<contact xmlns='urn:interop:content:0'/>"), /1-10/);
    const eleven = `<contact xmlns='urn:interop:content:0'>${"<vcard>BEGIN:VCARD</vcard>".repeat(11)}</contact>`;
    assert.match(unknownReason(eleven), /1-10/);
  });

  it("disappearing and expire accept only the listed timers", () => {
    assert.deepEqual(one(SPEC.disappearing), { kind: "disappearing", timer: 604800 });
    assert.deepEqual(one(SPEC.expire), { kind: "expire", timer: 604800 });
    assert.deepEqual(one(SPEC.disappearing.replace("604800", "0")), {
      kind: "disappearing",
      timer: 0,
    });
    assert.match(unknownReason(SPEC.disappearing.replace("604800", "3600")), /timer/);
  });

  it("nick, call, fallback and sender-key", () => {
    assert.deepEqual(one(SPEC.nick), { kind: "nick", nick: "Alice" });
    assert.match(
      unknownReason(`<nick xmlns='urn:interop:content:0'>${"n".repeat(65)}</nick>`),
      /64/,
    );
    assert.deepEqual(one(SPEC.call), {
      kind: "call",
      callId: "b9548d57-5184-4cee-9a00-9a5c9b5d550b",
      media: "video",
      outcome: "missed",
      duration: undefined,
      initiator: "491701234567@wa.example",
    });
    assert.match(
      unknownReason(SPEC.call.replace("outcome='missed'", "outcome='ended'")),
      /duration/,
    );
    assert.match(unknownReason(SPEC.call.replace("media='video'", "media='hologram'")), /media/);
    const fallback = one(SPEC.fallback);
    assert.ok(fallback.kind === "fallback" && fallback.text.startsWith("Reacted 👍"));
    const sk = one(SPEC.senderKey);
    assert.ok(
      sk.kind === "sender-key" && sk.group === "k3x9q2@g.wa.example" && sk.skdm.length === 48,
    );
  });

  it("an unknown element or namespace is kept as unknown beside the elements that are understood", () => {
    const items = content(
      "<sticker xmlns='urn:interop:content:0' id='1'/>",
      "<body xmlns='urn:interop:content:1'>new</body>",
      SPEC.fallback,
    );
    assert.deepEqual(
      items.map((c) => (c.kind === "unknown" ? `${c.ns}:${c.name}:${c.reason}` : c.kind)),
      ["urn:interop:content:0:sticker:element", "urn:interop:content:1:body:namespace", "fallback"],
    );
  });

  it("a body above max-body-bytes is unknown", () => {
    const limits = { ...DEFAULT_CONTENT_LIMITS, maxBodyBytes: 4 };
    const parsed = decodeContent(
      xml(
        "content",
        { xmlns: "urn:interop:envelope:0" },
        xml("body", { xmlns: "urn:interop:content:0" }, "12345"),
      ),
      limits,
    );
    assert.equal(parsed[0]?.kind, "unknown");
  });

  it("unknown entries are not re-encoded", () => {
    assert.equal(
      encodeContentElement({ kind: "unknown", name: "x", ns: "u", reason: "element" }),
      undefined,
    );
  });

  it("file names lose path components and control or format characters", () => {
    assert.equal(sanitizeFilename("../../etc/passwd"), "passwd");
    assert.equal(sanitizeFilename("C:\\Users\\x\\evil\u202Etxt.exe"), "eviltxt.exe");
    assert.equal(sanitizeFilename("a\u0000b.pdf"), "ab.pdf");
    assert.equal(sanitizeFilename(".."), "file");
  });
});
