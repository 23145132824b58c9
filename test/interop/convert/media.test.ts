import assert from "node:assert/strict";
import type { MessageContent, NeutralMedia } from "../../../src/core/network.js";
import { ALL_FEATURES } from "../../../src/interop/codec/namespaces.js";
import { ConvertError } from "../../../src/interop/convert/errors.js";
import { messageElements } from "../../../src/interop/convert/from-neutral.js";
import {
  cleanMimeType,
  jpegSize,
  mediaElement,
  outboundMediaKind,
  type UploadedMediaRef,
} from "../../../src/interop/convert/media.js";
import type { OutboundContext } from "../../../src/interop/convert/outbound.js";
import { toNeutral } from "../../../src/interop/convert/to-neutral.js";
import { JPEG, inboundContext, neutralMedia, onlyMessage, overTheWire } from "./helpers.js";

const ALL: OutboundContext = { features: new Set(ALL_FEATURES) };

const upload = (kind: UploadedMediaRef["kind"], size = 1000): UploadedMediaRef => ({
  kind,
  url: "https://wa.example/media/b/abc",
  mediaKey: new Uint8Array(32).fill(1),
  size,
  sha256: new Uint8Array(32).fill(2),
  encSha256: new Uint8Array(32).fill(3),
});

const IMAGE = neutralMedia({
  kind: "image",
  mimeType: "image/jpeg",
  width: 1280,
  height: 960,
  thumbnail: { data: JPEG, width: 64, height: 48, mimeType: "image/jpeg" },
});

describe("media content both ways (§13.2)", () => {
  it("uploads media lacking what its kind requires as a document", () => {
    assert.equal(outboundMediaKind(IMAGE), "image");
    assert.equal(outboundMediaKind(neutralMedia({ kind: "image", width: 10 })), "document");
    assert.equal(
      outboundMediaKind(neutralMedia({ kind: "video", width: 1, height: 1 })),
      "document",
    );
    assert.equal(outboundMediaKind(neutralMedia({ kind: "audio", durationSeconds: 3 })), "audio");
    assert.equal(outboundMediaKind(neutralMedia({ kind: "audio" })), "document");
    assert.equal(
      outboundMediaKind(neutralMedia({ kind: "image", width: NaN, height: 1 })),
      "document",
    );
  });

  it("builds the media element from the upload, with the caption as the body", () => {
    const content: MessageContent = {
      type: "media",
      media: IMAGE,
      caption: { text: "look", spans: [{ start: 0, end: 4, style: "bold" }] },
    };
    const els = messageElements(content, ALL, { media: upload("image", 183211) });
    assert.deepEqual(
      els.map((e) => e.kind),
      ["media", "body"],
    );
    const media = els[0];
    assert.ok(media?.kind === "media");
    assert.equal(media.media.kind, "image");
    assert.equal(media.media.url, "https://wa.example/media/b/abc");
    assert.equal(media.media.size, 183211);
    assert.equal(media.media.type, "image/jpeg");
    assert.deepEqual([media.media.width, media.media.height], [1280, 960]);
    assert.deepEqual(media.media.thumbnail, { width: 64, height: 48, jpeg: JPEG });
    assert.equal(media.media.filename, undefined);
    assert.deepEqual(els[1], { kind: "body", text: "*look*" });
  });

  it("refuses media that was not uploaded or was uploaded as another kind", () => {
    const content: MessageContent = { type: "media", media: IMAGE };
    assert.throws(
      () => messageElements(content, ALL),
      (e: unknown) => e instanceof ConvertError && e.code === "unsupported-content",
    );
    assert.throws(
      () => mediaElement(IMAGE, upload("document"), 8192),
      (e: unknown) => e instanceof ConvertError && e.code === "unsupported-content",
    );
  });

  it("gives a document a safe file name, derived from the MIME type when it has none", () => {
    const named = neutralMedia({
      kind: "document",
      fileName: "../secret\u200b.pdf",
      mimeType: "application/pdf",
    });
    assert.equal(mediaElement(named, upload("document"), 8192).filename, "secret.pdf");
    const unnamed = neutralMedia({ kind: "image", mimeType: "image/png" });
    assert.equal(mediaElement(unnamed, upload("document"), 8192).filename, "image.png");
  });

  it("drops a thumbnail that is not a JPEG or is above max-thumbnail-bytes", () => {
    const png = neutralMedia({
      ...IMAGE,
      thumbnail: {
        data: Uint8Array.of(0x89, 0x50, 0x4e, 0x47),
        width: 1,
        height: 1,
        mimeType: "image/png",
      },
    });
    assert.equal(mediaElement(png, upload("image"), 8192).thumbnail, undefined);
    assert.equal(mediaElement(IMAGE, upload("image"), JPEG.length - 1).thumbnail, undefined);
  });

  it("resamples and clamps a voice waveform to 64 values of 0-100", () => {
    const voice = neutralMedia({
      kind: "audio",
      mimeType: "audio/ogg; codecs=opus",
      durationSeconds: 6.6,
      voice: true,
      waveform: [0, 50, 150, -3, NaN, 100, 20, 30],
    });
    const el = mediaElement(voice, upload("audio"), 8192);
    assert.equal(el.voice, true);
    assert.equal(el.duration, 7);
    assert.equal(el.waveform?.length, 64);
    assert.deepEqual([...(el.waveform ?? [])].slice(0, 24), [
      ...new Array<number>(8).fill(0),
      ...new Array<number>(8).fill(50),
      ...new Array<number>(8).fill(100),
    ]);
  });

  it("round-trips a voice message through a real envelope", () => {
    const wave = Array.from({ length: 64 }, (_, i) => i % 101);
    const voice = neutralMedia({
      kind: "audio",
      mimeType: "audio/ogg; codecs=opus",
      durationSeconds: 7,
      voice: true,
      waveform: wave,
    });
    const els = messageElements({ type: "media", media: voice }, ALL, {
      media: upload("audio", 11843),
    });
    const back = onlyMessage(toNeutral(overTheWire(els), inboundContext()).events).content;
    assert.ok(back.type === "media");
    const m: NeutralMedia = back.media;
    assert.deepEqual(
      [m.kind, m.mimeType, m.size, m.durationSeconds, m.voice],
      ["audio", "audio/ogg; codecs=opus", 11843, 7, true],
    );
    assert.deepEqual(m.waveform, wave);
    assert.equal(back.caption, undefined);
  });

  it("reads a JPEG's size from its frame header and nothing from garbage", () => {
    assert.deepEqual(jpegSize(JPEG), { width: 64, height: 48 });
    assert.equal(jpegSize(Uint8Array.of(0xff, 0xd8, 0x00, 0x01, 2, 3, 4, 5, 6, 7, 8)), undefined);
    assert.equal(jpegSize(new Uint8Array(0)), undefined);
    const truncated = JPEG.slice(0, 24);
    assert.equal(jpegSize(truncated), undefined);
  });

  it("passes only well-formed MIME types on", () => {
    assert.equal(cleanMimeType("Image/JPEG"), "image/jpeg");
    assert.equal(cleanMimeType('audio/ogg; codecs="opus"'), 'audio/ogg; codecs="opus"');
    assert.equal(cleanMimeType("text/html<script>"), "application/octet-stream");
    assert.equal(cleanMimeType("nonsense"), "application/octet-stream");
    assert.equal(cleanMimeType(undefined), "application/octet-stream");
  });
});
