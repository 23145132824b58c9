import assert from "node:assert/strict";
import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";
import * as sdk from "matrix-js-sdk";
import type { RemoteMessageId } from "../../../src/core/network.js";
import { matrixUserId } from "../../../src/util/ids.js";
import { contactId } from "../../core/fakes/network.js";
import {
  nextClearEvent,
  startCryptoClient,
  within,
  type CryptoClient,
} from "../../homeserver/cryptoClient.js";
import { enc, silenceMatrixSdk } from "../../homeserver/testHelpers.js";
import { BOT, startMatrixHarness, type MatrixHarness } from "../harness.js";

const BOB = "+491701234567";
const GHOST = "@whatsapp_491701234567:example.org";

silenceMatrixSdk();

describe("an end-to-bridge encrypted portal (bridge, test homeserver, js-sdk user with Rust crypto)", function () {
  this.timeout(120_000);
  let h: MatrixHarness;
  let alice: CryptoClient;
  let mgmt: string;
  let portal: string;
  let order = 10;

  before(async function () {
    h = await startMatrixHarness(
      "spec",
      {},
      {},
      {
        matrix_encryption: { default: true, decrypt_wait_ms: 500 },
      },
    );
    alice = await startCryptoClient(h.hs.url, {
      userId: h.alice.userId,
      accessToken: h.alice.accessToken,
      deviceId: (h.alice as { deviceId?: string }).deviceId ?? "",
    });
  });
  after(async function () {
    alice?.stop();
    await h?.dispose();
  });

  async function botSays(room: string, pattern: RegExp): Promise<void> {
    await h.waitFor(async () => {
      const found = (await h.messages(room)).find((m) => m.sender === BOT && pattern.test(m.body));
      return found?.body;
    }, `the bot to say ${pattern}`);
  }

  function fromBob(id: string, text: string) {
    order += 1;
    return h.network.report(matrixUserId(h.alice.userId), {
      kind: "message",
      from: contactId(BOB),
      id: id as RemoteMessageId,
      sentAt: new Date(),
      order,
      content: { type: "text", text: { text, spans: [] } },
      isRequest: false,
    });
  }

  async function networkGets(text: string): Promise<void> {
    await h.waitFor(
      async () =>
        h.network.sent.some((s) => s.content.type === "text" && s.content.text.text === text)
          ? true
          : undefined,
      `"${text}" at the network`,
    );
  }

  it("a new portal is created with m.room.encryption", async function () {
    const created = await h.asAlice("POST", "/_matrix/client/v3/createRoom", {
      invite: [BOT],
      is_direct: true,
      preset: "trusted_private_chat",
    });
    mgmt = created.json["room_id"] as string;
    await botSays(mgmt, /Send `login` to start/);
    for (const [text, answer] of [
      ["login", /decrypts them/],
      ["phone", /phone number/],
      ["+491709876543", /code/],
      ["123456", /^Logged in/],
    ] as const) {
      await h.say(mgmt, text);
      await botSays(mgmt, answer);
    }
    h.network.reachable.add(BOB);
    await h.say(mgmt, `start-chat ${BOB}`);
    await botSays(mgmt, /Invited you to a new chat/);
    const row = await h.tables.portalRows.get(matrixUserId(h.alice.userId), contactId(BOB));
    assert.ok(row?.roomId);
    portal = row.roomId;
    await alice.client.joinRoom(portal);
    const state = await h.asAlice(
      "GET",
      `/_matrix/client/v3/rooms/${enc(portal)}/state/m.room.encryption/`,
    );
    assert.equal(state.json["algorithm"], "m.megolm.v1.aes-sha2");
  });

  it("a WhatsApp message arrives encrypted from the ghost and the user's client decrypts it", async function () {
    const got = nextClearEvent(
      alice.client,
      portal,
      (e) => e.getContent()["body"] === "hello encrypted",
    );
    await fromBob("bob-1", "hello encrypted");
    const event = await within(got, 30_000, "alice decrypting the ghost's message");
    assert.equal(event.getSender(), GHOST);
    assert.equal(event.getWireType(), "m.room.encrypted");
  });

  it("a text near the size limit is fitted so that its encrypted event stays within 64 KiB", async function () {
    // 56,000 bytes of text fit a plaintext event, but Megolm's base64 grows it past 64 KiB: the
    // homeserver would refuse it with 413 and the message would become a failure notice.
    const long = `long-${"x".repeat(56_000)}`;
    const got = nextClearEvent(alice.client, portal, (e) =>
      String(e.getContent()["body"]).startsWith("long-"),
    );
    await fromBob("bob-long", long);
    const event = await within(got, 30_000, "alice decrypting the long message");
    const body = String(event.getContent()["body"]);
    assert.match(body, /… \[truncated: \d+ more characters\]$/);
    assert.equal(event.getWireType(), "m.room.encrypted");
  });

  it("the ghost's device is cross-signed by the ghost, so the user's client does not warn about it", async function () {
    const crypto = alice.client.getCrypto();
    assert.ok(crypto);
    const devices = await crypto.getUserDeviceInfo([GHOST], true);
    const ids = [...(devices.get(GHOST)?.keys() ?? [])];
    assert.equal(ids.length, 1, "the ghost has one device");
    const status = await crypto.getDeviceVerificationStatus(GHOST, ids[0]!);
    assert.equal(status?.signedByOwner, true);
  });

  it("the user's encrypted message is decrypted by the bridge and reaches WhatsApp", async function () {
    await alice.client.sendTextMessage(portal, "secret to bob");
    await networkGets("secret to bob");
  });

  it("an image from WhatsApp arrives as an encrypted attachment the user can decrypt", async function () {
    // A PNG signature: the bridge types WhatsApp media by its bytes (src/matrix/media-type.ts).
    const image = Buffer.concat([
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
      randomBytes(5000),
    ]);
    const got = nextClearEvent(
      alice.client,
      portal,
      (e) => e.getContent()["msgtype"] === "m.image",
    );
    order += 1;
    await h.network.report(matrixUserId(h.alice.userId), {
      kind: "message",
      from: contactId(BOB),
      id: "bob-img" as RemoteMessageId,
      sentAt: new Date(),
      order,
      content: {
        type: "media",
        media: {
          kind: "image",
          mimeType: "image/png",
          size: image.length,
          width: 1,
          height: 1,
          open: async () =>
            (async function* () {
              yield image.subarray(0, 1000);
              yield image.subarray(1000);
            })(),
        },
      },
      isRequest: false,
    });
    const event = await within(got, 30_000, "alice decrypting the image event");
    const content = event.getContent();
    assert.equal(content["url"], undefined, "no plaintext url in an encrypted room");
    const file = content["file"] as {
      url: string;
      key: { k: string };
      iv: string;
      hashes: { sha256: string };
    };
    const stored = await fetch(
      `${h.hs.url}/_matrix/client/v1/media/download/${file.url.slice("mxc://".length)}`,
      { headers: { authorization: `Bearer ${h.alice.accessToken}` } },
    );
    const cipher = Buffer.from(await stored.arrayBuffer());
    assert.equal(
      createHash("sha256").update(cipher).digest("base64").replace(/=+$/, ""),
      file.hashes.sha256,
    );
    const decipher = createDecipheriv(
      "aes-256-ctr",
      Buffer.from(file.key.k, "base64url"),
      Buffer.from(file.iv, "base64"),
    );
    assert.deepEqual(Buffer.concat([decipher.update(cipher), decipher.final()]), image);
  });

  it("a 20 MB encrypted file from the user reaches WhatsApp decrypted, streamed", async function () {
    this.timeout(180_000);
    const plain = randomBytes(20 * 1024 * 1024);
    const key = randomBytes(32);
    const iv = Buffer.concat([randomBytes(8), Buffer.alloc(8)]);
    const cipher = createCipheriv("aes-256-ctr", key, iv);
    const encrypted = Buffer.concat([cipher.update(plain), cipher.final()]);
    const upload = await fetch(`${h.hs.url}/_matrix/media/v3/upload?filename=big.bin`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${h.alice.accessToken}`,
        "content-type": "application/octet-stream",
      },
      body: encrypted,
    });
    const mxc = ((await upload.json()) as { content_uri: string }).content_uri;
    const before = h.network.sent.length;
    await alice.client.sendMessage(portal, {
      msgtype: "m.file",
      body: "big.bin",
      info: { mimetype: "application/octet-stream", size: plain.length },
      file: {
        url: mxc,
        key: {
          kty: "oct",
          key_ops: ["encrypt", "decrypt"],
          alg: "A256CTR",
          k: key.toString("base64url"),
          ext: true,
        },
        iv: iv.toString("base64").replace(/=+$/, ""),
        hashes: {
          sha256: createHash("sha256").update(encrypted).digest("base64").replace(/=+$/, ""),
        },
        v: "v2",
      },
    } as never);
    const out = await h.waitFor(
      async () => (h.network.sent.length > before ? h.network.sent.at(-1) : undefined),
      "the file at the network",
    );
    assert.equal(out.content.type, "media");
    if (out.content.type !== "media") return;
    const hash = createHash("sha256");
    let size = 0;
    let largest = 0;
    for await (const chunk of await out.content.media.open()) {
      hash.update(chunk);
      size += chunk.byteLength;
      largest = Math.max(largest, chunk.byteLength);
    }
    assert.equal(size, plain.length);
    assert.equal(hash.digest("hex"), createHash("sha256").update(plain).digest("hex"));
    assert.ok(largest < 4 * 1024 * 1024, `streamed in chunks (largest ${largest} bytes)`);
  });

  it("replies, edits, reactions and redactions from the user are decrypted and bridged", async function () {
    const target = await within(
      nextClearEvent(alice.client, portal, (e) => e.getContent()["body"] === "hello encrypted"),
      10_000,
      "the ghost's first message",
    );
    const targetId = target.getId()!;
    await alice.client.sendMessage(portal, {
      msgtype: "m.text",
      body: "a reply",
      "m.relates_to": { "m.in_reply_to": { event_id: targetId } },
    } as never);
    await networkGets("a reply");
    const reply = h.network.sent.find(
      (s) => s.content.type === "text" && s.content.text.text === "a reply",
    );
    assert.ok(reply?.replyTo, "the reply keeps its target");
    const sentOwn = await alice.client.sendTextMessage(portal, "to be edited");
    await networkGets("to be edited");
    await alice.client.sendMessage(portal, {
      msgtype: "m.text",
      body: "* edited",
      "m.new_content": { msgtype: "m.text", body: "edited" },
      "m.relates_to": { rel_type: "m.replace", event_id: sentOwn.event_id },
    } as never);
    await h.waitFor(
      async () => (h.network.actions.some((a) => a.startsWith("edit")) ? true : undefined),
      "the edit at the network",
    );
    await alice.client.sendEvent(
      portal,
      "m.reaction" as never,
      {
        "m.relates_to": { rel_type: "m.annotation", event_id: targetId, key: "👍" },
      } as never,
    );
    await h.waitFor(
      async () => (h.network.actions.some((a) => a.startsWith("reactions")) ? true : undefined),
      "the reaction at the network",
    );
    await alice.client.redactEvent(portal, sentOwn.event_id);
    await h.waitFor(
      async () => (h.network.actions.some((a) => a.startsWith("retract")) ? true : undefined),
      "the redaction at the network",
    );
  });

  it("an encrypted message the bridge has no key for gets a notice after the bounded wait", async function () {
    const notice = nextClearEvent(alice.client, portal, (e) =>
      /could not decrypt this message; send it again/.test(String(e.getContent()["body"])),
    );
    const sent = await h.asAlice(
      "PUT",
      `/_matrix/client/v3/rooms/${enc(portal)}/send/m.room.encrypted/undecryptable-1`,
      {
        algorithm: "m.megolm.v1.aes-sha2",
        sender_key: "a".repeat(43),
        device_id: "NOSUCHDEVICE",
        session_id: "b".repeat(43),
        ciphertext: "AwgAEnB".repeat(10),
      },
    );
    assert.equal(sent.status, 200);
    const event = await within(notice, 20_000, "the bot's notice");
    assert.equal(event.getSender(), BOT);
    assert.equal(event.getWireType(), "m.room.encrypted", "the notice itself is encrypted");
  });

  it("the homeserver stores no plaintext of either message", async function () {
    const dump = h.hs.inspectRoom(portal);
    assert.deepEqual(dump.find("hello encrypted"), []);
    assert.deepEqual(dump.find("secret to bob"), []);
    assert.deepEqual(dump.find("a reply"), []);
    assert.deepEqual(dump.find("to be edited"), []);
    assert.deepEqual(dump.find("PNG-not-really"), [], "the image is stored encrypted");
  });

  it("after a restart the bridge still decrypts and encrypts in the same portal", async function () {
    await h.restart();
    const got = nextClearEvent(
      alice.client,
      portal,
      (e) => e.getContent()["body"] === "after restart",
    );
    await fromBob("bob-2", "after restart");
    await within(got, 30_000, "alice decrypting after the restart");
    await alice.client.sendTextMessage(portal, "user after restart");
    await networkGets("user after restart");
  });

  it("after an unclean stop the bridge shares a new room key and the user still reads it", async function () {
    await h.restart({ crash: true });
    const got = nextClearEvent(
      alice.client,
      portal,
      (e) => e.getContent()["body"] === "after crash",
    );
    await fromBob("bob-3", "after crash");
    const event = await within(got, 30_000, "alice decrypting after the crash");
    const sessions = new Set(
      alice.client
        .getRoom(portal)
        ?.getLiveTimeline()
        .getEvents()
        .filter((e) => e.getSender() === GHOST && e.getWireType() === "m.room.encrypted")
        .map((e) => (e.getWireContent() as { session_id?: string }).session_id),
    );
    assert.ok(sessions.size >= 2, "the ghost's session after the crash is a new one");
    assert.equal(event.getSender(), GHOST);
  });

  it("a plaintext event from the user still works when encryption is not required", async function () {
    await h.say(portal, "plain words");
    await networkGets("plain words");
  });

  void sdk;
});
