import assert from "node:assert/strict";
import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";
import type * as sdk from "matrix-js-sdk";
import { solidPng } from "../../scripts/demo/png.js";
import { bodyOf, E2e, element, eventually, type Received, type WhatsAppUser } from "./harness.js";

const b64 = (b: Buffer) => b.toString("base64").replace(/=+$/, "");

/** An encrypted attachment as a Matrix client makes it (spec v2), with node's one-shot cipher. */
function encryptFile(plain: Buffer) {
  const key = randomBytes(32);
  const iv = Buffer.concat([randomBytes(8), Buffer.alloc(8)]);
  const cipher = createCipheriv("aes-256-ctr", key, iv);
  const data = Buffer.concat([cipher.update(plain), cipher.final()]);
  return {
    data,
    file: (url: string) => ({
      url,
      key: {
        kty: "oct",
        key_ops: ["encrypt", "decrypt"],
        alg: "A256CTR",
        k: key.toString("base64url"),
        ext: true,
      },
      iv: b64(iv),
      hashes: { sha256: b64(createHash("sha256").update(data).digest()) },
      v: "v2",
    }),
  };
}

function decryptFile(
  data: Buffer,
  file: { key: { k: string }; iv: string; hashes: { sha256: string } },
) {
  assert.equal(b64(createHash("sha256").update(data).digest()), file.hashes.sha256);
  const decipher = createDecipheriv(
    "aes-256-ctr",
    Buffer.from(file.key.k, "base64url"),
    Buffer.from(file.iv, "base64"),
  );
  return Buffer.concat([decipher.update(data), decipher.final()]);
}

describe("e2e: an end-to-bridge encrypted portal (js-sdk user with Rust crypto, simulator, real bridge)", function () {
  this.timeout(120_000);
  let e: E2e;
  let a: WhatsAppUser;
  let portal: string;
  const plaintexts: string[] = [];

  before(async function () {
    e = await E2e.start("alice", { encrypted: true });
    a = await e.whatsappUser("+491701111111");
    await e.login();
    portal = await e.openChat(a);
    plaintexts.push("hello");
  });
  after(async function () {
    await e?.stop();
  });

  const wire = (ev: sdk.MatrixEvent) => ev.getWireType();

  it("the portal is encrypted and the user's first message reached WhatsApp through it", async function () {
    assert.equal(e.client.isRoomEncrypted(portal), true);
    const hello = await e.sees(portal, "my hello", (ev) => ev.getContent()["body"] === "hello");
    assert.equal(wire(hello), "m.room.encrypted");
  });

  it("texts and formatted texts go both ways, encrypted on Matrix", async function () {
    await e.text(portal, "plain secret", {
      format: "org.matrix.custom.html",
      formatted_body: "<strong>bold secret</strong>",
    });
    const got = await e.received(a, "my formatted text", (r) =>
      /bold secret/.test(bodyOf(r) ?? ""),
    );
    assert.match(bodyOf(got) ?? "", /\*bold secret\*/);
    await e.from(a, { type: "text", text: "*whatsapp secret*" });
    const event = await e.ghostSays(portal, "A's text", (c) => c["body"] === "*whatsapp secret*");
    assert.equal(wire(event), "m.room.encrypted");
    assert.match(String(event.getContent()["formatted_body"]), /<(strong|b)>/);
    plaintexts.push("bold secret", "whatsapp secret");
  });

  it("an image and a 20 MB file go each way as encrypted attachments", async function () {
    const png = solidPng(16, 16, [200, 10, 30]);
    const image = encryptFile(png);
    const imageUrl = await e.upload(image.data, "application/octet-stream", "red.png");
    await e.send(portal, {
      msgtype: "m.image",
      body: "red.png",
      file: image.file(imageUrl),
      info: { mimetype: "image/png", size: png.length, w: 16, h: 16 },
    });
    const digest = createHash("sha256").update(png).digest("base64");
    await e.received(a, "my image", (r: Received) => {
      const m = element(r, "media")?.["media"] as Record<string, unknown> | undefined;
      return m?.["sha256"] === digest;
    });

    const big = randomBytes(20 * 1024 * 1024);
    const bigFile = encryptFile(big);
    const bigUrl = await e.upload(bigFile.data, "application/octet-stream", "big.bin");
    await e.send(portal, {
      msgtype: "m.file",
      body: "big.bin",
      file: bigFile.file(bigUrl),
      info: { mimetype: "application/octet-stream", size: big.length },
    });
    const bigDigest = createHash("sha256").update(big).digest("base64");
    await e.received(a, "my 20 MB file", (r: Received) => {
      const m = element(r, "media")?.["media"] as Record<string, unknown> | undefined;
      return m?.["sha256"] === bigDigest;
    });

    const back = randomBytes(20 * 1024 * 1024);
    await e.from(a, {
      type: "media",
      kind: "document",
      data: back.toString("base64"),
      mime: "application/octet-stream",
      filename: "back.bin",
    });
    const file = await e.ghostSays(portal, "A's 20 MB file", (c) => c["body"] === "back.bin");
    const content = file.getContent();
    assert.equal(content["url"], undefined, "no plaintext url");
    const encrypted = content["file"] as Parameters<typeof decryptFile>[1] & { url: string };
    assert.ok(decryptFile(await e.download(encrypted.url), encrypted).equals(back));
  });

  it("a reply, an edit, a reaction and a redaction from Matrix arrive at WhatsApp", async function () {
    await e.from(a, { type: "text", text: "reply to me" });
    const theirs = await e.ghostSays(portal, "A's text", (c) => c["body"] === "reply to me");
    await e.text(portal, "my reply", {
      "m.relates_to": { "m.in_reply_to": { event_id: theirs.getId() } },
    });
    const reply = await e.received(a, "my reply", (r) => bodyOf(r) === "my reply");
    assert.ok(element(reply, "reply"), "the reply keeps its reference");
    const mine = await e.text(portal, "see you at 8");
    await e.received(a, "my text", (r) => bodyOf(r) === "see you at 8");
    await e.send(portal, {
      msgtype: "m.text",
      body: "* see you at 9",
      "m.new_content": { msgtype: "m.text", body: "see you at 9" },
      "m.relates_to": { rel_type: "m.replace", event_id: mine },
    });
    await e.received(a, "my edit", (r) => element(r, "replace") !== undefined);
    await e.send(
      portal,
      { "m.relates_to": { rel_type: "m.annotation", event_id: theirs.getId(), key: "👍" } },
      "m.reaction",
    );
    await e.received(a, "my reaction", (r) => element(r, "reactions") !== undefined);
    await e.client.redactEvent(portal, mine);
    await e.received(a, "my retraction", (r) => element(r, "retract") !== undefined);
    plaintexts.push("my reply", "see you at 8", "see you at 9");
  });

  it("receipts and typing show on both sides", async function () {
    await e.client.sendTyping(portal, true, 10_000);
    await e.received(a, "my typing", () => true, "chat-state");
    await e.from(a, { type: "typing", state: "composing" });
    await eventually(
      () => (e.client.getRoom(portal)?.getMember(e.ghostOf(a))?.typing === true ? true : undefined),
      "A typing on Matrix",
    );
    const id = await e.from(a, { type: "text", text: "read me" });
    const event = await e.ghostSays(portal, "A's text", (c) => c["body"] === "read me");
    await e.client.sendReadReceipt(event);
    await e.received(a, "my read marker", (r) => JSON.stringify(r.data).includes(id), "displayed");
    plaintexts.push("read me");
  });

  it("nothing the homeserver stored for the portal holds any message's plaintext", async function () {
    const dump = e.world.hs.inspectRoom(portal);
    for (const text of plaintexts)
      assert.deepEqual(dump.find(text), [], `"${text}" is stored nowhere`);
  });
});
