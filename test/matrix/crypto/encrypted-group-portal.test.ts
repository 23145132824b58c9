import assert from "node:assert/strict";
import type { RemoteMessageId, RemoteUserId } from "../../../src/core/network.js";
import { matrixUserId, type RemoteGroupId } from "../../../src/util/ids.js";
import { contactId, selfIdOf } from "../../core/fakes/network.js";
import {
  nextClearEvent,
  startCryptoClient,
  within,
  type CryptoClient,
} from "../../homeserver/cryptoClient.js";
import { enc, silenceMatrixSdk } from "../../homeserver/testHelpers.js";
import { BOT, startMatrixHarness, type MatrixHarness } from "../harness.js";

const WA = "+491701234567";
const GHOST = "@whatsapp_491701234567:example.org";

silenceMatrixSdk();

describe("an end-to-bridge encrypted group portal (bridge, test homeserver, js-sdk user with Rust crypto)", function () {
  this.timeout(120_000);
  let h: MatrixHarness;
  let alice: CryptoClient;
  let room: string;
  let group: RemoteGroupId;

  before(async function () {
    h = await startMatrixHarness(
      "spec",
      {},
      {},
      { matrix_encryption: { default: true, decrypt_wait_ms: 500 } },
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

  it("a group seen for the first time gets a room with m.room.encryption", async function () {
    const created = await h.asAlice("POST", "/_matrix/client/v3/createRoom", {
      invite: [BOT],
      is_direct: true,
      preset: "trusted_private_chat",
    });
    const mgmt = created.json["room_id"] as string;
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
    const user = matrixUserId(h.alice.userId);
    group = h.network.newGroup("Encrypted friends", [
      { id: selfIdOf(user), admin: false, displayName: "alice" },
      { id: contactId(WA), admin: true, displayName: WA },
    ]);
    await h.network.report(user, {
      kind: "group-info",
      group,
      info: h.network.groupInfo(group),
    });
    const row = await h.tables.groups.byRemote(group);
    assert.ok(row?.roomId);
    room = row.roomId;
    await alice.client.joinRoom(room);
    const state = await h.asAlice(
      "GET",
      `/_matrix/client/v3/rooms/${enc(room)}/state/m.room.encryption/`,
    );
    assert.equal(state.json["algorithm"], "m.megolm.v1.aes-sha2");
  });

  it("a member's message arrives encrypted from the ghost and the user's client decrypts it", async function () {
    const got = nextClearEvent(alice.client, room, (e) => e.getContent()["body"] === "hi group");
    await h.network.report(matrixUserId(h.alice.userId), {
      kind: "message",
      group,
      from: contactId(WA) as RemoteUserId,
      id: "wa-1" as RemoteMessageId,
      sentAt: new Date(),
      order: 1,
      content: { type: "text", text: { text: "hi group", spans: [] } },
      isRequest: false,
    });
    const event = await within(got, 30_000, "alice decrypting the ghost's group message");
    assert.equal(event.getSender(), GHOST);
    assert.equal(event.getWireType(), "m.room.encrypted");
  });

  it("the user's encrypted message is decrypted by the bridge and reaches the group", async function () {
    await alice.client.sendTextMessage(room, "secret to the group");
    await h.waitFor(
      async () =>
        h.network.sent.some(
          (s) =>
            s.to === group &&
            s.content.type === "text" &&
            s.content.text.text === "secret to the group",
        )
          ? true
          : undefined,
      "the message at the network",
    );
  });
});
