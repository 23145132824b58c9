import assert from "node:assert/strict";
import { AS_TOKEN, setUp, type Setup } from "./appserviceFixture.js";
import type { AppserviceRegistration, TestHomeserverOptions } from "./index.js";
import { TestDevice } from "./keysFixture.js";
import { api, enc } from "./testHelpers.js";

const V3 = "/_matrix/client/v3";
const ASKS: Partial<AppserviceRegistration> = {
  "org.matrix.msc3202": true,
  "de.sorunome.msc2409.push_ephemeral": true,
};
const EXTENSION_KEYS = [
  "de.sorunome.msc2409.to_device",
  "org.matrix.msc3202.device_lists",
  "org.matrix.msc3202.device_one_time_keys_count",
  "org.matrix.msc3202.device_one_time_key_counts",
  "org.matrix.msc3202.device_unused_fallback_key_types",
];

describe("test homeserver pushing encryption data to appservices (MSC2409, MSC3202)", function () {
  let s: Setup | undefined;
  afterEach(async function () {
    await s?.hs.stop();
    await s?.as.stop();
    s = undefined;
  });

  /** Sets up the bridged room and gives the ghost a device with keys, as a bridge does. */
  async function ghostWithDevice(
    extra: Partial<AppserviceRegistration>,
    options: Partial<TestHomeserverOptions> = {},
  ): Promise<Setup & { device: TestDevice; asGhost: string }> {
    const setup = await setUp("synapse-1.92", extra, options);
    s = setup;
    const login = await api(setup.hs.url, "POST", `${V3}/login`, {
      token: AS_TOKEN,
      body: {
        type: "m.login.application_service",
        identifier: { type: "m.id.user", user: setup.ghost },
        device_id: "GHOSTDEV",
      },
    });
    assert.equal(login.status, 200, JSON.stringify(login.json));
    assert.equal(login.json["device_id"], "GHOSTDEV");
    const asGhost = `user_id=${enc(setup.ghost)}&org.matrix.msc3202.device_id=GHOSTDEV`;
    const device = new TestDevice(setup.ghost, "GHOSTDEV");
    const uploaded = await api(setup.hs.url, "POST", `${V3}/keys/upload?${asGhost}`, {
      token: AS_TOKEN,
      body: {
        device_keys: device.deviceKeys(),
        one_time_keys: device.curveKeys(3),
        fallback_keys: device.curveKeys(1, true),
      },
    });
    assert.equal(uploaded.status, 200, JSON.stringify(uploaded.json));
    await setup.hs.appserviceIdle("whatsapp");
    return { ...setup, device, asGhost };
  }

  async function toGhost(setup: Setup, txnId: string): Promise<void> {
    const sent = await api(setup.hs.url, "PUT", `${V3}/sendToDevice/m.room.encrypted/${txnId}`, {
      token: setup.bobToken,
      body: { messages: { [setup.ghost]: { GHOSTDEV: { ciphertext: txnId } } } },
    });
    assert.equal(sent.status, 200);
    await setup.hs.appserviceIdle("whatsapp");
  }

  const bodies = (setup: Setup) => setup.hs.deliveredTransactions("whatsapp").map((t) => t.body);

  it("a registration asking for them gets to-device events, device lists and key counts in transactions", async function () {
    const setup = await ghostWithDevice(ASKS);
    const changed = bodies(setup).flatMap(
      (b) =>
        (b["org.matrix.msc3202.device_lists"] as { changed: string[] } | undefined)?.changed ?? [],
    );
    assert.ok(changed.includes(setup.ghost), "the ghost's new device is a device-list change");

    await toGhost(setup, "c1");
    const withToDevice = bodies(setup).find(
      (b) => b["de.sorunome.msc2409.to_device"] !== undefined,
    );
    assert.ok(withToDevice, "a transaction carried the to-device event");
    assert.deepEqual(withToDevice["de.sorunome.msc2409.to_device"], [
      {
        type: "m.room.encrypted",
        sender: "@bob:hs.test",
        content: { ciphertext: "c1" },
        to_user_id: setup.ghost,
        to_device_id: "GHOSTDEV",
      },
    ]);
    const counts = { [setup.ghost]: { GHOSTDEV: { signed_curve25519: 3 } } };
    assert.deepEqual(
      (withToDevice["org.matrix.msc3202.device_one_time_keys_count"] as Record<string, unknown>)[
        setup.ghost
      ],
      counts[setup.ghost],
    );
    assert.deepEqual(
      withToDevice["org.matrix.msc3202.device_one_time_key_counts"],
      withToDevice["org.matrix.msc3202.device_one_time_keys_count"],
      "both spellings carry the same counts",
    );
    assert.deepEqual(
      (
        withToDevice["org.matrix.msc3202.device_unused_fallback_key_types"] as Record<
          string,
          unknown
        >
      )[setup.ghost],
      { GHOSTDEV: ["signed_curve25519"] },
    );

    // A room-mate's new keys are a device-list change the appservice hears of.
    const bobDevice = new TestDevice("@bob:hs.test", "BOBDEV");
    const bobLogin = await api(setup.hs.url, "POST", `${V3}/login`, {
      body: {
        type: "m.login.password",
        identifier: { type: "m.id.user", user: "bob" },
        password: "password",
        device_id: "BOBDEV",
      },
    });
    await api(setup.hs.url, "POST", `${V3}/keys/upload`, {
      token: bobLogin.json["access_token"] as string,
      body: { device_keys: bobDevice.deviceKeys() },
    });
    await setup.hs.appserviceIdle("whatsapp");
    const last = bodies(setup).at(-1);
    assert.deepEqual(last?.["org.matrix.msc3202.device_lists"], {
      changed: ["@bob:hs.test"],
      left: [],
    });
  });

  it("a failed transaction is retried with the same to-device events and key counts", async function () {
    const setup = await ghostWithDevice(ASKS);
    const attempts: string[] = [];
    let failures = 2;
    setup.hs.failAppservicePushes((attempt) => {
      attempts.push(JSON.stringify(attempt.body));
      return failures-- > 0 ? { status: 500 } : undefined;
    });
    await toGhost(setup, "c1");
    // Claims change the count meanwhile; the retried body must not change with it.
    await api(setup.hs.url, "POST", `${V3}/keys/claim`, {
      token: setup.bobToken,
      body: { one_time_keys: { [setup.ghost]: { GHOSTDEV: "signed_curve25519" } } },
    });
    await setup.hs.appserviceIdle("whatsapp");
    assert.equal(attempts.length, 3);
    assert.equal(new Set(attempts).size, 1, "every attempt carried the same body");
    const delivered = bodies(setup).at(-1);
    assert.equal(JSON.stringify(delivered), attempts[0]);
    assert.equal(
      (delivered?.["de.sorunome.msc2409.to_device"] as unknown[] | undefined)?.length,
      1,
      "the to-device event was delivered once",
    );
  });

  it("a registration not asking for them gets none of the extension keys", async function () {
    const setup = await ghostWithDevice({});
    await toGhost(setup, "c1");
    await sendRoomMessage(setup);
    for (const body of bodies(setup)) {
      for (const key of EXTENSION_KEYS) assert.equal(body[key], undefined, `${key} is absent`);
    }
  });

  it("without the pushes the ghost's device gets its to-device events and key counts by masqueraded /sync", async function () {
    const setup = await ghostWithDevice(ASKS, { appserviceCryptoPushes: false });
    await toGhost(setup, "c1");
    await sendRoomMessage(setup);
    for (const body of bodies(setup)) {
      for (const key of EXTENSION_KEYS) assert.equal(body[key], undefined, `${key} is absent`);
    }
    const whoami = await api(setup.hs.url, "GET", `${V3}/account/whoami?${setup.asGhost}`, {
      token: AS_TOKEN,
    });
    assert.deepEqual(whoami.json, { user_id: setup.ghost, device_id: "GHOSTDEV", is_guest: false });
    const synced = await api(setup.hs.url, "GET", `${V3}/sync?timeout=0&${setup.asGhost}`, {
      token: AS_TOKEN,
    });
    assert.equal(synced.status, 200);
    assert.deepEqual((synced.json["to_device"] as { events: unknown[] }).events, [
      { type: "m.room.encrypted", sender: "@bob:hs.test", content: { ciphertext: "c1" } },
    ]);
    assert.deepEqual(synced.json["device_one_time_keys_count"], { signed_curve25519: 3 });
    assert.deepEqual(synced.json["device_unused_fallback_key_types"], ["signed_curve25519"]);
  });

  it("with MSC4190 the appservice creates a ghost's device by PUT /devices and deletes it without a password", async function () {
    const setup = await setUp("synapse-1.92", { ...ASKS, "io.element.msc4190": true });
    s = setup;
    const asGhost = `?user_id=${enc(setup.ghost)}`;
    const created = await api(setup.hs.url, "PUT", `${V3}/devices/NEWDEV${asGhost}`, {
      token: AS_TOKEN,
      body: { display_name: "WhatsApp" },
    });
    assert.equal(created.status, 201, JSON.stringify(created.json));
    const whoami = await api(
      setup.hs.url,
      "GET",
      `${V3}/account/whoami${asGhost}&org.matrix.msc3202.device_id=NEWDEV`,
      { token: AS_TOKEN },
    );
    assert.equal(whoami.json["device_id"], "NEWDEV");
    const deleted = await api(setup.hs.url, "DELETE", `${V3}/devices/NEWDEV${asGhost}`, {
      token: AS_TOKEN,
      body: {},
    });
    assert.equal(deleted.status, 200, JSON.stringify(deleted.json));
    const gone = await api(setup.hs.url, "GET", `${V3}/devices/NEWDEV${asGhost}`, {
      token: AS_TOKEN,
    });
    assert.equal(gone.status, 404);
  });

  it("without MSC4190 naming an unknown device answers 404 and deleting one needs the password", async function () {
    const setup = await ghostWithDevice(ASKS);
    const asGhost = `?user_id=${enc(setup.ghost)}`;
    const created = await api(setup.hs.url, "PUT", `${V3}/devices/NEWDEV${asGhost}`, {
      token: AS_TOKEN,
      body: {},
    });
    assert.equal(created.status, 404);
    const deleted = await api(setup.hs.url, "DELETE", `${V3}/devices/GHOSTDEV${asGhost}`, {
      token: AS_TOKEN,
      body: {},
    });
    assert.equal(deleted.status, 401);
  });

  it("masquerading as a device the user does not have is refused; logging in a user outside the namespace too", async function () {
    const setup = await ghostWithDevice(ASKS);
    const unknown = await api(
      setup.hs.url,
      "GET",
      `${V3}/account/whoami?user_id=${enc(setup.ghost)}&org.matrix.msc3202.device_id=NOPE`,
      { token: AS_TOKEN },
    );
    assert.equal(unknown.status, 400);
    assert.equal(unknown.json["errcode"], "M_FORBIDDEN");
    const outside = await api(setup.hs.url, "POST", `${V3}/login`, {
      token: AS_TOKEN,
      body: {
        type: "m.login.application_service",
        identifier: { type: "m.id.user", user: "@bob:hs.test" },
      },
    });
    assert.equal(outside.status, 400);
    assert.equal(outside.json["errcode"], "M_EXCLUSIVE");
  });
});

async function sendRoomMessage(setup: Setup): Promise<void> {
  const sent = await api(
    setup.hs.url,
    "PUT",
    `${V3}/rooms/${enc(setup.roomId)}/send/m.room.message/m1`,
    {
      token: setup.bobToken,
      body: { msgtype: "m.text", body: "hi" },
    },
  );
  assert.equal(sent.status, 200);
  await setup.hs.appserviceIdle("whatsapp");
}
