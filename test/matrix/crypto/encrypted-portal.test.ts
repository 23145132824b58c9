import assert from "node:assert/strict";
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
import { enc, silenceMatrixSdk, unrefLongTimers } from "../../homeserver/testHelpers.js";
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
  let restoreTimers: () => void;
  let order = 10;

  before(async function () {
    restoreTimers = unrefLongTimers();
    h = await startMatrixHarness("spec", { matrix_encryption: { default: true } });
    alice = await startCryptoClient(h.hs.url, {
      userId: h.alice.userId,
      accessToken: h.alice.accessToken,
      deviceId: (h.alice as { deviceId?: string }).deviceId ?? "",
    });
  });
  after(async function () {
    alice?.stop();
    await h?.dispose();
    restoreTimers?.();
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
    const row = await h.bridge.core.portalRows.get(matrixUserId(h.alice.userId), contactId(BOB));
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

  it("the user's encrypted message is decrypted by the bridge and reaches WhatsApp", async function () {
    await alice.client.sendTextMessage(portal, "secret to bob");
    await networkGets("secret to bob");
  });

  it("the homeserver stores no plaintext of either message", async function () {
    const dump = h.hs.inspectRoom(portal);
    assert.deepEqual(dump.find("hello encrypted"), []);
    assert.deepEqual(dump.find("secret to bob"), []);
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
