import assert from "node:assert/strict";
import type { MessageContent, NeutralMedia } from "../../../src/core/network.js";
import { BridgeError } from "../../../src/util/errors.js";
import { eventId, matrixUserId } from "../../../src/util/ids.js";
import {
  editContent,
  neutralToMatrix,
  reactionContent,
  redactionReason,
  roomMessage,
  withQuote,
} from "../../../src/matrix/convert/from-neutral.js";
import { matrixEventToNeutral } from "../../../src/matrix/convert/to-neutral.js";
import type { EncryptedFile, MatrixInbound } from "../../../src/matrix/convert/types.js";

const MXC = "mxc://bridge.example/Upl0aded";
const noBytes = async (): Promise<AsyncIterable<Uint8Array>> => (async function* () {})();

function media(overrides: Partial<NeutralMedia>): NeutralMedia {
  return { kind: "image", mimeType: "image/jpeg", size: 1000, open: noBytes, ...overrides };
}

/** Reads the produced content back as a Matrix client would, through the inbound converter. */
function readBack(content: unknown): MatrixInbound {
  return matrixEventToNeutral({ type: "m.room.message", content }, noBytes);
}

describe("matrix/convert from-neutral", () => {
  describe("text", () => {
    it("sends unstyled text as body only", () => {
      assert.deepEqual(neutralToMatrix({ type: "text", text: { text: "hi <there>", spans: [] } }), {
        msgtype: "m.text",
        body: "hi <there>",
      });
    });

    it("adds escaped HTML when the text has spans", () => {
      const content = neutralToMatrix({
        type: "text",
        text: { text: "a <b> c", spans: [{ start: 2, end: 5, style: "bold" }] },
      });
      assert.deepEqual(content, {
        msgtype: "m.text",
        body: "a <b> c",
        format: "org.matrix.custom.html",
        formatted_body: "a <strong>&lt;b&gt;</strong> c",
      });
    });

    it("sends notices and emotes with their msgtypes", () => {
      const text = { text: "x", spans: [] };
      assert.equal(neutralToMatrix({ type: "text", text, notice: true }).msgtype, "m.notice");
      assert.equal(neutralToMatrix({ type: "text", text, emote: true }).msgtype, "m.emote");
    });

    it("round-trips every text flavour through the inbound converter", () => {
      const contents: MessageContent[] = [
        { type: "text", text: { text: "plain", spans: [] } },
        { type: "text", text: { text: "styled", spans: [{ start: 0, end: 6, style: "italic" }] } },
        { type: "text", text: { text: "note", spans: [] }, notice: true },
        { type: "text", text: { text: "waves", spans: [] }, emote: true },
      ];
      for (const content of contents) {
        assert.deepEqual(readBack(neutralToMatrix(content)), { kind: "message", content });
      }
    });
  });

  describe("media", () => {
    it("sends an image with info and thumbnail, body and filename equal when there is no caption", () => {
      const content = neutralToMatrix(
        { type: "media", media: media({ fileName: "p.jpg", width: 1280, height: 960 }) },
        {
          url: MXC,
          thumbnail: {
            url: "mxc://bridge.example/t",
            mimeType: "image/jpeg",
            width: 64,
            height: 48,
            size: 900,
          },
        },
      );
      assert.deepEqual(content, {
        msgtype: "m.image",
        body: "p.jpg",
        filename: "p.jpg",
        url: MXC,
        info: {
          mimetype: "image/jpeg",
          size: 1000,
          w: 1280,
          h: 960,
          thumbnail_url: "mxc://bridge.example/t",
          thumbnail_info: { mimetype: "image/jpeg", w: 64, h: 48, size: 900 },
        },
      });
    });

    it("puts a caption in body so clients read it as a caption", () => {
      const sent = neutralToMatrix(
        {
          type: "media",
          media: media({
            kind: "video",
            mimeType: "video/mp4",
            durationSeconds: 7,
            width: 640,
            height: 360,
          }),
          caption: { text: "look", spans: [{ start: 0, end: 4, style: "bold" }] },
        },
        { url: MXC },
      );
      assert.equal(sent.body, "look");
      assert.equal((sent as { filename?: string }).filename, "video.mp4");
      assert.equal((sent as { info: { duration?: number } }).info.duration, 7000);
      const back = readBack(sent);
      assert.equal(back.kind, "message");
      const content = (back as { content: MessageContent }).content;
      assert.equal(content.type, "media");
      assert.deepEqual((content as { caption?: unknown }).caption, {
        text: "look",
        spans: [{ start: 0, end: 4, style: "bold" }],
      });
    });

    it("sends a voice message with MSC3245 and MSC1767 fields, waveform scaled to 0-1024", () => {
      const waveform = Array.from({ length: 64 }, (_, i) => (i % 2 === 0 ? 100 : 50));
      const sent = neutralToMatrix(
        {
          type: "media",
          media: media({
            kind: "audio",
            mimeType: "audio/ogg; codecs=opus",
            voice: true,
            durationSeconds: 7,
            waveform,
          }),
        },
        { url: MXC },
      );
      assert.equal(sent.msgtype, "m.audio");
      assert.equal(sent.body, "Voice message.ogg");
      const s = sent as unknown as Record<string, unknown>;
      assert.deepEqual(s["org.matrix.msc3245.voice"], {});
      const audio = s["org.matrix.msc1767.audio"] as { duration: number; waveform: number[] };
      assert.equal(audio.duration, 7000);
      assert.deepEqual(audio.waveform.slice(0, 2), [1024, 512]);
      const back = readBack(sent) as { content: { media: NeutralMedia } };
      assert.deepEqual(back.content.media.waveform, waveform);
      assert.equal(back.content.media.voice, true);
      assert.equal(back.content.media.durationSeconds, 7);
    });

    it("sends documents as m.file and uses the encrypted file in encrypted rooms", () => {
      const file: EncryptedFile = {
        url: MXC,
        key: { kty: "oct", key_ops: ["encrypt", "decrypt"], alg: "A256CTR", k: "a2V5", ext: true },
        iv: "aXY",
        hashes: { sha256: "aGFzaA" },
        v: "v2",
      };
      const sent = neutralToMatrix(
        {
          type: "media",
          media: media({ kind: "document", mimeType: "application/pdf", fileName: "r.pdf" }),
        },
        { file },
      );
      assert.equal(sent.msgtype, "m.file");
      assert.deepEqual((sent as { file?: unknown }).file, file);
      assert.equal((sent as { url?: unknown }).url, undefined);
    });

    it("refuses media nobody uploaded, naming the problem", () => {
      assert.throws(
        () => neutralToMatrix({ type: "media", media: media({}) }),
        (err: unknown) => err instanceof BridgeError && err.code === "media-not-uploaded",
      );
    });
  });

  describe("other content", () => {
    it("sends a location as a geo URI with a readable body", () => {
      const sent = neutralToMatrix({
        type: "location",
        lat: 52.5200066,
        lon: 13.404954,
        accuracy: 12,
        name: "Alexanderplatz",
        address: "10178 Berlin",
      });
      assert.equal(sent.msgtype, "m.location");
      const loc = sent as { geo_uri: string; body: string };
      assert.equal(loc.geo_uri, "geo:52.5200066,13.404954;u=12");
      assert.match(
        loc.body,
        /^Location: Alexanderplatz, 10178 Berlin\nhttps:\/\/www\.openstreetmap\.org\//,
      );
      assert.deepEqual((readBack(sent) as { content: unknown }).content, {
        type: "location",
        lat: 52.5200066,
        lon: 13.404954,
        accuracy: 12,
        name: "Alexanderplatz, 10178 Berlin",
      });
    });

    it("writes tiny coordinates without exponent notation", () => {
      const sent = neutralToMatrix({ type: "location", lat: 1e-7, lon: -0.5 }) as {
        geo_uri: string;
      };
      assert.equal(sent.geo_uri, "geo:0.0000001,-0.5");
    });

    it("lists shared contacts as text with international numbers", () => {
      const vcard =
        "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Carol Example\r\nTEL;TYPE=CELL:+491705550123\r\nEMAIL:carol@example.org\r\nEND:VCARD\r\n";
      const sent = neutralToMatrix({
        type: "contacts",
        vcards: [vcard, "BEGIN:VCARD\r\nTEL:+12025550123\r\nEND:VCARD"],
      });
      assert.deepEqual(sent, {
        msgtype: "m.text",
        body: "Contact: Carol Example\n+49 170 5550123\ncarol@example.org\n\nContact: +1 202 555 0123",
        format: "org.matrix.custom.html",
        formatted_body:
          "Contact: <strong>Carol Example</strong><br>+49 170 5550123<br>carol@example.org<br><br>Contact: <strong>+1 202 555 0123</strong>",
      });
    });

    it("writes call notices people can read", () => {
      const call = (
        outcome: "missed" | "declined" | "ended" | "no-answer",
        m: "audio" | "video",
        d?: number,
      ) =>
        neutralToMatrix({
          type: "call",
          media: m,
          outcome,
          ...(d === undefined ? {} : { durationSeconds: d }),
        });
      assert.deepEqual(call("missed", "video"), { msgtype: "m.notice", body: "Missed video call" });
      assert.equal(call("declined", "audio").body, "Declined voice call");
      assert.equal(call("ended", "audio", 125).body, "Voice call ended (2:05)");
      assert.equal(call("ended", "video", 3725).body, "Video call ended (1:02:05)");
      assert.equal(call("no-answer", "video").body, "Video call, no answer");
    });

    it("sends unsupported content as a notice with its fallback", () => {
      assert.deepEqual(neutralToMatrix({ type: "unsupported", fallback: "Poll: lunch?" }), {
        msgtype: "m.notice",
        body: "Poll: lunch?",
      });
      assert.deepEqual(neutralToMatrix({ type: "unsupported" }), {
        msgtype: "m.notice",
        body: "Unsupported message",
      });
    });
  });

  describe("relations", () => {
    const target = eventId("$orig:example.org");

    it("makes a reply with m.in_reply_to and no fallback, mentioning the replied-to sender", () => {
      const sent = roomMessage(
        neutralToMatrix({ type: "text", text: { text: "Yes!", spans: [] } }),
        {
          eventId: target,
          sender: matrixUserId("@alice:example.org"),
        },
      );
      assert.deepEqual(sent, {
        msgtype: "m.text",
        body: "Yes!",
        "m.mentions": { user_ids: ["@alice:example.org"] },
        "m.relates_to": { "m.in_reply_to": { event_id: target } },
      });
      assert.deepEqual(readBack(sent), {
        kind: "message",
        content: { type: "text", text: { text: "Yes!", spans: [] } },
        replyTo: target,
      });
    });

    it("mentions nobody in a plain message", () => {
      assert.deepEqual(roomMessage({ msgtype: "m.text", body: "x" })["m.mentions"], {});
    });

    it("makes an edit with m.new_content, '* ' fallback and m.replace", () => {
      const replacement = neutralToMatrix({
        type: "text",
        text: { text: "fixed", spans: [{ start: 0, end: 5, style: "bold" }] },
      });
      const sent = editContent(target, replacement);
      assert.deepEqual(sent, {
        msgtype: "m.text",
        body: "* fixed",
        format: "org.matrix.custom.html",
        formatted_body: "* <strong>fixed</strong>",
        "m.mentions": {},
        "m.new_content": {
          msgtype: "m.text",
          body: "fixed",
          format: "org.matrix.custom.html",
          formatted_body: "<strong>fixed</strong>",
          "m.mentions": {},
        },
        "m.relates_to": { rel_type: "m.replace", event_id: target },
      });
      const back = readBack(sent);
      assert.equal(back.kind, "edit");
      assert.deepEqual((back as { content: unknown }).content, {
        type: "text",
        text: { text: "fixed", spans: [{ start: 0, end: 5, style: "bold" }] },
      });
    });

    it("makes an annotation for a reaction", () => {
      const content = reactionContent(target, "👍");
      assert.deepEqual(content, {
        "m.relates_to": { rel_type: "m.annotation", event_id: target, key: "👍" },
      });
      assert.deepEqual(matrixEventToNeutral({ type: "m.reaction", content }, noBytes), {
        kind: "reaction",
        target,
        key: "👍",
      });
    });

    it("gives the redaction reason for a deleted message", () => {
      assert.equal(redactionReason(), "This message was deleted");
    });

    it("puts the network's quote above a reply whose target has no Matrix event", () => {
      const text = withQuote(
        { text: "Yes!", spans: [{ start: 0, end: 3, style: "bold" }] },
        "Coming tonight?",
      );
      assert.deepEqual(text, {
        text: "Coming tonight?\nYes!",
        spans: [
          { start: 0, end: 15, style: "quote" },
          { start: 16, end: 19, style: "bold" },
        ],
      });
      assert.equal(neutralToMatrix({ type: "text", text }).body, "> Coming tonight?\nYes!");
    });
  });
});
