import assert from "node:assert/strict";
import {
  blobLengthFor,
  DEFAULT_MEDIA_LIMITS,
  isMediaKind,
  isWellFormedBlobLength,
  mediaLimitsFrom,
} from "../../../src/interop/media/kinds.js";

describe("media kinds and sizes (§8.3, §14.3)", () => {
  it("the blob length is 16·(floor(size/16)+1) + 10", () => {
    const cases: [number, number][] = [
      [0, 26],
      [1, 26],
      [15, 26],
      [16, 42],
      [17, 42],
      [1000, 1018],
      [100_000_000, 100_000_026],
    ];
    for (const [size, length] of cases) assert.equal(blobLengthFor(size), length, `size ${size}`);
    assert.throws(() => blobLengthFor(-1), RangeError);
    assert.throws(() => blobLengthFor(1.5), RangeError);
  });

  it("a blob length is well-formed only if at least 26 and 10 more than whole blocks", () => {
    assert.ok(isWellFormedBlobLength(26));
    assert.ok(isWellFormedBlobLength(1018));
    for (const bad of [0, 10, 16, 25, 27, 41, 1017])
      assert.equal(isWellFormedBlobLength(bad), false, `${bad}`);
  });

  it("limits not announced in hello take their defaults; announced ones win", () => {
    assert.deepEqual(mediaLimitsFrom({}), DEFAULT_MEDIA_LIMITS);
    assert.deepEqual(DEFAULT_MEDIA_LIMITS, {
      image: 16_777_216,
      video: 16_777_216,
      audio: 16_777_216,
      document: 104_857_600,
    });
    const announced = new Map([
      ["max-image-bytes", 1000],
      ["max-stanza-bytes", 262_144],
    ]);
    assert.deepEqual(mediaLimitsFrom(announced), { ...DEFAULT_MEDIA_LIMITS, image: 1000 });
    assert.deepEqual(mediaLimitsFrom({ "max-document-bytes": 5 }), {
      ...DEFAULT_MEDIA_LIMITS,
      document: 5,
    });
  });

  it("only the four kinds of §13.2 are media kinds", () => {
    for (const kind of ["image", "video", "audio", "document"]) assert.ok(isMediaKind(kind));
    for (const kind of ["voice", "sticker", "Image", ""]) assert.equal(isMediaKind(kind), false);
  });
});
