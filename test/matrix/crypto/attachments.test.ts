import assert from "node:assert/strict";
import { createDecipheriv, createHash, randomBytes } from "node:crypto";
import { decryptAttachment, encryptAttachment } from "../../../src/matrix/crypto/attachments.js";

async function* chunked(data: Buffer, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

async function collect(source: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const part of source) parts.push(part);
  return Buffer.concat(parts);
}

describe("encrypted attachments (AES-256-CTR, v2)", function () {
  it("what is encrypted in chunks decrypts to the same bytes, and the file object is v2", async function () {
    const plain = randomBytes(300_001);
    const encrypting = encryptAttachment(chunked(plain, 65_536));
    const cipher = await collect(encrypting.chunks);
    const info = encrypting.info();
    assert.equal(info.v, "v2");
    assert.equal(info.key.alg, "A256CTR");
    assert.deepEqual(info.key.key_ops, ["encrypt", "decrypt"]);
    assert.notDeepEqual(cipher.subarray(0, 64), plain.subarray(0, 64));
    assert.equal(
      info.hashes.sha256,
      createHash("sha256").update(cipher).digest("base64").replace(/=+$/, ""),
    );
    // The spec's IV: 8 random bytes, then a 64-bit counter starting at zero.
    assert.deepEqual([...Buffer.from(info.iv, "base64").subarray(8)], [0, 0, 0, 0, 0, 0, 0, 0]);
    // Another implementation (node's one-shot decipher) reads it.
    const oneShot = createDecipheriv(
      "aes-256-ctr",
      Buffer.from(info.key.k, "base64url"),
      Buffer.from(info.iv, "base64"),
    );
    assert.deepEqual(Buffer.concat([oneShot.update(cipher), oneShot.final()]), plain);
    const back = await collect(
      decryptAttachment(chunked(cipher, 1000), {
        key: info.key.k,
        iv: info.iv,
        sha256: info.hashes.sha256,
      }),
    );
    assert.deepEqual(back, plain);
  });

  it("a tampered ciphertext fails with media-hash-mismatch", async function () {
    const encrypting = encryptAttachment(chunked(Buffer.from("hello attachment"), 4));
    const cipher = await collect(encrypting.chunks);
    const info = encrypting.info();
    cipher[3] = (cipher[3] ?? 0) ^ 1;
    await assert.rejects(
      collect(
        decryptAttachment(chunked(cipher, 5), {
          key: info.key.k,
          iv: info.iv,
          sha256: info.hashes.sha256,
        }),
      ),
      (err: Error & { code?: string }) => err.code === "media-hash-mismatch",
    );
  });

  it("the file object is refused before the stream is consumed", function () {
    const encrypting = encryptAttachment(chunked(Buffer.from("x"), 1));
    assert.throws(() => encrypting.info(), /not fully encrypted/);
  });
});
