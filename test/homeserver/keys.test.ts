import assert from "node:assert/strict";
import { createTestHomeserver, type RegisteredUser, type TestHomeserver } from "./index.js";
import { TestDevice, TestSigningKey, crossSigningKey } from "./keysFixture.js";
import { api, enc } from "./testHelpers.js";

const V3 = "/_matrix/client/v3";

describe("test homeserver end-to-end encryption endpoints", function () {
  let hs: TestHomeserver;
  let alice: RegisteredUser;
  let bob: RegisteredUser;

  beforeEach(async function () {
    hs = createTestHomeserver({ serverName: "hs.test", profile: "spec" });
    await hs.start();
    alice = hs.registerUser("alice", "alice-pw");
    bob = hs.registerUser("bob", "bob-pw");
  });
  afterEach(() => hs.stop());

  const call = (who: RegisteredUser, method: string, path: string, body?: unknown) =>
    api(hs.url, method, `${V3}${path}`, { token: who.accessToken, body });

  async function sync(who: RegisteredUser, since?: string) {
    const answer = await call(who, "GET", `/sync?timeout=0${since ? `&since=${since}` : ""}`);
    assert.equal(answer.status, 200, JSON.stringify(answer.json));
    return answer.json as {
      next_batch: string;
      to_device: { events: { type: string; sender: string; content: Record<string, unknown> }[] };
      device_lists: { changed: string[]; left: string[] };
      device_one_time_keys_count: Record<string, number>;
      device_unused_fallback_key_types: string[];
    };
  }

  async function sharedRoom(): Promise<string> {
    const created = await call(alice, "POST", "/createRoom", { preset: "public_chat" });
    const roomId = created.json["room_id"] as string;
    assert.equal((await call(bob, "POST", `/join/${enc(roomId)}`, {})).status, 200);
    return roomId;
  }

  it("uploaded device keys are returned by /keys/query; a bad self-signature is refused", async function () {
    const device = new TestDevice(alice.userId, alice.deviceId);
    const keys = device.deviceKeys();
    const forged = { ...keys, keys: { ...(keys["keys"] as object), extra: "x" } };
    const refused = await call(alice, "POST", "/keys/upload", { device_keys: forged });
    assert.equal(refused.status, 400);
    const otherDevice = { ...keys, device_id: "NOTMINE" };
    assert.equal(
      (await call(alice, "POST", "/keys/upload", { device_keys: otherDevice })).status,
      400,
    );

    const uploaded = await call(alice, "POST", "/keys/upload", { device_keys: keys });
    assert.equal(uploaded.status, 200, JSON.stringify(uploaded.json));
    assert.deepEqual(uploaded.json["one_time_key_counts"], { signed_curve25519: 0 });
    const queried = await call(bob, "POST", "/keys/query", { device_keys: { [alice.userId]: [] } });
    const got = (queried.json["device_keys"] as Record<string, Record<string, unknown>>)[
      alice.userId
    ];
    assert.deepEqual(Object.keys(got ?? {}), [alice.deviceId]);
    const { unsigned: _u, ...withoutUnsigned } = got?.[alice.deviceId] as Record<string, unknown>;
    assert.deepEqual(withoutUnsigned, keys);
  });

  it("claiming consumes one-time keys one by one, then hands out the fallback key and reports it used", async function () {
    const device = new TestDevice(alice.userId, alice.deviceId);
    await call(alice, "POST", "/keys/upload", {
      device_keys: device.deviceKeys(),
      one_time_keys: device.curveKeys(2),
      fallback_keys: device.curveKeys(1, true),
    });
    let s = await sync(alice);
    assert.deepEqual(s.device_one_time_keys_count, { signed_curve25519: 2 });
    assert.deepEqual(s.device_unused_fallback_key_types, ["signed_curve25519"]);

    const claim = async () => {
      const answer = await call(bob, "POST", "/keys/claim", {
        one_time_keys: { [alice.userId]: { [alice.deviceId]: "signed_curve25519" } },
      });
      assert.equal(answer.status, 200);
      const byUser = answer.json["one_time_keys"] as Record<
        string,
        Record<string, Record<string, Record<string, unknown>>>
      >;
      return byUser[alice.userId]?.[alice.deviceId] ?? {};
    };
    const first = await claim();
    const second = await claim();
    assert.notDeepEqual(Object.keys(first), Object.keys(second), "each claim takes another key");
    assert.equal(Object.values(first)[0]?.["fallback"], undefined);
    s = await sync(alice, s.next_batch);
    assert.deepEqual(s.device_one_time_keys_count, { signed_curve25519: 0 });
    assert.deepEqual(s.device_unused_fallback_key_types, ["signed_curve25519"]);

    const third = await claim();
    const fourth = await claim();
    assert.equal(Object.values(third)[0]?.["fallback"], true, "the fallback key once keys run out");
    assert.deepEqual(fourth, third, "the fallback key is not consumed");
    s = await sync(alice, s.next_batch);
    assert.deepEqual(s.device_unused_fallback_key_types, [], "the fallback key is now used");
  });

  it("a re-uploaded one-time key id with different contents is refused", async function () {
    const device = new TestDevice(alice.userId, alice.deviceId);
    const keys = device.curveKeys(1);
    assert.equal((await call(alice, "POST", "/keys/upload", { one_time_keys: keys })).status, 200);
    const id = Object.keys(keys)[0] ?? "";
    const changed = { [id]: { key: "b3RoZXI", signatures: {} } };
    const refused = await call(alice, "POST", "/keys/upload", { one_time_keys: changed });
    assert.equal(refused.status, 400);
    assert.equal((await call(alice, "POST", "/keys/upload", { one_time_keys: keys })).status, 200);
  });

  it("a to-device message resent with the same transaction id is delivered once, until acknowledged", async function () {
    const bob2 = await login("bob", "bob-pw");
    const send = (txnId: string, target: string) =>
      call(alice, "PUT", `/sendToDevice/m.test/${txnId}`, {
        messages: { [bob.userId]: { [target]: { n: txnId } } },
      });
    assert.equal((await send("t1", bob.deviceId)).status, 200);
    assert.equal((await send("t1", bob.deviceId)).status, 200);
    const first = await sync(bob);
    assert.deepEqual(first.to_device.events, [
      { type: "m.test", sender: alice.userId, content: { n: "t1" } },
    ]);
    const again = await sync(bob);
    assert.equal(again.to_device.events.length, 1, "redelivered while not acknowledged");
    const next = await sync(bob, first.next_batch);
    assert.deepEqual(next.to_device.events, [], "acknowledged by the next since token");

    await send("t2", "*");
    assert.equal((await sync(bob, first.next_batch)).to_device.events.length, 1);
    assert.equal(
      (await sync(bob2)).to_device.events.length,
      1,
      "the wildcard reaches every device",
    );
  });

  async function login(user: string, password: string, deviceId?: string): Promise<RegisteredUser> {
    const answer = await api(hs.url, "POST", `${V3}/login`, {
      body: {
        type: "m.login.password",
        identifier: { type: "m.id.user", user },
        password,
        ...(deviceId === undefined ? {} : { device_id: deviceId }),
      },
    });
    assert.equal(answer.status, 200, JSON.stringify(answer.json));
    return {
      userId: answer.json["user_id"] as string,
      accessToken: answer.json["access_token"] as string,
      deviceId: answer.json["device_id"] as string,
    };
  }

  it("a new device and a deleted one are device-list changes for room-mates; deletion needs the password", async function () {
    await sharedRoom();
    const before = await sync(alice);
    const phone = await login("bob", "bob-pw", "PHONE");
    assert.equal(phone.deviceId, "PHONE");
    assert.notEqual(phone.accessToken, bob.accessToken);
    const whoami = await call(phone, "GET", "/account/whoami");
    assert.equal(whoami.json["device_id"], "PHONE");
    const phoneKeys = new TestDevice(bob.userId, "PHONE").deviceKeys();
    assert.equal(
      (await call(phone, "POST", "/keys/upload", { device_keys: phoneKeys })).status,
      200,
    );
    const afterLogin = await sync(alice, before.next_batch);
    assert.deepEqual(afterLogin.device_lists.changed, [bob.userId]);
    const listed = await call(bob, "GET", "/devices");
    const ids = (listed.json["devices"] as { device_id: string }[]).map((d) => d.device_id).sort();
    assert.deepEqual(ids, [bob.deviceId, "PHONE"].sort());

    const challenge = await call(bob, "DELETE", "/devices/PHONE", {});
    assert.equal(challenge.status, 401);
    assert.deepEqual(challenge.json["flows"], [{ stages: ["m.login.password"] }]);
    const wrong = await call(bob, "DELETE", "/devices/PHONE", {
      auth: {
        type: "m.login.password",
        identifier: { type: "m.id.user", user: "bob" },
        password: "x",
      },
    });
    assert.equal(wrong.status, 401);
    const deleted = await call(bob, "DELETE", "/devices/PHONE", {
      auth: {
        type: "m.login.password",
        identifier: { type: "m.id.user", user: "bob" },
        password: "bob-pw",
      },
    });
    assert.equal(deleted.status, 200, JSON.stringify(deleted.json));
    assert.equal((await call(phone, "GET", "/account/whoami")).status, 401, "its token is gone");
    const queried = await call(alice, "POST", "/keys/query", { device_keys: { [bob.userId]: [] } });
    assert.deepEqual(
      (queried.json["device_keys"] as Record<string, unknown>)[bob.userId],
      {},
      "the deleted device's keys are gone",
    );
    const afterDelete = await sync(alice, afterLogin.next_batch);
    assert.deepEqual(afterDelete.device_lists.changed, [bob.userId]);
    const changes = await call(
      alice,
      "GET",
      `/keys/changes?from=${before.next_batch}&to=${afterDelete.next_batch}`,
    );
    assert.deepEqual(changes.json, { changed: [bob.userId], left: [] });
  });

  it("a user leaving the last shared room is reported in device_lists.left", async function () {
    const roomId = await sharedRoom();
    const before = await sync(alice);
    await call(bob, "POST", `/rooms/${enc(roomId)}/leave`, {});
    const after = await sync(alice, before.next_batch);
    assert.deepEqual(after.device_lists, { changed: [], left: [bob.userId] });
  });

  it("cross-signing keys: the first upload needs no password, replacing them does", async function () {
    const master = new TestSigningKey();
    const selfSigning = new TestSigningKey();
    const upload = {
      master_key: crossSigningKey(alice.userId, "master", master),
      self_signing_key: crossSigningKey(alice.userId, "self_signing", selfSigning, master),
    };
    const badSub = { self_signing_key: crossSigningKey(alice.userId, "self_signing", selfSigning) };
    assert.equal(
      (await call(alice, "POST", "/keys/device_signing/upload", { ...upload, ...badSub })).status,
      400,
    );
    assert.equal((await call(alice, "POST", "/keys/device_signing/upload", upload)).status, 200);
    assert.equal(
      (await call(alice, "POST", "/keys/device_signing/upload", upload)).status,
      200,
      "same keys again",
    );
    const replacement = {
      master_key: crossSigningKey(alice.userId, "master", new TestSigningKey()),
    };
    const challenged = await call(alice, "POST", "/keys/device_signing/upload", replacement);
    assert.equal(challenged.status, 401);
    assert.deepEqual(challenged.json["flows"], [{ stages: ["m.login.password"] }]);
    const replaced = await call(alice, "POST", "/keys/device_signing/upload", {
      ...replacement,
      auth: {
        type: "m.login.password",
        user: "alice",
        password: "alice-pw",
        session: challenged.json["session"],
      },
    });
    assert.equal(replaced.status, 200, JSON.stringify(replaced.json));
    const queried = await call(bob, "POST", "/keys/query", { device_keys: { [alice.userId]: [] } });
    assert.deepEqual(
      (queried.json["master_keys"] as Record<string, unknown>)[alice.userId],
      replacement.master_key,
    );
  });

  it("a device signed by the self-signing key carries that signature in /keys/query", async function () {
    const master = new TestSigningKey();
    const selfSigning = new TestSigningKey();
    await call(alice, "POST", "/keys/device_signing/upload", {
      master_key: crossSigningKey(alice.userId, "master", master),
      self_signing_key: crossSigningKey(alice.userId, "self_signing", selfSigning, master),
    });
    const device = new TestDevice(alice.userId, alice.deviceId);
    const keys = device.deviceKeys();
    await call(alice, "POST", "/keys/upload", { device_keys: keys });
    const signed = selfSigning.sign(keys, alice.userId, `ed25519:${selfSigning.publicKey}`);
    const forged = new TestSigningKey().sign(
      keys,
      alice.userId,
      `ed25519:${selfSigning.publicKey}`,
    );
    const bad = await call(alice, "POST", "/keys/signatures/upload", {
      [alice.userId]: { [alice.deviceId]: forged },
    });
    assert.ok(
      (bad.json["failures"] as Record<string, unknown>)[alice.userId],
      "a forged signature fails",
    );
    const good = await call(alice, "POST", "/keys/signatures/upload", {
      [alice.userId]: { [alice.deviceId]: signed },
    });
    assert.deepEqual(good.json, { failures: {} });
    const queried = await call(bob, "POST", "/keys/query", { device_keys: { [alice.userId]: [] } });
    const got = (
      queried.json["device_keys"] as Record<
        string,
        Record<string, { signatures: Record<string, Record<string, string>> }>
      >
    )[alice.userId]?.[alice.deviceId];
    assert.equal(
      got?.signatures[alice.userId]?.[`ed25519:${selfSigning.publicKey}`],
      (signed["signatures"] as Record<string, Record<string, string>>)[alice.userId]?.[
        `ed25519:${selfSigning.publicKey}`
      ],
    );
  });

  it("an event above 65,536 bytes is refused with 413 M_TOO_LARGE; one just below is accepted", async function () {
    const created = await call(alice, "POST", "/createRoom", {});
    const roomId = created.json["room_id"] as string;
    const big = await call(alice, "PUT", `/rooms/${enc(roomId)}/send/m.room.message/big`, {
      msgtype: "m.text",
      body: "x".repeat(65_536),
    });
    assert.equal(big.status, 413);
    assert.equal(big.json["errcode"], "M_TOO_LARGE");
    const bigState = await call(alice, "PUT", `/rooms/${enc(roomId)}/state/m.room.topic`, {
      topic: "y".repeat(70_000),
    });
    assert.equal(bigState.status, 413);
    const longType = await call(
      alice,
      "PUT",
      `/rooms/${enc(roomId)}/send/${"t".repeat(256)}/lt`,
      {},
    );
    assert.equal(longType.status, 413, "an event type above 255 bytes is refused too");
    const fits = await call(alice, "PUT", `/rooms/${enc(roomId)}/send/m.room.message/fits`, {
      msgtype: "m.text",
      body: "x".repeat(64_000),
    });
    assert.equal(fits.status, 200);
    assert.deepEqual(
      hs.inspectRoom(roomId).find("x".repeat(65_000)),
      [],
      "nothing of the refused event was stored",
    );
  });

  it("/room_keys/version answers 404 M_NOT_FOUND: there is no backup", async function () {
    const answer = await call(alice, "GET", "/room_keys/version");
    assert.equal(answer.status, 404);
    assert.equal(answer.json["errcode"], "M_NOT_FOUND");
  });
});
