import assert from "node:assert/strict";
import { createCipheriv, createHash, createHmac } from "node:crypto";
import { createReadStream, createWriteStream, readFileSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable, Writable } from "node:stream";
import {
  encryptMedia,
  expandMediaKey,
  MediaEncryptStream,
  type MediaExpectation,
} from "../../../src/interop/media/cipher.js";
import { decryptMediaToFile } from "../../../src/interop/media/decrypt.js";
import { MediaIntegrityError, MediaTooLargeError } from "../../../src/interop/media/errors.js";
import {
  blobLengthFor,
  isMediaKind,
  MEDIA_HKDF_INFO,
  type MediaKind,
} from "../../../src/interop/media/kinds.js";
import { decryptMediaBuffer, encryptMediaBuffer } from "../../../src/interop/media/memory.js";
import { generatedStream, sha256OfStream, tempDir } from "./support.js";

interface VectorCase {
  name: string;
  kind: string;
  hkdfInfo: string;
  mediaKey: string;
  mediaKeyBase64: string;
  plaintextLength: number;
  plaintext: string;
  expanded: string;
  iv: string;
  cipherKey: string;
  macKey: string;
  refKey: string;
  ciphertext: string;
  mac: string;
  blob: string;
  blobLength: number;
  sha256: string;
  sha256Base64: string;
  encSha256: string;
  encSha256Base64: string;
}
interface NegativeCase {
  name: string;
  basedOn: string;
  kind: string;
  mediaKey: string;
  blob: string;
  encSha256Base64: string;
}

const vectors = JSON.parse(
  readFileSync(new URL("./vectors/media.json", import.meta.url), "utf8"),
) as {
  hkdfInfo: Record<string, string>;
  cases: VectorCase[];
  negative: NegativeCase[];
};
const hex = (s: string): Buffer => Buffer.from(s, "hex");
const b64 = (s: string): Buffer => Buffer.from(s, "base64");
const kindOf = (s: string): MediaKind => {
  assert.ok(isMediaKind(s), `vector kind ${s}`);
  return s;
};
const sha256 = (data: Uint8Array): Buffer => createHash("sha256").update(data).digest();

/** Feeds `data` in pieces of the given sizes, to exercise chunk boundaries around the MAC. */
function chunked(data: Buffer, sizes: number[]): Readable {
  const parts: Buffer[] = [];
  let offset = 0;
  for (let i = 0; offset < data.length; i++) {
    const n = sizes[i % sizes.length] ?? 1;
    parts.push(data.subarray(offset, offset + n));
    offset += n;
  }
  return Readable.from(parts);
}

function collect(): { sink: Writable; data: () => Buffer } {
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk);
      cb();
    },
  });
  return { sink, data: () => Buffer.concat(chunks) };
}

describe("media cipher (§14.3)", () => {
  describe("test vectors", () => {
    it("the vector file's HKDF info strings are the ones the code uses", () => {
      assert.deepEqual(vectors.hkdfInfo, MEDIA_HKDF_INFO);
      assert.equal(vectors.cases.length, 5);
    });

    for (const v of vectors.cases) {
      const kind = kindOf(v.kind);
      const expectation = (): MediaExpectation => ({
        kind,
        mediaKey: hex(v.mediaKey),
        size: v.plaintextLength,
        sha256: b64(v.sha256Base64),
        encSha256: b64(v.encSha256Base64),
      });

      it(`${v.name}: key expansion splits into iv, cipherKey, macKey and refKey`, () => {
        const keys = expandMediaKey(b64(v.mediaKeyBase64), kind);
        assert.equal(
          Buffer.concat([keys.iv, keys.cipherKey, keys.macKey, keys.refKey]).toString("hex"),
          v.expanded,
        );
        assert.equal(keys.iv.toString("hex"), v.iv);
        assert.equal(keys.cipherKey.toString("hex"), v.cipherKey);
        assert.equal(keys.macKey.toString("hex"), v.macKey);
        assert.equal(keys.refKey.toString("hex"), v.refKey);
      });

      it(`${v.name}: in-memory encryption yields the vector's ciphertext, MAC, blob and hashes`, () => {
        const out = encryptMediaBuffer(hex(v.plaintext), kind, hex(v.mediaKey));
        assert.equal(out.blob.toString("hex"), v.blob);
        assert.equal(out.blob.subarray(0, -10).toString("hex"), v.ciphertext);
        assert.equal(out.blob.subarray(-10).toString("hex"), v.mac);
        assert.equal(out.blobLength, v.blobLength);
        assert.equal(blobLengthFor(v.plaintextLength), v.blobLength);
        assert.equal(out.sha256.toString("hex"), v.sha256);
        assert.equal(out.encSha256.toString("hex"), v.encSha256);
        assert.equal(out.encSha256.toString("base64"), v.encSha256Base64);
        assert.equal(out.mediaKey.toString("base64"), v.mediaKeyBase64);
      });

      it(`${v.name}: streaming encryption in 7-byte chunks yields the same blob and hashes`, async () => {
        const { sink, data } = collect();
        const info = await encryptMedia(chunked(hex(v.plaintext), [7]), sink, {
          kind,
          mediaKey: hex(v.mediaKey),
        });
        assert.equal(data().toString("hex"), v.blob);
        assert.equal(info.sha256.toString("base64"), v.sha256Base64);
        assert.equal(info.encSha256.toString("base64"), v.encSha256Base64);
        assert.equal(info.size, v.plaintextLength);
        assert.equal(info.blobLength, v.blobLength);
      });

      it(`${v.name}: decrypts in memory and by stream back to the plaintext`, async () => {
        assert.equal(decryptMediaBuffer(hex(v.blob), expectation()).toString("hex"), v.plaintext);
        const dir = await tempDir();
        try {
          const out = join(dir.path, "plain");
          const result = await decryptMediaToFile(chunked(hex(v.blob), [3, 11, 1]), expectation(), {
            plaintextPath: out,
          });
          assert.equal((await readFile(out)).toString("hex"), v.plaintext);
          assert.equal(result.size, v.plaintextLength);
          assert.equal(result.sha256.toString("hex"), v.sha256);
        } finally {
          await dir.cleanup();
        }
      });
    }

    for (const n of vectors.negative) {
      const base = vectors.cases.find((c) => c.name === n.basedOn);
      it(`${n.name} is rejected with a MAC mismatch, in memory and by stream`, async () => {
        assert.ok(base);
        const expectation: MediaExpectation = {
          kind: kindOf(n.kind),
          mediaKey: hex(n.mediaKey),
          size: base.plaintextLength,
          sha256: b64(base.sha256Base64),
          encSha256: b64(n.encSha256Base64),
        };
        assert.throws(
          () => decryptMediaBuffer(hex(n.blob), expectation),
          (err: unknown) =>
            err instanceof MediaIntegrityError &&
            err.reason === "mac" &&
            err.code === "media-invalid",
        );
        const dir = await tempDir();
        try {
          await assert.rejects(
            decryptMediaToFile(Readable.from([hex(n.blob)]), expectation, {
              plaintextPath: join(dir.path, "p"),
            }),
            (err: unknown) => err instanceof MediaIntegrityError && err.reason === "mac",
          );
          assert.deepEqual(
            await readdir(dir.path),
            [],
            "no plaintext or temporary blob is left behind",
          );
        } finally {
          await dir.cleanup();
        }
      });
    }
  });

  describe("round trips", () => {
    const sizes = [0, 1, 15, 16, 17, 31, 32, 33, 4095, 4096, 65_537, 100_003];
    for (const size of sizes) {
      it(`a ${size}-byte file survives streaming encryption and decryption`, async () => {
        const plaintext = Buffer.alloc(size, 0);
        for (let i = 0; i < size; i++) plaintext[i] = (i * 31 + size) & 0xff;
        const kinds: MediaKind[] = ["image", "video", "audio", "document"];
        const kind = kinds[size % 4] ?? "document";
        const { sink, data } = collect();
        const info = await encryptMedia(chunked(plaintext, [5, 4096, 13]), sink, { kind });
        const blob = data();
        assert.equal(blob.length, blobLengthFor(size));
        assert.equal(info.blobLength, blob.length);
        assert.equal(info.mediaKey.length, 32);
        assert.deepEqual(info.sha256, sha256(plaintext));
        assert.deepEqual(info.encSha256, sha256(blob));
        assert.deepEqual(decryptMediaBuffer(blob, info), plaintext);
        const dir = await tempDir();
        try {
          const result = await decryptMediaToFile(chunked(blob, [9, 10, 11, 8192]), info, {
            plaintextPath: join(dir.path, "out"),
          });
          assert.deepEqual(await readFile(result.path), plaintext);
        } finally {
          await dir.cleanup();
        }
      });
    }

    it("a multi-megabyte stream round-trips through files with matching hashes", async () => {
      const total = 6 * 1024 * 1024 + 123;
      const dir = await tempDir();
      try {
        const blobPath = join(dir.path, "blob");
        const info = await encryptMedia(generatedStream(total, 7), createWriteStream(blobPath), {
          kind: "video",
        });
        assert.equal(info.size, total);
        assert.deepEqual(info.sha256, await sha256OfStream(generatedStream(total, 7)));
        assert.deepEqual(info.encSha256, await sha256OfStream(createReadStream(blobPath)));
        const out = await decryptMediaToFile(createReadStream(blobPath), info, {
          plaintextPath: join(dir.path, "plain"),
        });
        assert.equal(out.size, total);
        assert.deepEqual(await sha256OfStream(createReadStream(out.path)), info.sha256);
      } finally {
        await dir.cleanup();
      }
    });

    it("each encryption uses a fresh random mediaKey", () => {
      const a = encryptMediaBuffer(Buffer.from("same"), "image");
      const b = encryptMediaBuffer(Buffer.from("same"), "image");
      assert.notDeepEqual(a.mediaKey, b.mediaKey);
      assert.notDeepEqual(a.blob, b.blob);
    });

    it("encryption stops with media-too-large as soon as the blob would pass the limit", async () => {
      const { sink } = collect();
      const encryptor = new MediaEncryptStream({ kind: "image", maxBlobLength: 1000 });
      await assert.rejects(
        encryptMedia(generatedStream(10_000, 3, 100), sink, { kind: "image", maxBlobLength: 1000 }),
        (err: unknown) =>
          err instanceof MediaTooLargeError && err.code === "media-too-large" && err.limit === 1000,
      );
      assert.throws(() => encryptor.info, /not finished/);
    });
  });

  describe("tampering", () => {
    const plaintext = Buffer.from("The quick brown fox jumps over the lazy dog, twice over.");
    const good = encryptMediaBuffer(plaintext, "document");
    const expect = (over: Partial<MediaExpectation> = {}): MediaExpectation => ({
      ...good,
      ...over,
    });
    const flip = (buf: Buffer, index: number): Buffer => {
      const copy = Buffer.from(buf);
      copy[index] = (copy[index] ?? 0) ^ 0x01;
      return copy;
    };

    const cases: { name: string; blob: Buffer; expectation: MediaExpectation; reason: string }[] = [
      {
        name: "a flipped ciphertext byte (hash updated to match)",
        blob: flip(good.blob, 3),
        expectation: expect({ encSha256: sha256(flip(good.blob, 3)) }),
        reason: "mac",
      },
      {
        name: "a flipped MAC byte (hash updated to match)",
        blob: flip(good.blob, good.blob.length - 1),
        expectation: expect({ encSha256: sha256(flip(good.blob, good.blob.length - 1)) }),
        reason: "mac",
      },
      {
        name: "a blob whose enc-sha256 differs",
        blob: flip(good.blob, 3),
        expectation: expect(),
        reason: "enc-sha256",
      },
      {
        name: "a wrong plaintext sha256",
        blob: good.blob,
        expectation: expect({ sha256: sha256(Buffer.from("other")) }),
        reason: "sha256",
      },
      {
        name: "a size smaller than the plaintext",
        blob: good.blob,
        expectation: expect({ size: plaintext.length - 1 }),
        reason: "size",
      },
      {
        name: "a size larger than the plaintext within the same blob length",
        blob: good.blob,
        expectation: expect({ size: plaintext.length + 1 }),
        reason: "size",
      },
      {
        name: "a blob longer than the announced size allows",
        blob: Buffer.concat([good.blob, Buffer.alloc(16)]),
        expectation: expect(),
        reason: "length",
      },
      {
        name: "a blob truncated to a length that is not 16·n + 10",
        blob: good.blob.subarray(0, good.blob.length - 1),
        expectation: expect({ encSha256: sha256(good.blob.subarray(0, good.blob.length - 1)) }),
        reason: "length",
      },
      {
        name: "a blob shorter than 26 bytes",
        blob: good.blob.subarray(0, 20),
        expectation: expect({ encSha256: sha256(good.blob.subarray(0, 20)) }),
        reason: "length",
      },
      {
        name: "the right blob checked with the keys of another kind",
        blob: good.blob,
        expectation: expect({ kind: "image" }),
        reason: "mac",
      },
    ];

    for (const c of cases) {
      it(`${c.name} is rejected (${c.reason}) and leaves no plaintext behind`, async () => {
        const matches = (err: unknown): boolean =>
          err instanceof MediaIntegrityError && err.reason === c.reason;
        assert.throws(() => decryptMediaBuffer(c.blob, c.expectation), matches);
        const dir = await tempDir();
        try {
          await assert.rejects(
            decryptMediaToFile(chunked(c.blob, [4, 17]), c.expectation, {
              plaintextPath: join(dir.path, "plain"),
            }),
            matches,
          );
          assert.deepEqual(await readdir(dir.path), []);
        } finally {
          await dir.cleanup();
        }
      });
    }

    it("bad padding behind a valid MAC is rejected as padding", () => {
      // A sender bug: ciphertext produced without PKCS#7, authenticated correctly.
      const keys = expandMediaKey(good.mediaKey, "document");
      const cipher = createCipheriv("aes-256-cbc", keys.cipherKey, keys.iv).setAutoPadding(false);
      const body = Buffer.alloc(32, 0xff);
      const ciphertext = Buffer.concat([cipher.update(body), cipher.final()]);
      const mac = createHmac("sha256", keys.macKey)
        .update(keys.iv)
        .update(ciphertext)
        .digest()
        .subarray(0, 10);
      const blob = Buffer.concat([ciphertext, mac]);
      assert.throws(
        () =>
          decryptMediaBuffer(
            blob,
            expect({ size: 31, encSha256: sha256(blob), sha256: sha256(body) }),
          ),
        (err: unknown) => err instanceof MediaIntegrityError && err.reason === "padding",
      );
    });

    it("a mediaKey of the wrong length is refused before any work", () => {
      assert.throws(
        () => decryptMediaBuffer(good.blob, expect({ mediaKey: Buffer.alloc(16) })),
        (err: unknown) => err instanceof MediaIntegrityError && err.reason === "key",
      );
    });
  });
});
