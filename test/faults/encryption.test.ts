import assert from "node:assert/strict";
// Order matters: the fault world (which reaches matrix-js-sdk's modules by another path) before
// the js-sdk client, or matrix-js-sdk refuses to load twice ("multiple entrypoints").
import { assertExactlyOnce, Burst } from "./counting.js";
import { FaultWorld, openConversation, type Conversation } from "./world.js";
import { stopSdkClient, unrefStraySdkTimers } from "../homeserver/sdkClient.js";
import { silenceMatrixSdk } from "../homeserver/testHelpers.js";
import { EncryptingMatrixUser } from "../../scripts/demo/crypto-user.js";

silenceMatrixSdk();

const TOTAL = 200;
const KILL_AT = 80;

/**
 * kill -9 of the bridge in an end-to-bridge encrypted portal (docs/matrix-encryption.md): the
 * Matrix user is a js-sdk client with Rust crypto, so what she sends is Megolm-encrypted to the
 * bot's device and what the ghost sends must decrypt on her side. After the kill the bridge
 * restarts from its mirrored crypto store, discards its outbound sessions (unclean stop), and
 * every message on both sides must arrive exactly once, in order, and decrypt.
 */
describe("fault: kill -9 of the bridge in an encrypted portal (SQLite)", function () {
  this.timeout(300_000);
  let world: FaultWorld;
  let me: EncryptingMatrixUser | undefined;
  let conversation: Conversation;

  before(async function () {
    // The demo's js-sdk client is not made by createSdkClient.
    unrefStraySdkTimers();
    world = await FaultWorld.start({ bridgeConfig: { matrix_encryption: { default: true } } });
    await world.startBridge();
    const user = world.hs.registerUser("alice", "password");
    me = await EncryptingMatrixUser.start(world.hs.url, user);
    conversation = await openConversation(world, "alice", "+491700000001", "+491701111111", me);
    assert.equal(me.isEncrypted(conversation.portal), true, "the portal is encrypted");
  });

  after(async function () {
    if (me !== undefined) stopSdkClient(me.client);
    await world?.stop();
  });

  it(`kill -9 during a burst of ${TOTAL} messages each way: every message once, in order, decrypted`, async function () {
    const burst = new Burst(conversation, TOTAL);
    await burst.send(0, TOTAL, async (n) => {
      if (n === KILL_AT) await world.killBridge();
      else if (n === KILL_AT + 20) await world.startBridge();
    });
    const tally = await burst.settle(world);
    assertExactlyOnce(tally, { world });
    const undecrypted = tally.matrixEvents.filter((e) => e.type === "m.room.encrypted");
    assert.deepEqual(undecrypted, [], "every event decrypts on the user's side");
    const stored = world.hs.inspectRoom(conversation.portal);
    assert.deepEqual(stored.find(burst.waToken(1)), [], "the homeserver stores no plaintext");
    assert.deepEqual(stored.find(burst.mxToken(1)), []);
  });
});
