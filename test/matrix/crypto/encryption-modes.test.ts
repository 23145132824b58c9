import assert from "node:assert/strict";
import type { RemoteMessageId } from "../../../src/core/network.js";
import { matrixUserId } from "../../../src/util/ids.js";
import { contactId } from "../../core/fakes/network.js";
import {
  loginCryptoClient,
  nextClearEvent,
  startCryptoClient,
  within,
  type CryptoClient,
} from "../../homeserver/cryptoClient.js";
import { enc, silenceMatrixSdk } from "../../homeserver/testHelpers.js";
import { ALICE_PASSWORD, BOT, startMatrixHarness, type MatrixHarness } from "../harness.js";

const BOB = "+491701234567";
const GHOST = "@whatsapp_491701234567:example.org";

silenceMatrixSdk();

/** A logged-in alice with a portal to BOB; `alice` is her Rust-crypto client. */
async function portalWorld(
  overrides: Parameters<typeof startMatrixHarness>[3],
): Promise<{ h: MatrixHarness; alice: CryptoClient; portal: string }> {
  const h = await startMatrixHarness("spec", {}, {}, overrides);
  const alice = await startCryptoClient(h.hs.url, h.alice);
  const created = await h.asAlice("POST", "/_matrix/client/v3/createRoom", {
    invite: [BOT],
    is_direct: true,
    preset: "trusted_private_chat",
  });
  const mgmt = created.json["room_id"] as string;
  const botSays = (pattern: RegExp) =>
    h.waitFor(async () => {
      const found = (await h.messages(mgmt)).find((m) => m.sender === BOT && pattern.test(m.body));
      return found?.body;
    }, `the bot to say ${pattern}`);
  await botSays(/Send `login` to start/);
  for (const [text, answer] of [
    ["login", /decrypts them/],
    ["phone", /phone number/],
    ["+491709876543", /code/],
    ["123456", /^Logged in/],
    [`start-chat ${BOB}`, /Invited you to a new chat/],
  ] as const) {
    if (text.startsWith("start-chat")) h.network.reachable.add(BOB);
    await h.say(mgmt, text);
    await botSays(answer);
  }
  const row = await h.tables.portalRows.get(matrixUserId(h.alice.userId), contactId(BOB));
  assert.ok(row?.roomId);
  await alice.client.joinRoom(row.roomId);
  return { h, alice, portal: row.roomId };
}

let order = 100;
function fromBob(h: MatrixHarness, text: string) {
  order += 1;
  return h.network.report(matrixUserId(h.alice.userId), {
    kind: "message",
    from: contactId(BOB),
    id: `bob-${order}` as RemoteMessageId,
    sentAt: new Date(),
    order,
    content: { type: "text", text: { text, spans: [] } },
    isRequest: false,
  });
}

async function networkGets(h: MatrixHarness, text: string): Promise<void> {
  await h.waitFor(
    async () =>
      h.network.sent.some((s) => s.content.type === "text" && s.content.text.text === text)
        ? true
        : undefined,
    `"${text}" at the network`,
  );
}

describe("a plaintext portal encrypted later, on a homeserver that does not push to-device (the bridge syncs)", function () {
  this.timeout(120_000);
  let h: MatrixHarness;
  let alice: CryptoClient;
  let second: CryptoClient | undefined;
  let portal: string;

  before(async function () {
    ({ h, alice, portal } = await portalWorld({
      matrix_encryption: { default: false, receive: "sync", decrypt_wait_ms: 15_000 },
      appserviceCryptoPushes: false,
    }));
  });
  after(async function () {
    second?.stop();
    alice?.stop();
    await h?.dispose();
  });

  it("the portal starts plaintext: the ghost's message is stored readable", async function () {
    await fromBob(h, "plain hello");
    const messages = await h.waitFor(async () => {
      const all = await h.messages(portal);
      return all.some((m) => m.body === "plain hello") ? all : undefined;
    }, "the plaintext message");
    assert.equal(messages.find((m) => m.body === "plain hello")?.sender, GHOST);
  });

  it("after the user turns encryption on, the ghost's messages are encrypted and readable by her", async function () {
    await alice.client.sendStateEvent(
      portal,
      "m.room.encryption" as never,
      {
        algorithm: "m.megolm.v1.aes-sha2",
      } as never,
    );
    await h.hs.appserviceIdle(h.appserviceId);
    const got = nextClearEvent(
      alice.client,
      portal,
      (e) => e.getContent()["body"] === "now secret",
    );
    await fromBob(h, "now secret");
    const event = await within(got, 30_000, "alice decrypting");
    assert.equal(event.getWireType(), "m.room.encrypted");
    assert.deepEqual(h.hs.inspectRoom(portal).find("now secret"), []);
  });

  it("her encrypted messages reach WhatsApp: the room key came by the bot's own /sync", async function () {
    await alice.client.sendTextMessage(portal, "encrypted by alice");
    await networkGets(h, "encrypted by alice");
  });

  it("a second device of the user reads what the ghost sends after it logged in", async function () {
    second = await loginCryptoClient(h.hs.url, { user: "alice", password: ALICE_PASSWORD });
    // The bridge learns of the new device from its device-list change (here by its /sync); a
    // message sent in the same instant would race that, for any Megolm sender.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const got = nextClearEvent(
      second.client,
      portal,
      (e) => e.getContent()["body"] === "for both devices",
    );
    const first = nextClearEvent(
      alice.client,
      portal,
      (e) => e.getContent()["body"] === "for both devices",
    );
    await fromBob(h, "for both devices");
    await within(got, 30_000, "the second device decrypting");
    await within(first, 30_000, "the first device decrypting");
  });
});

describe("encryption required, and idle ghost machines unloaded", function () {
  this.timeout(120_000);
  let h: MatrixHarness;
  let alice: CryptoClient;
  let portal: string;

  before(async function () {
    ({ h, alice, portal } = await portalWorld({
      matrix_encryption: { default: true, require: true, idle_device_ms: 1000 },
    }));
  });
  after(async function () {
    alice?.stop();
    await h?.dispose();
  });

  it("a plaintext message in the portal is refused with a notice and not bridged", async function () {
    const notice = nextClearEvent(alice.client, portal, (e) =>
      /only encrypted messages/.test(String(e.getContent()["body"])),
    );
    const before = h.network.sent.length;
    const sent = await h.asAlice(
      "PUT",
      `/_matrix/client/v3/rooms/${enc(portal)}/send/m.room.message/plain-1`,
      { msgtype: "m.text", body: "plaintext attempt" },
    );
    assert.equal(sent.status, 200);
    await within(notice, 20_000, "the refusal notice");
    assert.equal(h.network.sent.length, before);
  });

  it("a ghost's machine unused for idle_device_ms is unloaded and reloaded from the database when needed", async function () {
    const first = nextClearEvent(
      alice.client,
      portal,
      (e) => e.getContent()["body"] === "before idle",
    );
    await fromBob(h, "before idle");
    await within(first, 30_000, "the first message");
    const crypto = h.bridge.matrixCrypto;
    assert.ok(crypto);
    await h.waitFor(
      async () => (crypto.loadedMachines === 1 ? true : undefined),
      "only the bot's machine to stay loaded",
    );
    const second = nextClearEvent(
      alice.client,
      portal,
      (e) => e.getContent()["body"] === "after idle",
    );
    await fromBob(h, "after idle");
    const event = await within(second, 30_000, "the message after the reload");
    const sessions = new Set(
      alice.client
        .getRoom(portal)
        ?.getLiveTimeline()
        .getEvents()
        .filter((e) => e.getSender() === GHOST && e.getWireType() === "m.room.encrypted")
        .map((e) => (e.getWireContent() as { session_id?: string }).session_id),
    );
    assert.equal(sessions.size, 1, "the reloaded machine kept its outbound session");
    assert.equal(event.getSender(), GHOST);
  });
});
