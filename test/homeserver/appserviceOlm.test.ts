import assert from "node:assert/strict";
import * as sdk from "matrix-js-sdk";
import { AS_TOKEN, setUp, type Setup } from "./appserviceFixture.js";
import { loginCryptoClient, nextClearEvent, within, type CryptoClient } from "./cryptoClient.js";
import { OlmAppserviceDevice } from "./olmDevice.js";
import { silenceMatrixSdk } from "./testHelpers.js";
import type { JsonObject } from "./types.js";

silenceMatrixSdk();

const ASKS = { "org.matrix.msc3202": true, "de.sorunome.msc2409.push_ephemeral": true };

/**
 * An appservice ghost whose device is an OlmMachine (as the bridge's will be) and a matrix-js-sdk
 * user with Rust crypto, in an encrypted room, through this homeserver: with the MSC2409/MSC3202
 * pushes, and without them (the ghost's device then syncs).
 */
describe("test homeserver carrying end-to-bridge encryption between an appservice device and a js-sdk user", function () {
  this.timeout(60_000);
  let s: Setup | undefined;
  let bob: CryptoClient | undefined;
  let ghost: OlmAppserviceDevice | undefined;
  afterEach(async function () {
    bob?.stop();
    ghost?.close();
    await s?.hs.stop();
    await s?.as.stop();
    s = bob = ghost = undefined;
  });

  async function encryptedRoom(
    pushes: boolean,
  ): Promise<{ setup: Setup; bob: CryptoClient; ghost: OlmAppserviceDevice }> {
    s = await setUp("synapse-1.92", ASKS, { appserviceCryptoPushes: pushes });
    ghost = await OlmAppserviceDevice.create(s.hs.url, AS_TOKEN, s.ghost, "GHOSTDEV");
    bob = await loginCryptoClient(s.hs.url, { user: "bob", password: "password" });
    await bob.client.sendStateEvent(
      s.roomId,
      sdk.EventType.RoomEncryption,
      { algorithm: "m.megolm.v1.aes-sha2" },
      "",
    );
    const client = bob.client;
    const roomId = s.roomId;
    // js-sdk encrypts only once its own sync has shown the room's m.room.encryption state.
    await within(
      (async () => {
        while (!(await client.getCrypto()?.isEncryptionEnabledInRoom(roomId))) {
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      })(),
      10_000,
      "bob's client seeing the room encrypted",
    );
    return { setup: s, bob, ghost };
  }

  it("with pushes: the ghost decrypts the user's message from transactions, and the user decrypts the ghost's reply", async function () {
    const { setup, bob, ghost } = await encryptedRoom(true);
    await bob.client.sendTextMessage(setup.roomId, "hello ghost");
    await setup.hs.appserviceIdle("whatsapp");
    let clear: JsonObject | undefined;
    for (const txn of setup.as.transactions()) {
      // Extensions first: the room key arrives by to-device before (or with) the event.
      await ghost.receiveTransaction(txn.body);
      for (const event of (txn.body["events"] as JsonObject[]) ?? []) {
        if (event["type"] === "m.room.encrypted") clear = await ghost.decrypt(event, setup.roomId);
      }
    }
    assert.equal(clear?.["body"], "hello ghost");

    const bobGets = nextClearEvent(
      bob.client,
      setup.roomId,
      (e) => e.getContent()["body"] === "hello bob",
    );
    await ghost.sendEncrypted(
      setup.roomId,
      [bob.userId, setup.ghost],
      "m.room.message",
      { msgtype: "m.text", body: "hello bob" },
      "g1",
    );
    const got = await within(bobGets, 20_000, "bob decrypting the ghost's message");
    assert.equal(got.getSender(), setup.ghost);
    assert.deepEqual(setup.hs.inspectRoom(setup.roomId).find("hello"), [], "no plaintext stored");
  });

  it("without pushes: the ghost's device gets the room key by its own /sync and decrypts", async function () {
    const { setup, bob, ghost } = await encryptedRoom(false);
    await bob.client.sendTextMessage(setup.roomId, "hello ghost");
    await setup.hs.appserviceIdle("whatsapp");
    for (const txn of setup.as.transactions()) {
      assert.equal(txn.body["de.sorunome.msc2409.to_device"], undefined);
    }
    await ghost.syncOnce(undefined);
    const event = setup.as
      .transactions()
      .flatMap((t) => (t.body["events"] as JsonObject[]) ?? [])
      .find((e) => e["type"] === "m.room.encrypted");
    assert.ok(event, "the encrypted event was pushed");
    assert.equal((await ghost.decrypt(event, setup.roomId))["body"], "hello ghost");
  });
});
