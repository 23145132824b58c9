import assert from "node:assert/strict";
import * as sdk from "matrix-js-sdk";
import {
  ENCRYPTION_STATE,
  loginCryptoClient,
  nextClearEvent,
  within,
  type CryptoClient,
} from "./cryptoClient.js";
import { createTestHomeserver, type TestHomeserver } from "./index.js";
import { api, enc, silenceMatrixSdk } from "./testHelpers.js";

silenceMatrixSdk();

describe("test homeserver with two matrix-js-sdk clients using Rust crypto", function () {
  this.timeout(60_000);
  let hs: TestHomeserver;
  const clients: CryptoClient[] = [];

  beforeEach(async function () {
    hs = createTestHomeserver({ serverName: "hs.test", profile: "spec" });
    await hs.start();
    hs.registerUser("alice", "alice-pw");
    hs.registerUser("bob", "bob-pw");
  });

  afterEach(async function () {
    for (const c of clients.splice(0)) c.stop();
    await hs.stop();
  });

  async function login(user: string, password: string): Promise<CryptoClient> {
    const c = await loginCryptoClient(hs.url, { user, password });
    clients.push(c);
    return c;
  }

  async function knowsDevice(c: CryptoClient, userId: string, deviceId: string): Promise<void> {
    for (;;) {
      const devices = await c.client.getCrypto()?.getUserDeviceInfo([userId]);
      if (devices?.get(userId)?.has(deviceId) === true) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async function encryptedRoomWithBob(alice: CryptoClient, bob: CryptoClient): Promise<string> {
    const { room_id: roomId } = await alice.client.createRoom({
      preset: sdk.Preset.PrivateChat,
      invite: [bob.userId],
      initial_state: [ENCRYPTION_STATE],
    });
    await within(
      new Promise<void>((resolve) => {
        const check = (): void => {
          if (bob.client.getRoom(roomId)?.getMyMembership() === "invite") {
            bob.client.off(sdk.ClientEvent.Sync, check);
            resolve();
          }
        };
        bob.client.on(sdk.ClientEvent.Sync, check);
        check();
      }),
      10_000,
      "bob's invite",
    );
    await bob.client.joinRoom(roomId);
    return roomId;
  }

  it("a message sent in an encrypted room is stored encrypted and each side decrypts the other's", async function () {
    const alice = await login("alice", "alice-pw");
    const bob = await login("bob", "bob-pw");
    const roomId = await encryptedRoomWithBob(alice, bob);

    const bobGets = nextClearEvent(
      bob.client,
      roomId,
      (e) => e.getContent()["body"] === "secret hello",
    );
    await alice.client.sendTextMessage(roomId, "secret hello");
    const received = await within(bobGets, 20_000, "bob decrypting alice's message");
    assert.equal(received.getSender(), alice.userId);
    assert.equal(received.getWireType(), "m.room.encrypted");

    const aliceGets = nextClearEvent(
      alice.client,
      roomId,
      (e) => e.getContent()["body"] === "secret reply",
    );
    await bob.client.sendTextMessage(roomId, "secret reply");
    await within(aliceGets, 20_000, "alice decrypting bob's reply");

    const dump = hs.inspectRoom(roomId);
    assert.deepEqual(dump.find("secret hello"), [], "alice's plaintext is stored nowhere");
    assert.deepEqual(dump.find("secret reply"), [], "bob's plaintext is stored nowhere");
    const encrypted = dump.events.filter((e) => e.includes('"type":"m.room.encrypted"'));
    assert.equal(encrypted.length, 2, "both messages are stored as m.room.encrypted");
    assert.ok(dump.toDevice.length >= 2, "room keys travelled as to-device messages");
  });

  it("a second device of bob, logged in later, decrypts what alice sends afterwards", async function () {
    const alice = await login("alice", "alice-pw");
    const bob = await login("bob", "bob-pw");
    const roomId = await encryptedRoomWithBob(alice, bob);
    const bobGets = nextClearEvent(bob.client, roomId, (e) => e.getContent()["body"] === "before");
    await alice.client.sendTextMessage(roomId, "before");
    await within(bobGets, 20_000, "bob's first device decrypting");

    const bob2 = await login("bob", "bob-pw");
    assert.notEqual(bob2.deviceId, bob.deviceId);
    // Alice learns of the new device through device_lists.changed in her sync.
    await within(
      knowsDevice(alice, bob.userId, bob2.deviceId),
      20_000,
      "alice seeing bob's new device",
    );

    const bothGet = [bob, bob2].map((c) =>
      nextClearEvent(c.client, roomId, (e) => e.getContent()["body"] === "after"),
    );
    await alice.client.sendTextMessage(roomId, "after");
    await within(Promise.all(bothGet), 20_000, "both of bob's devices decrypting");
  });

  it("cross-signing bootstrapped by the Rust crypto is accepted, and others see the device signed by its owner", async function () {
    const alice = await login("alice", "alice-pw");
    const bob = await login("bob", "bob-pw");
    // Sharing a room is what makes bob's client hear of alice's key changes (device_lists).
    await encryptedRoomWithBob(alice, bob);
    const crypto = alice.client.getCrypto();
    assert.ok(crypto);
    let asked = 0;
    await crypto.bootstrapCrossSigning({
      setupNewCrossSigning: true,
      // First upload: MSC3967 needs no auth, so the callback passes none (and is not asked twice).
      authUploadDeviceSigningKeys: async (makeRequest) => {
        asked += 1;
        await makeRequest(null);
      },
    });
    assert.equal(asked, 1);
    const status = await within(
      (async () => {
        for (;;) {
          await bob.client.getCrypto()?.getUserDeviceInfo([alice.userId], true);
          const s = await bob.client
            .getCrypto()
            ?.getDeviceVerificationStatus(alice.userId, alice.deviceId);
          if (s?.signedByOwner === true) return s;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      })(),
      20_000,
      "bob seeing alice's device signed by her self-signing key",
    );
    assert.equal(status.signedByOwner, true);
  });

  it("the inspection finds plaintext where it is stored, including redacted originals", async function () {
    const alice = hs.registerUser("carol", "pw");
    const created = await api(hs.url, "POST", "/_matrix/client/v3/createRoom", {
      token: alice.accessToken,
      body: {},
    });
    const roomId = created.json["room_id"] as string;
    const sent = await api(
      hs.url,
      "PUT",
      `/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/t1`,
      { token: alice.accessToken, body: { msgtype: "m.text", body: 'plain "words"' } },
    );
    const eventId = sent.json["event_id"] as string;
    await api(hs.url, "PUT", `/_matrix/client/v3/rooms/${enc(roomId)}/redact/${enc(eventId)}/r1`, {
      token: alice.accessToken,
      body: {},
    });
    await api(hs.url, "POST", "/_matrix/media/v3/upload", {
      token: alice.accessToken,
      rawBody: Buffer.from("file with plain words inside"),
      contentType: "text/plain",
    });
    const dump = hs.inspectRoom(roomId);
    const where = dump.find('plain "words"');
    assert.equal(where.length, 1, `found once, in the retained original: ${where.join(", ")}`);
    assert.match(where[0] ?? "", /^events\[/);
    assert.equal(dump.find("with plain words").length, 1, "uploaded bytes are scanned");
  });
});
