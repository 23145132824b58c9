import assert from "node:assert/strict";
import { FEATURE } from "../../../src/interop/codec/namespaces.js";
import { xml } from "../../../src/interop/codec/xml.js";
import { MediaUrlError } from "../../../src/interop/media/errors.js";
import { GatekeeperError, ProviderError } from "../../../src/interop/provider/errors.js";
import { phoneNumber, type BareJid, type MessageId } from "../../../src/util/ids.js";
import { createTestDatabase, type TestDatabase } from "../../helpers/db.js";
import { GOOD_CODE } from "./fake-account.js";
import { BRIDGE_DOMAIN, FakeGatekeeper } from "./fake-gatekeeper.js";
import { GatekeeperUsers, type GkUser } from "./peers.js";
import { eventually, ready, startBridge, uniqueBridgeJid, type Bridge } from "./world.js";

describe("provider engine: account, keys, media and negotiated features", function () {
  let fake: FakeGatekeeper;
  let users: GatekeeperUsers;
  let db: TestDatabase;
  const bridges: Bridge[] = [];
  let alice: BareJid;
  let bob: GkUser;

  async function readyBridge(options?: Parameters<typeof startBridge>[2]): Promise<Bridge> {
    const b = startBridge(fake.service, db.db.knex, options);
    bridges.push(b);
    await ready(b);
    await b.engine.createUser(alice);
    return b;
  }

  beforeEach(async function () {
    fake = await FakeGatekeeper.start();
    users = await GatekeeperUsers.create(fake);
    db = await createTestDatabase("sqlite");
    alice = uniqueBridgeJid();
    bob = await users.addUser([1]);
  });

  afterEach(async function () {
    await Promise.all(bridges.splice(0).map((b) => b.engine.halt()));
    await fake.stop();
    await users.dispose();
    await db.dispose();
  });

  it("a wrong verification code is refused with the attempts left, the right one binds the number", async function () {
    const b = await readyBridge();
    const phone = phoneNumber("+491709876543");
    const sent = await b.engine.account.requestCode(alice, phone, { lang: "de" });
    assert.equal(sent.length, 6);
    await assert.rejects(b.engine.account.confirmCode(alice, phone, "000000"), (err: unknown) => {
      assert.ok(err instanceof GatekeeperError);
      assert.equal(err.condition, "not-acceptable");
      assert.deepEqual(err.app, { name: "code-invalid", attemptsLeft: 4 });
      return true;
    });
    const bound = await b.engine.account.confirmCode(alice, phone, GOOD_CODE);
    assert.equal(bound.jid, alice);
    assert.equal(await b.engine.account.binding(alice), phone);
  });

  it("looks up numbers in batches of max-lookup-batch, and blocks, lists and unblocks contacts", async function () {
    fake.limits = { "max-lookup-batch": 1 };
    const b = await readyBridge();
    const bobPhone = `+${bob.jid.split("@")[0]}`;
    const results = await b.engine.account.lookup(alice, [bobPhone, "+491705550000"]);
    assert.deepEqual(results, [
      { phone: bobPhone, status: "reachable", jid: bob.jid },
      { phone: "+491705550000", status: "not-reachable" },
    ]);
    const lookups = fake.received.filter((r) => r.text.includes("urn:interop:discovery:0"));
    assert.equal(lookups.length, 2, "one number per request");
    await b.engine.account.block(alice, [bob.jid]);
    assert.deepEqual(await b.engine.account.blocklist(alice), [bob.jid]);
    await b.engine.account.unblock(alice);
    assert.deepEqual(await b.engine.account.blocklist(alice), []);
  });

  it("deleting a user unbinds it, publishes an empty device list and deletes its keys", async function () {
    const b = await readyBridge();
    assert.deepEqual(await b.engine.directory.publishedDevices(), [{ jid: alice, device: 1 }]);
    await b.engine.deleteUser(alice);
    assert.deepEqual(await b.engine.directory.publishedDevices(), [], "no rotation due any more");
    assert.deepEqual(fake.accounts.unbinds, [alice]);
    assert.equal(fake.directory.publishes.at(-1), `devices:${alice}:`);
    assert.deepEqual(await b.crypto.localDevices(alice), []);
  });

  it("rotates the signed and last-resort prekeys once they are due", async function () {
    const b = await readyBridge({ timing: { rotateAfterMs: 0 } });
    await new Promise((resolve) => setTimeout(resolve, 5));
    await b.engine.maintenance();
    assert.deepEqual(
      fake.directory.rotations.filter((r) => r.jid === alice),
      [{ jid: alice, device: 1 }],
    );
  });

  it("takes upload slots only at the announced media origins", async function () {
    const b = await readyBridge();
    const slot = await b.engine.media.requestSlot(alice, "image", 1040);
    assert.equal(slot.getUrl, "https://media.wa.example/b/abc");
    fake.accounts.slotOrigin = "https://elsewhere.example";
    await assert.rejects(b.engine.media.requestSlot(alice, "image", 1040), MediaUrlError);
  });

  it("answers a ping from the gatekeeper with an empty result", async function () {
    await readyBridge();
    fake.send(
      xml(
        "iq",
        { type: "get", id: "p-1", from: "wa.example", to: BRIDGE_DOMAIN },
        xml("ping", { xmlns: "urn:xmpp:ping" }),
      ),
    );
    await eventually(
      () =>
        fake.received.some((r) => r.stanza.attrs.id === "p-1" && r.stanza.attrs.type === "result"),
      "the ping result",
    );
  });

  it("refuses content, typing and read markers of features the hello did not negotiate", async function () {
    const b = await readyBridge();
    await assert.rejects(
      b.engine.sendMessage({
        from: alice,
        to: bob.jid,
        content: [{ kind: "reactions", id: "m1" as MessageId, author: bob.jid, reactions: ["👍"] }],
      }),
      (err: unknown) => err instanceof ProviderError && err.code === "unsupported",
    );
    assert.equal(await b.engine.sendTyping(alice, bob.jid, "composing"), false);
    await assert.rejects(
      b.engine.sendDisplayed(alice, bob.jid, { id: "m1" as MessageId, author: bob.jid }),
      (err: unknown) => err instanceof ProviderError && err.code === "unsupported",
    );
  });

  it("sends typing at most once per 10 s and read markers through the outbox when negotiated", async function () {
    fake.features = [FEATURE.chatstates, FEATURE.displayed];
    const b = await readyBridge({ features: [FEATURE.chatstates, FEATURE.displayed] });
    assert.equal(await b.engine.sendTyping(alice, bob.jid, "composing"), true);
    assert.equal(await b.engine.sendTyping(alice, bob.jid, "composing"), false, "throttled");
    const marker = await b.engine.sendDisplayed(alice, bob.jid, {
      id: "m1" as MessageId,
      author: bob.jid,
    });
    await eventually(
      async () =>
        ((await db.db.knex("outbox").where({ origin_id: marker }).first()) as { state: string })
          .state === "accepted",
      "the marker accepted",
    );
    const typing = fake.received.filter((r) => r.text.includes("composing"));
    assert.equal(typing.length, 1);
    assert.equal(typing[0]?.text.includes("origin-id"), false, "typing carries no origin-id");
  });
});
