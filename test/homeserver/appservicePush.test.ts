import assert from "node:assert/strict";
import { createTestHomeserver, failFirstPushes, type HomeserverProfile } from "./index.js";
import {
  AS_TOKEN,
  HS_TOKEN,
  eventsOf,
  registration,
  sendText,
  setUp,
  type Setup,
} from "./appserviceFixture.js";
import { api, enc, FakeAppservice, type ReceivedRequest } from "./testHelpers.js";

const PROFILES: { profile: HomeserverProfile; path: RegExp; tokenInQuery: boolean }[] = [
  { profile: "synapse-1.67", path: /^\/transactions\/[^/]+$/, tokenInQuery: true },
  {
    profile: "synapse-1.92",
    path: /^\/_matrix\/app\/v1\/transactions\/[^/]+$/,
    tokenInQuery: false,
  },
  { profile: "spec", path: /^\/_matrix\/app\/v1\/transactions\/[^/]+$/, tokenInQuery: false },
];

describe("test homeserver pushing to appservices", function () {
  let s: Setup | undefined;
  afterEach(async function () {
    await s?.hs.stop();
    await s?.as.stop();
    s = undefined;
  });

  for (const { profile, path, tokenInQuery } of PROFILES) {
    it(`${profile}: transactions arrive at the profile's path with hs_token in the profile's place`, async function () {
      s = await setUp(profile);
      const eventId = await sendText(s, "hello ghost", "t1");
      await s.hs.appserviceIdle("whatsapp");
      const txns = s.as.transactions();
      assert.ok(txns.length > 0);
      for (const txn of txns) {
        assert.match(txn.path, path);
        if (tokenInQuery) {
          assert.equal(txn.query.get("access_token"), HS_TOKEN);
          assert.equal(txn.authorization, undefined);
        } else {
          assert.equal(txn.authorization, `Bearer ${HS_TOKEN}`);
          assert.equal(txn.query.get("access_token"), null);
        }
      }
      const message = eventsOf(txns).find((e) => e["event_id"] === eventId);
      assert.ok(message, "the message reached the appservice");
      assert.equal(message["room_id"], s.roomId);
      assert.equal(message["sender"], "@bob:hs.test");
      assert.deepEqual(message["content"], { msgtype: "m.text", body: "hello ghost" });
    });
  }

  it("injected 500s are retried until delivered, without loss, duplication or reordering", async function () {
    s = await setUp("spec");
    const before = s.as.transactions().length;
    s.hs.failAppservicePushes(failFirstPushes(3, { status: 500 }));
    const sent: string[] = [];
    for (let i = 0; i < 5; i++) sent.push(await sendText(s, `m${i}`, `retry${i}`));
    await s.hs.appserviceIdle("whatsapp");
    const received = eventsOf(s.as.transactions().slice(before)).map((e) => e["event_id"]);
    assert.deepEqual(received, sent);
    const txnIds = s.as.transactions().map((t) => t.path);
    assert.equal(new Set(txnIds).size, txnIds.length, "no transaction was sent twice");
  });

  it("an appservice answering 500 gets the very same transaction again", async function () {
    s = await setUp("synapse-1.92");
    let failures = 2;
    s.as.respond = (req) =>
      /\/transactions\//.test(req.path) && failures-- > 0 ? { status: 500 } : { status: 200 };
    const eventId = await sendText(s, "again", "r1");
    await s.hs.appserviceIdle("whatsapp");
    const attempts = s.as
      .transactions()
      .filter((t) => eventsOf([t]).some((e) => e["event_id"] === eventId));
    assert.equal(attempts.length, 3);
    assert.equal(
      new Set(attempts.map((a) => a.path)).size,
      1,
      "same transaction id on every retry",
    );
    assert.deepEqual(attempts[1]?.body, attempts[0]?.body);
    assert.deepEqual(attempts[2]?.body, attempts[0]?.body);
  });

  it("a lost acknowledgement makes the appservice see the same transaction id twice", async function () {
    s = await setUp("spec");
    const before = s.as.transactions().length;
    s.hs.failAppservicePushes(failFirstPushes(1, { status: 500, deliver: true }));
    const eventId = await sendText(s, "dup", "d1");
    await s.hs.appserviceIdle("whatsapp");
    const txns = s.as.transactions().slice(before);
    assert.equal(txns.length, 2);
    assert.equal(txns[0]?.path, txns[1]?.path);
    assert.equal(eventsOf([txns[0] as ReceivedRequest])[0]?.["event_id"], eventId);
  });

  it("an injected timeout delays the push, which still arrives once", async function () {
    const as = new FakeAppservice();
    const url = await as.start();
    const hs = createTestHomeserver({
      serverName: "hs.test",
      appservices: [registration(url)],
      pushTimeoutMs: 50,
      retryInitialMs: 10,
    });
    s = { hs, as, roomId: "", bobToken: "", ghost: "" };
    await hs.start();
    hs.failAppservicePushes(failFirstPushes(2, { timeout: true }));
    const bob = hs.registerUser("bob");
    await api(hs.url, "POST", "/_matrix/client/v3/register", {
      token: AS_TOKEN,
      body: { type: "m.login.application_service", username: "_wa_1" },
    });
    const created = await api(hs.url, "POST", "/_matrix/client/v3/createRoom", {
      token: bob.accessToken,
      body: { invite: ["@_wa_1:hs.test"] },
    });
    await hs.appserviceIdle("whatsapp");
    const invites = eventsOf(as.transactions()).filter(
      (e) => e["type"] === "m.room.member" && e["state_key"] === "@_wa_1:hs.test",
    );
    assert.equal(invites.length, 1);
    assert.equal(invites[0]?.["room_id"], created.json["room_id"]);
  });

  it("ephemeral typing and receipts are pushed under the profile's key when the registration asks", async function () {
    s = await setUp("spec", { receive_ephemeral: true });
    const eventId = await sendText(s, "read me", "e1");
    await api(
      s.hs.url,
      "PUT",
      `/_matrix/client/v3/rooms/${enc(s.roomId)}/typing/${enc("@bob:hs.test")}`,
      {
        token: s.bobToken,
        body: { typing: true, timeout: 10000 },
      },
    );
    await api(
      s.hs.url,
      "POST",
      `/_matrix/client/v3/rooms/${enc(s.roomId)}/receipt/m.read/${enc(eventId)}`,
      { token: s.bobToken, body: {} },
    );
    await s.hs.appserviceIdle("whatsapp");
    const ephemeral = s.as
      .transactions()
      .flatMap((t) => (t.body["ephemeral"] as Record<string, unknown>[] | undefined) ?? []);
    const typing = ephemeral.find((e) => e["type"] === "m.typing");
    assert.deepEqual(typing, {
      type: "m.typing",
      room_id: s.roomId,
      content: { user_ids: ["@bob:hs.test"] },
    });
    const receipt = ephemeral.find((e) => e["type"] === "m.receipt");
    assert.equal(receipt?.["room_id"], s.roomId);
    const content = receipt?.["content"] as Record<string, Record<string, Record<string, unknown>>>;
    assert.ok(content[eventId]?.["m.read"]?.["@bob:hs.test"]);
  });

  it("Synapse profiles push ephemeral data only for the MSC2409 flag, under the unstable key", async function () {
    s = await setUp("synapse-1.92", { receive_ephemeral: true });
    await api(
      s.hs.url,
      "PUT",
      `/_matrix/client/v3/rooms/${enc(s.roomId)}/typing/${enc("@bob:hs.test")}`,
      {
        token: s.bobToken,
        body: { typing: true, timeout: 10000 },
      },
    );
    await sendText(s, "flush", "f1");
    await s.hs.appserviceIdle("whatsapp");
    assert.ok(
      s.as
        .transactions()
        .every(
          (t) =>
            t.body["ephemeral"] === undefined &&
            t.body["de.sorunome.msc2409.ephemeral"] === undefined,
        ),
    );
    await s.hs.stop();
    await s.as.stop();

    s = await setUp("synapse-1.92", { "de.sorunome.msc2409.push_ephemeral": true });
    await api(
      s.hs.url,
      "PUT",
      `/_matrix/client/v3/rooms/${enc(s.roomId)}/typing/${enc("@bob:hs.test")}`,
      {
        token: s.bobToken,
        body: { typing: true, timeout: 10000 },
      },
    );
    await s.hs.appserviceIdle("whatsapp");
    const unstable = s.as
      .transactions()
      .flatMap((t) => (t.body["de.sorunome.msc2409.ephemeral"] as unknown[] | undefined) ?? []);
    assert.equal(unstable.length, 1);
  });
});
