import assert from "node:assert/strict";
import { createTestHomeserver, type RegisteredUser, type TestHomeserver } from "./index.js";
import { api, enc } from "./testHelpers.js";

type Json = Record<string, unknown>;

describe("test homeserver client-server rooms API", function () {
  let hs: TestHomeserver;
  let alice: RegisteredUser;
  let bob: RegisteredUser;
  const call = (method: string, path: string, token?: string, body?: unknown) =>
    api(hs.url, method, `/_matrix/client/v3${path}`, {
      ...(token === undefined ? {} : { token }),
      ...(body === undefined ? {} : { body }),
    });
  const createRoom = async (body: Json = {}): Promise<string> => {
    const created = await call("POST", "/createRoom", alice.accessToken, body);
    assert.equal(created.status, 200, JSON.stringify(created.json));
    return created.json["room_id"] as string;
  };

  beforeEach(async function () {
    hs = createTestHomeserver({ serverName: "hs.test" });
    await hs.start();
    alice = hs.registerUser("alice");
    bob = hs.registerUser("bob");
  });
  afterEach(async function () {
    await hs.stop();
  });

  it("requests without or with an unknown token answer 401 with the spec's error codes", async function () {
    const missing = await call("GET", "/account/whoami");
    assert.deepEqual([missing.status, missing.json["errcode"]], [401, "M_MISSING_TOKEN"]);
    const unknown = await call("GET", "/account/whoami", "syt_bogus");
    assert.deepEqual([unknown.status, unknown.json["errcode"]], [401, "M_UNKNOWN_TOKEN"]);
    assert.equal(typeof unknown.json["error"], "string");
  });

  it("acting in a room one has not joined answers 403 M_FORBIDDEN", async function () {
    const roomId = await createRoom({ preset: "private_chat" });
    const send = await call(
      "PUT",
      `/rooms/${enc(roomId)}/send/m.room.message/t1`,
      bob.accessToken,
      { body: "x", msgtype: "m.text" },
    );
    assert.deepEqual([send.status, send.json["errcode"]], [403, "M_FORBIDDEN"]);
    const join = await call("POST", `/join/${enc(roomId)}`, bob.accessToken, {});
    assert.deepEqual(
      [join.status, join.json["errcode"]],
      [403, "M_FORBIDDEN"],
      "invite-only room without invite",
    );
    const state = await call("GET", `/rooms/${enc(roomId)}/state`, bob.accessToken);
    assert.equal(state.status, 403);
  });

  it("an invite lets the invitee join; a ban keeps them out", async function () {
    const roomId = await createRoom({ preset: "private_chat" });
    assert.equal(
      (
        await call("POST", `/rooms/${enc(roomId)}/invite`, alice.accessToken, {
          user_id: bob.userId,
        })
      ).status,
      200,
    );
    assert.equal(
      (await call("POST", `/rooms/${enc(roomId)}/join`, bob.accessToken, {})).status,
      200,
    );
    const joined = await call("GET", `/rooms/${enc(roomId)}/joined_members`, alice.accessToken);
    assert.deepEqual(Object.keys(joined.json["joined"] as Json).sort(), [alice.userId, bob.userId]);
    assert.equal(
      (
        await call("POST", `/rooms/${enc(roomId)}/ban`, alice.accessToken, {
          user_id: bob.userId,
          reason: "spam",
        })
      ).status,
      200,
    );
    const rejoin = await call("POST", `/join/${enc(roomId)}`, bob.accessToken, {});
    assert.deepEqual([rejoin.status, rejoin.json["errcode"]], [403, "M_FORBIDDEN"]);
    const kickBack = await call("POST", `/rooms/${enc(roomId)}/kick`, bob.accessToken, {
      user_id: alice.userId,
    });
    assert.equal(kickBack.status, 403);
  });

  it("resending with the same transaction id returns the first event and stores one", async function () {
    const roomId = await createRoom();
    const path = `/rooms/${enc(roomId)}/send/m.room.message/same-txn`;
    const first = await call("PUT", path, alice.accessToken, { msgtype: "m.text", body: "once" });
    const second = await call("PUT", path, alice.accessToken, { msgtype: "m.text", body: "once" });
    assert.equal(second.json["event_id"], first.json["event_id"]);
    assert.match(first.json["event_id"] as string, /^\$[A-Za-z0-9_-]{43}$/);
    const otherDevice = hs.core.users.startSession(alice.userId);
    const third = await call("PUT", path, otherDevice.accessToken, {
      msgtype: "m.text",
      body: "once",
    });
    assert.notEqual(third.json["event_id"], first.json["event_id"]);
    const messages = await call(
      "GET",
      `/rooms/${enc(roomId)}/messages?dir=b&limit=50`,
      alice.accessToken,
    );
    const bodies = (messages.json["chunk"] as Json[]).filter((e) => e["type"] === "m.room.message");
    assert.equal(bodies.length, 2);
  });

  it("only the sending device sees unsigned.transaction_id in its sync", async function () {
    const roomId = await createRoom({ preset: "public_chat" });
    await call("POST", `/join/${enc(roomId)}`, bob.accessToken, {});
    const sent = await call(
      "PUT",
      `/rooms/${enc(roomId)}/send/m.room.message/my-txn`,
      alice.accessToken,
      { msgtype: "m.text", body: "hi" },
    );
    const find = async (token: string): Promise<Json | undefined> => {
      const sync = await call("GET", "/sync", token);
      const room = ((sync.json["rooms"] as Json)["join"] as Json)[roomId] as Json;
      return ((room["timeline"] as Json)["events"] as Json[]).find(
        (e) => e["event_id"] === sent.json["event_id"],
      );
    };
    const own = await find(alice.accessToken);
    assert.equal((own?.["unsigned"] as Json)["transaction_id"], "my-txn");
    assert.equal(own?.["room_id"], undefined, "sync omits room_id inside rooms");
    const other = await find(bob.accessToken);
    assert.equal((other?.["unsigned"] as Json)["transaction_id"], undefined);
  });

  it("a long-polling sync returns as soon as a new event arrives", async function () {
    const roomId = await createRoom();
    const initial = await call("GET", "/sync", alice.accessToken);
    const since = initial.json["next_batch"] as string;
    const polling = call("GET", `/sync?since=${since}&timeout=15000`, alice.accessToken);
    await new Promise((resolve) => setTimeout(resolve, 50));
    await call("PUT", `/rooms/${enc(roomId)}/send/m.room.message/lp`, alice.accessToken, {
      msgtype: "m.text",
      body: "wake up",
    });
    const sync = await polling;
    const room = ((sync.json["rooms"] as Json)["join"] as Json)[roomId] as Json;
    const events = (room["timeline"] as Json)["events"] as Json[];
    assert.deepEqual(
      events.map((e) => (e["content"] as Json)["body"]),
      ["wake up"],
    );
    assert.notEqual(sync.json["next_batch"], since);
  });

  it("a redaction strips content per the redaction algorithm and records redacted_because", async function () {
    const roomId = await createRoom({ room_version: "10" });
    const sent = await call(
      "PUT",
      `/rooms/${enc(roomId)}/send/m.room.message/r1`,
      alice.accessToken,
      { msgtype: "m.text", body: "secret" },
    );
    const eventId = sent.json["event_id"] as string;
    const redaction = await call(
      "PUT",
      `/rooms/${enc(roomId)}/redact/${enc(eventId)}/rr1`,
      alice.accessToken,
      { reason: "oops" },
    );
    assert.equal(redaction.status, 200);
    const event = await call(
      "GET",
      `/rooms/${enc(roomId)}/event/${enc(eventId)}`,
      alice.accessToken,
    );
    assert.deepEqual(event.json["content"], {});
    const because = (event.json["unsigned"] as Json)["redacted_because"] as Json;
    assert.equal(because["event_id"], redaction.json["event_id"]);
    assert.equal(because["redacts"], eventId);
    assert.deepEqual(because["content"], { reason: "oops" });
    const bobCannot = await call(
      "PUT",
      `/rooms/${enc(roomId)}/redact/${enc(eventId)}/rr2`,
      bob.accessToken,
      {},
    );
    assert.equal(bobCannot.status, 403);
  });

  it("createRoom applies preset, initial_state, power level override, space type, alias and direct invites", async function () {
    const roomId = await createRoom({
      preset: "trusted_private_chat",
      name: "Space",
      topic: "about",
      room_alias_name: "space",
      is_direct: true,
      invite: [bob.userId],
      creation_content: { type: "m.space" },
      initial_state: [
        { type: "m.room.avatar", state_key: "", content: { url: "mxc://hs.test/a" } },
      ],
      power_level_content_override: { events_default: 50 },
    });
    const state = async (type: string, key = ""): Promise<Json> =>
      (await call("GET", `/rooms/${enc(roomId)}/state/${type}/${enc(key)}`, alice.accessToken))
        .json;
    assert.equal((await state("m.room.create"))["type"], "m.space");
    assert.equal((await state("m.room.join_rules"))["join_rule"], "invite");
    assert.equal((await state("m.room.name"))["name"], "Space");
    assert.equal((await state("m.room.topic"))["topic"], "about");
    assert.equal((await state("m.room.avatar"))["url"], "mxc://hs.test/a");
    const pl = await state("m.room.power_levels");
    assert.equal(pl["events_default"], 50);
    assert.equal(
      (pl["users"] as Json)[bob.userId],
      100,
      "trusted_private_chat gives invitees creator power",
    );
    const invite = await state("m.room.member", bob.userId);
    assert.deepEqual([invite["membership"], invite["is_direct"]], ["invite", true]);
    const alias = await call("GET", `/directory/room/${enc("#space:hs.test")}`);
    assert.equal(alias.json["room_id"], roomId);
    const missing = await call(
      "GET",
      `/rooms/${enc(roomId)}/state/m.room.encryption/`,
      alice.accessToken,
    );
    assert.deepEqual([missing.status, missing.json["errcode"]], [404, "M_NOT_FOUND"]);
  });

  it("m.direct account data round-trips and appears in sync", async function () {
    const content = { [bob.userId]: ["!room:hs.test"] };
    const put = await call(
      "PUT",
      `/user/${enc(alice.userId)}/account_data/m.direct`,
      alice.accessToken,
      content,
    );
    assert.equal(put.status, 200);
    const got = await call(
      "GET",
      `/user/${enc(alice.userId)}/account_data/m.direct`,
      alice.accessToken,
    );
    assert.deepEqual(got.json, content);
    const others = await call(
      "GET",
      `/user/${enc(alice.userId)}/account_data/m.direct`,
      bob.accessToken,
    );
    assert.equal(others.status, 403);
    const sync = await call("GET", "/sync", alice.accessToken);
    assert.deepEqual((sync.json["account_data"] as Json)["events"], [
      { type: "m.direct", content },
    ]);
  });

  it("read markers set the fully-read room account data and a public receipt, both in sync", async function () {
    const roomId = await createRoom();
    const sent = await call(
      "PUT",
      `/rooms/${enc(roomId)}/send/m.room.message/rm`,
      alice.accessToken,
      {
        msgtype: "m.text",
        body: "read me",
      },
    );
    const eventId = sent.json["event_id"] as string;
    const markers = await call("POST", `/rooms/${enc(roomId)}/read_markers`, alice.accessToken, {
      "m.fully_read": eventId,
      "m.read": eventId,
    });
    assert.equal(markers.status, 200);
    const sync = await call("GET", "/sync", alice.accessToken);
    const room = ((sync.json["rooms"] as Json)["join"] as Json)[roomId] as Json;
    assert.deepEqual((room["account_data"] as Json)["events"], [
      { type: "m.fully_read", content: { event_id: eventId } },
    ]);
    const receipt = ((room["ephemeral"] as Json)["events"] as Json[]).find(
      (e) => e["type"] === "m.receipt",
    );
    const readers = ((receipt?.["content"] as Json)[eventId] as Json)["m.read"] as Json;
    assert.ok(readers[alice.userId]);
    const unknownEvent = await call(
      "POST",
      `/rooms/${enc(roomId)}/receipt/m.read/${enc("$nope")}`,
      alice.accessToken,
      {},
    );
    assert.equal(unknownEvent.status, 404);
  });

  it("profile changes update the member event in joined rooms", async function () {
    const roomId = await createRoom();
    await call("PUT", `/profile/${enc(alice.userId)}/displayname`, alice.accessToken, {
      displayname: "Alice A.",
    });
    const profile = await call("GET", `/profile/${enc(alice.userId)}`);
    assert.equal(profile.json["displayname"], "Alice A.");
    const member = await call(
      "GET",
      `/rooms/${enc(roomId)}/state/m.room.member/${enc(alice.userId)}`,
      alice.accessToken,
    );
    assert.deepEqual(member.json, { membership: "join", displayname: "Alice A." });
    const unknown = await call("GET", `/profile/${enc("@nobody:hs.test")}`);
    assert.equal(unknown.status, 404);
  });

  it("r0 paths are served on Synapse profiles only; unknown methods answer 405", async function () {
    const r0OnSpec = await api(hs.url, "GET", "/_matrix/client/r0/account/whoami", {
      token: alice.accessToken,
    });
    assert.deepEqual([r0OnSpec.status, r0OnSpec.json["errcode"]], [404, "M_UNRECOGNIZED"]);
    const wrongMethod = await api(hs.url, "DELETE", "/_matrix/client/v3/account/whoami", {
      token: alice.accessToken,
    });
    assert.deepEqual([wrongMethod.status, wrongMethod.json["errcode"]], [405, "M_UNRECOGNIZED"]);
    const synapse = createTestHomeserver({ serverName: "hs.test", profile: "synapse-1.92" });
    await synapse.start();
    try {
      const carol = synapse.registerUser("carol");
      const r0 = await api(synapse.url, "GET", "/_matrix/client/r0/account/whoami", {
        token: carol.accessToken,
      });
      assert.equal(r0.json["user_id"], "@carol:hs.test");
    } finally {
      await synapse.stop();
    }
  });
});
