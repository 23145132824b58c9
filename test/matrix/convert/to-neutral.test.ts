import assert from "node:assert/strict";
import type { MessageContent, NeutralMedia } from "../../../src/core/network.js";
import {
  matrixEventToNeutral,
  stripReplyFallback,
} from "../../../src/matrix/convert/to-neutral.js";
import type { MatrixInbound, MatrixMediaSource } from "../../../src/matrix/convert/types.js";

const opened: MatrixMediaSource[] = [];
async function* bytes(): AsyncIterable<Uint8Array> {
  yield new Uint8Array([1, 2, 3]);
}
const open = async (source: MatrixMediaSource) => {
  opened.push(source);
  return bytes();
};

const message = (content: unknown): MatrixInbound =>
  matrixEventToNeutral({ type: "m.room.message", content }, open);

function contentOf(result: MatrixInbound): MessageContent {
  assert.equal(result.kind, "message", JSON.stringify(result));
  return (result as Extract<MatrixInbound, { kind: "message" }>).content;
}

function mediaOf(result: MatrixInbound): { media: NeutralMedia; caption?: unknown } {
  const content = contentOf(result);
  assert.equal(content.type, "media");
  return content as Extract<MessageContent, { type: "media" }>;
}

function assertUnsupported(result: MatrixInbound, reason?: RegExp): void {
  assert.equal(result.kind, "unsupported", JSON.stringify(result));
  if (reason !== undefined) assert.match((result as { reason: string }).reason, reason);
}

const MXC = "mxc://example.org/AbCdEf123";

describe("matrix/convert to-neutral", () => {
  describe("text messages", () => {
    it("reads m.text as plain text when it has no HTML", () => {
      assert.deepEqual(contentOf(message({ msgtype: "m.text", body: "hi *there*" })), {
        type: "text",
        text: { text: "hi *there*", spans: [] },
      });
    });

    it("prefers formatted_body in org.matrix.custom.html", () => {
      const content = contentOf(
        message({
          msgtype: "m.text",
          body: "**hi**",
          format: "org.matrix.custom.html",
          formatted_body: "<strong>hi</strong>",
        }),
      );
      assert.deepEqual(content, {
        type: "text",
        text: { text: "hi", spans: [{ start: 0, end: 2, style: "bold" }] },
      });
    });

    it("ignores formatted_body in an unknown format", () => {
      const content = contentOf(
        message({
          msgtype: "m.text",
          body: "plain",
          format: "x.other",
          formatted_body: "<b>no</b>",
        }),
      );
      assert.deepEqual(content, { type: "text", text: { text: "plain", spans: [] } });
    });

    it("flags notices and emotes", () => {
      assert.deepEqual(contentOf(message({ msgtype: "m.notice", body: "bot says" })), {
        type: "text",
        text: { text: "bot says", spans: [] },
        notice: true,
      });
      assert.deepEqual(contentOf(message({ msgtype: "m.emote", body: "waves" })), {
        type: "text",
        text: { text: "waves", spans: [] },
        emote: true,
      });
    });

    it("answers unsupported for an empty text", () => {
      assertUnsupported(message({ msgtype: "m.text", body: "   " }), /empty/);
    });
  });

  describe("replies", () => {
    const reply = {
      msgtype: "m.text",
      body: "> <@bob:example.org> are you coming?\n> tonight\n\nYes!",
      format: "org.matrix.custom.html",
      formatted_body:
        '<mx-reply><blockquote><a href="https://matrix.to/#/!r:example.org/$orig">In reply to</a> ' +
        '<a href="https://matrix.to/#/@bob:example.org">@bob:example.org</a><br>are you coming?</blockquote></mx-reply>Yes!',
      "m.relates_to": { "m.in_reply_to": { event_id: "$orig" } },
    };

    it("names the replied-to event and strips the HTML fallback", () => {
      const result = message(reply);
      assert.deepEqual(result, {
        kind: "message",
        content: { type: "text", text: { text: "Yes!", spans: [] } },
        replyTo: "$orig",
      });
    });

    it("strips the quoted plain fallback of a reply without HTML", () => {
      const { format: _f, formatted_body: _b, ...plain } = reply;
      const result = message(plain);
      assert.deepEqual(contentOf(result), { type: "text", text: { text: "Yes!", spans: [] } });
    });

    it("keeps '> ' lines of a message that is not a reply", () => {
      const body = "> <@bob:example.org> not a fallback\n\nreally";
      assert.deepEqual(contentOf(message({ msgtype: "m.text", body })), {
        type: "text",
        text: { text: body, spans: [] },
      });
    });

    it("keeps a reply that only starts with a quote", () => {
      assert.equal(
        stripReplyFallback("> a quote of my own\n\nanswer"),
        "> a quote of my own\n\nanswer",
      );
      assert.equal(stripReplyFallback("> * <@bob:x> waves\n\nhi"), "hi");
    });

    it("reads a thread message as a reply to the thread root when in_reply_to only falls back", () => {
      const relates = {
        rel_type: "m.thread",
        event_id: "$root",
        is_falling_back: true,
        "m.in_reply_to": { event_id: "$latest" },
      };
      const result = message({ msgtype: "m.text", body: "in thread", "m.relates_to": relates });
      assert.equal((result as { replyTo?: string }).replyTo, "$root");
      const real = message({
        msgtype: "m.text",
        body: "in thread",
        "m.relates_to": { ...relates, is_falling_back: false },
      });
      assert.equal((real as { replyTo?: string }).replyTo, "$latest");
    });

    it("bridges the text of a reply whose target is malformed, without the reply", () => {
      const result = message({
        msgtype: "m.text",
        body: "hello",
        "m.relates_to": { "m.in_reply_to": { event_id: 42 } },
      });
      assert.deepEqual(result, {
        kind: "message",
        content: { type: "text", text: { text: "hello", spans: [] } },
      });
    });
  });

  describe("edits, reactions and redactions", () => {
    it("reads an edit from m.new_content, not from the '* ' fallback", () => {
      const result = message({
        msgtype: "m.text",
        body: "* fixed",
        "m.new_content": { msgtype: "m.text", body: "fixed" },
        "m.relates_to": { rel_type: "m.replace", event_id: "$orig" },
      });
      assert.deepEqual(result, {
        kind: "edit",
        target: "$orig",
        content: { type: "text", text: { text: "fixed", spans: [] } },
      });
    });

    it("answers unsupported for an edit without new content or target", () => {
      assertUnsupported(
        message({
          msgtype: "m.text",
          body: "* x",
          "m.relates_to": { rel_type: "m.replace", event_id: "$o" },
        }),
        /edit/,
      );
      assertUnsupported(
        message({
          msgtype: "m.text",
          body: "* x",
          "m.new_content": { msgtype: "m.text", body: "x" },
          "m.relates_to": { rel_type: "m.replace", event_id: "not an id" },
        }),
        /target/,
      );
    });

    it("reads a reaction's target and key", () => {
      const result = matrixEventToNeutral(
        {
          type: "m.reaction",
          content: { "m.relates_to": { rel_type: "m.annotation", event_id: "$m", key: "👍" } },
        },
        open,
      );
      assert.deepEqual(result, { kind: "reaction", target: "$m", key: "👍" });
    });

    it("answers unsupported for a reaction without key", () => {
      assertUnsupported(
        matrixEventToNeutral(
          {
            type: "m.reaction",
            content: { "m.relates_to": { rel_type: "m.annotation", event_id: "$m" } },
          },
          open,
        ),
        /key/,
      );
    });

    it("reads redactions of both room-version layouts", () => {
      assert.deepEqual(
        matrixEventToNeutral({ type: "m.room.redaction", content: {}, redacts: "$old" }, open),
        {
          kind: "redaction",
          target: "$old",
        },
      );
      assert.deepEqual(
        matrixEventToNeutral({ type: "m.room.redaction", content: { redacts: "$v11" } }, open),
        { kind: "redaction", target: "$v11" },
      );
      assertUnsupported(matrixEventToNeutral({ type: "m.room.redaction", content: {} }, open));
    });
  });

  describe("media", () => {
    it("reads an image with info and names its mxc URI without fetching it", async () => {
      opened.length = 0;
      const result = message({
        msgtype: "m.image",
        body: "photo.jpg",
        url: MXC,
        info: {
          mimetype: "image/jpeg",
          size: 183211,
          w: 1280,
          h: 960,
          thumbnail_url: "mxc://example.org/thumb",
          thumbnail_info: { mimetype: "image/jpeg", w: 64, h: 48, size: 900 },
        },
      });
      const { media, caption } = mediaOf(result);
      assert.equal(caption, undefined);
      assert.deepEqual(
        { ...media, open: undefined },
        {
          kind: "image",
          mimeType: "image/jpeg",
          size: 183211,
          fileName: "photo.jpg",
          width: 1280,
          height: 960,
          open: undefined,
        },
      );
      assert.deepEqual((result as { media?: unknown }).media, {
        source: { mxc: MXC },
        thumbnail: {
          mxc: "mxc://example.org/thumb",
          mimeType: "image/jpeg",
          width: 64,
          height: 48,
        },
      });
      assert.equal(opened.length, 0);
      const chunks: Uint8Array[] = [];
      for await (const chunk of await media.open()) chunks.push(chunk);
      assert.deepEqual(opened, [{ mxc: MXC }]);
      assert.deepEqual(chunks, [new Uint8Array([1, 2, 3])]);
    });

    it("reads body as the caption only when filename is present and differs", () => {
      const captioned = mediaOf(
        message({
          msgtype: "m.video",
          body: "look at <this>",
          format: "org.matrix.custom.html",
          formatted_body: "look at <b>&lt;this&gt;</b>",
          filename: "clip.mp4",
          url: MXC,
          info: { mimetype: "video/mp4", duration: 7400, w: 640, h: 360 },
        }),
      );
      assert.deepEqual(captioned.caption, {
        text: "look at <this>",
        spans: [{ start: 8, end: 14, style: "bold" }],
      });
      assert.equal(captioned.media.fileName, "clip.mp4");
      assert.equal(captioned.media.durationSeconds, 7);
      const sameName = mediaOf(
        message({ msgtype: "m.file", body: "a.pdf", filename: "a.pdf", url: MXC }),
      );
      assert.equal(sameName.caption, undefined);
      assert.equal(sameName.media.kind, "document");
      assert.equal(sameName.media.mimeType, "application/octet-stream");
      assert.equal(sameName.media.size, 0);
    });

    it("reads an MSC3245 voice message with its waveform resampled to 64 values 0-100", () => {
      const waveform = Array.from({ length: 128 }, (_, i) => (i < 64 ? 1024 : 512));
      const { media } = mediaOf(
        message({
          msgtype: "m.audio",
          body: "Voice message.ogg",
          url: MXC,
          info: { mimetype: "audio/ogg", size: 11843 },
          "org.matrix.msc1767.audio": { duration: 6600, waveform },
          "org.matrix.msc3245.voice": {},
        }),
      );
      assert.equal(media.voice, true);
      assert.equal(media.durationSeconds, 7);
      assert.equal(media.waveform?.length, 64);
      assert.deepEqual(media.waveform?.slice(30, 34), [100, 100, 50, 50]);
    });

    it("upsamples a short waveform and drops a malformed one without losing the message", () => {
      const short = mediaOf(
        message({
          msgtype: "m.audio",
          body: "v.ogg",
          url: MXC,
          "org.matrix.msc1767.audio": { duration: 1000, waveform: [0, 1024] },
          "org.matrix.msc3245.voice": {},
        }),
      );
      assert.deepEqual(short.media.waveform, [...Array(32).fill(0), ...Array(32).fill(100)]);
      const bad = mediaOf(
        message({
          msgtype: "m.audio",
          body: "v.ogg",
          url: MXC,
          "org.matrix.msc1767.audio": { duration: 1000, waveform: [0, "loud", 5000] },
        }),
      );
      assert.equal(bad.media.waveform, undefined);
      assert.equal(bad.media.voice, undefined);
    });

    it("reads an encrypted attachment's key material for the caller to decrypt", () => {
      const file = {
        url: MXC,
        key: {
          kty: "oct",
          key_ops: ["encrypt", "decrypt"],
          alg: "A256CTR",
          k: "qcHVMSgYg-71CauWBezXI5qkaRb0LuIy-Wx5kIaHMIA",
          ext: true,
        },
        iv: "X85+XgHN+HEAAAAAAAAAAA",
        hashes: { sha256: "5qG4fFnbbVdlAW1dFmWdkRDRnhYXz3CL4DP/e8D3m5Q" },
        v: "v2",
      };
      const result = message({
        msgtype: "m.file",
        body: "doc.pdf",
        file,
        info: { mimetype: "application/pdf" },
      });
      assert.deepEqual((result as { media?: unknown }).media, {
        source: {
          mxc: MXC,
          encryption: { key: file.key.k, iv: file.iv, sha256: file.hashes.sha256 },
        },
      });
      assertUnsupported(
        message({ msgtype: "m.file", body: "doc.pdf", file: { ...file, v: "v1" } }),
      );
    });

    it("reads a sticker as an image without caption", () => {
      const result = matrixEventToNeutral(
        {
          type: "m.sticker",
          content: {
            body: "a happy cat",
            url: MXC,
            info: { mimetype: "image/webp", w: 256, h: 256 },
          },
        },
        open,
      );
      const { media, caption } = mediaOf(result);
      assert.equal(media.kind, "image");
      assert.equal(media.fileName, undefined);
      assert.equal(caption, undefined);
    });
  });

  describe("location", () => {
    it("reads a geo URI with uncertainty", () => {
      assert.deepEqual(
        contentOf(
          message({
            msgtype: "m.location",
            body: "Location",
            geo_uri: "geo:52.5200066,13.4049540;u=12",
          }),
        ),
        {
          type: "location",
          lat: 52.5200066,
          lon: 13.404954,
          accuracy: 12,
        },
      );
    });

    it("falls back to the MSC3488 location and takes its description as the name", () => {
      assert.deepEqual(
        contentOf(
          message({
            msgtype: "m.location",
            body: "Pin",
            "org.matrix.msc3488.location": {
              uri: "geo:-33.8568,151.2153",
              description: "Opera House",
            },
          }),
        ),
        { type: "location", lat: -33.8568, lon: 151.2153, name: "Opera House" },
      );
    });
  });

  describe("malformed and unsupported input", () => {
    const cases: Record<string, unknown> = {
      "null content": null,
      "array content": [],
      "missing msgtype": { body: "x" },
      "numeric msgtype": { msgtype: 1, body: "x" },
      "missing body": { msgtype: "m.text" },
      "object body": { msgtype: "m.text", body: { text: "x" } },
      "unknown msgtype": { msgtype: "m.key.verification.request", body: "verify" },
      "media without url": { msgtype: "m.image", body: "x.png" },
      "media with http url": {
        msgtype: "m.image",
        body: "x.png",
        url: "https://evil.example/x.png",
      },
      "media with string info": { msgtype: "m.image", body: "x.png", url: MXC, info: "big" },
      "media with huge size": {
        msgtype: "m.image",
        body: "x.png",
        url: MXC,
        info: { size: 2 ** 80 },
      },
      "media with negative width": { msgtype: "m.image", body: "x.png", url: MXC, info: { w: -5 } },
      "media with string duration": {
        msgtype: "m.video",
        body: "x",
        url: MXC,
        info: { duration: "10" },
      },
      "media with infinite height": {
        msgtype: "m.image",
        body: "x",
        url: MXC,
        info: { h: Infinity },
      },
      "media with numeric filename": { msgtype: "m.file", body: "x", filename: 7, url: MXC },
      "location without geo URI": { msgtype: "m.location", body: "somewhere" },
      "location latitude out of range": { msgtype: "m.location", body: "x", geo_uri: "geo:91,0" },
      "location longitude out of range": {
        msgtype: "m.location",
        body: "x",
        geo_uri: "geo:0,180.5",
      },
      "location with huge number": { msgtype: "m.location", body: "x", geo_uri: "geo:1e999,0" },
      "location with other datum": {
        msgtype: "m.location",
        body: "x",
        geo_uri: "geo:1,2;crs=nad27",
      },
      "location with negative uncertainty": {
        msgtype: "m.location",
        body: "x",
        geo_uri: "geo:1,2;u=-3",
      },
      "location without scheme": { msgtype: "m.location", body: "x", geo_uri: "52.5,13.4" },
      "location with trailing junk": {
        msgtype: "m.location",
        body: "x",
        geo_uri: "geo:1,2 <script>",
      },
      "location as number": { msgtype: "m.location", body: "x", geo_uri: 52.5 },
    };
    for (const [name, content] of Object.entries(cases)) {
      it(`answers unsupported for ${name}`, () => {
        assertUnsupported(message(content));
      });
    }

    it("answers unsupported for event types it does not bridge", () => {
      assertUnsupported(
        matrixEventToNeutral({ type: "m.room.member", content: { membership: "join" } }, open),
        /m\.room\.member/,
      );
      assertUnsupported(matrixEventToNeutral({ type: 42 as unknown as string, content: {} }, open));
    });

    it("does not read inherited properties as content", () => {
      const content = Object.create({ msgtype: "m.text", body: "inherited" }) as object;
      assertUnsupported(message(content));
    });
  });
});
