import assert from "node:assert/strict";
import { configSchema } from "../../../src/config/schema.js";
import { RoomCrypto, MEGOLM_ENCRYPTION } from "../../../src/matrix/crypto/room-crypto.js";
import { silentLogger } from "../../../src/util/log.js";
import { KeyVault } from "../../../src/vault/key-vault.js";
import { describeOnBackends } from "../../helpers/db.js";

const vault = KeyVault.fromKey(new Uint8Array(32).fill(5));
const BOT = "@bot:example.org";

/**
 * matrix-sdk-crypto-wasm, its instance and the IndexedDB mirror cost ~30 MB of resident memory
 * (docs/dependencies.md): a bridge that has not yet needed a device machine must not load them.
 */
describeOnBackends("Matrix encryption's engine is loaded only when a device is used", (get) => {
  let crypto: RoomCrypto;

  beforeEach(async function () {
    const config = configSchema.parse({
      homeserver: { url: "http://127.0.0.1:9", domain: "example.org" },
    });
    crypto = await RoomCrypto.start({
      knex: get().db.knex,
      vault,
      config: config.matrix_encryption,
      // Nothing listens there: a device that has to be created fails, after the engine loaded.
      homeserverUrl: "http://127.0.0.1:9",
      asToken: "as",
      botUserId: BOT,
      log: silentLogger(),
    });
  });

  afterEach(async function () {
    await crypto.stop();
  });

  it("starting, plaintext events, transactions without encryption data and a new encrypted room do not load it", async function () {
    assert.equal(crypto.engineLoaded, false, "not at start");
    const event = {
      type: "m.room.message",
      room_id: "!room:example.org",
      event_id: "$1",
      sender: "@alice:example.org",
      origin_server_ts: 1,
      content: { msgtype: "m.text", body: "hi" },
    };
    await crypto.receiveTransactionExtras({ events: [event], raw: { events: [event] } });
    assert.deepEqual(await crypto.decrypt(event), { kind: "clear", event });
    await crypto.roomCreated("!new:example.org", crypto.initialState());
    assert.deepEqual(crypto.initialState()[0]?.content, MEGOLM_ENCRYPTION);
    assert.equal(await crypto.isEncrypted("!new:example.org"), true);
    assert.equal(crypto.engineLoaded, false, "nothing needed a device machine");
  });

  it("the bot's device, set up on an earlier start, is not loaded again at the first transaction", async function () {
    await get()
      .db.knex("crypto_meta")
      .insert({ key: "matrix_bot_device_ready", value: Buffer.from("1") });
    await crypto.ensureBotDevice();
    assert.equal(crypto.engineLoaded, false);
  });

  it("an encrypted event loads it (and the bot's device is then needed)", async function () {
    await assert.rejects(
      crypto.decrypt({
        type: "m.room.encrypted",
        room_id: "!room:example.org",
        event_id: "$2",
        sender: "@alice:example.org",
        origin_server_ts: 1,
        content: { algorithm: "m.megolm.v1.aes-sha2", ciphertext: "x", session_id: "s" },
      }),
    );
    assert.equal(crypto.engineLoaded, true);
  });
});
