import assert from "node:assert/strict";
import { AS_TOKEN, HS_TOKEN, eventsOf, setUp, type Setup } from "./appserviceFixture.js";
import { api, enc, eventually } from "./testHelpers.js";

describe("test homeserver appservice client-server extensions", function () {
  let s: Setup | undefined;
  afterEach(async function () {
    await s?.hs.stop();
    await s?.as.stop();
    s = undefined;
  });

  it("ghost registration and masquerading are confined to the namespace (M_EXCLUSIVE, M_FORBIDDEN)", async function () {
    s = await setUp("spec");
    const url = s.hs.url;
    const outside = await api(url, "POST", "/_matrix/client/v3/register", {
      token: AS_TOKEN,
      body: { type: "m.login.application_service", username: "mallory" },
    });
    assert.equal(outside.status, 400);
    assert.equal(outside.json["errcode"], "M_EXCLUSIVE");

    const squatter = await api(url, "POST", "/_matrix/client/v3/register", {
      body: { username: "_wa_999", password: "pw", auth: { type: "m.login.dummy" } },
    });
    assert.equal(squatter.status, 400);
    assert.equal(squatter.json["errcode"], "M_EXCLUSIVE");

    const noToken = await api(url, "POST", "/_matrix/client/v3/register", {
      body: { type: "m.login.application_service", username: "_wa_2" },
    });
    assert.deepEqual([noToken.status, noToken.json["errcode"]], [401, "M_MISSING_TOKEN"]);
    const badToken = await api(url, "POST", "/_matrix/client/v3/register", {
      token: "nope",
      body: { type: "m.login.application_service", username: "_wa_2" },
    });
    assert.deepEqual([badToken.status, badToken.json["errcode"]], [401, "M_UNKNOWN_TOKEN"]);

    const again = await api(url, "POST", "/_matrix/client/v3/register", {
      token: AS_TOKEN,
      body: { type: "m.login.application_service", username: "_wa_123" },
    });
    assert.equal(again.json["errcode"], "M_USER_IN_USE");

    const whoami = await api(
      url,
      "GET",
      `/_matrix/client/v3/account/whoami?user_id=${enc(s.ghost)}`,
      { token: AS_TOKEN },
    );
    assert.equal(whoami.json["user_id"], s.ghost);
    const asBot = await api(url, "GET", "/_matrix/client/v3/account/whoami", { token: AS_TOKEN });
    assert.equal(asBot.json["user_id"], "@wabot:hs.test");
    const hijack = await api(
      url,
      "GET",
      `/_matrix/client/v3/account/whoami?user_id=${enc("@bob:hs.test")}`,
      { token: AS_TOKEN },
    );
    assert.deepEqual([hijack.status, hijack.json["errcode"]], [403, "M_FORBIDDEN"]);

    const login = await api(url, "POST", "/_matrix/client/v3/login", {
      token: AS_TOKEN,
      body: {
        type: "m.login.application_service",
        identifier: { type: "m.id.user", user: "_wa_123" },
      },
    });
    assert.equal(login.json["user_id"], s.ghost);
    const ghostWhoami = await api(url, "GET", "/_matrix/client/v3/account/whoami", {
      token: login.json["access_token"] as string,
    });
    assert.equal(ghostWhoami.json["user_id"], s.ghost);
    const loginOutside = await api(url, "POST", "/_matrix/client/v3/login", {
      token: AS_TOKEN,
      body: { type: "m.login.application_service", identifier: { type: "m.id.user", user: "bob" } },
    });
    assert.equal(loginOutside.json["errcode"], "M_EXCLUSIVE");
  });

  it("the appservice ping round-trips on 1.92 and spec and is unknown on 1.67", async function () {
    for (const profile of ["synapse-1.92", "spec"] as const) {
      s = await setUp(profile);
      const pong = await api(s.hs.url, "POST", "/_matrix/client/v1/appservice/whatsapp/ping", {
        token: AS_TOKEN,
        body: { transaction_id: "meow" },
      });
      assert.equal(pong.status, 200, JSON.stringify(pong.json));
      assert.equal(typeof pong.json["duration_ms"], "number");
      const ping = s.as.requests.find((r) => r.path === "/_matrix/app/v1/ping");
      assert.deepEqual(ping?.body, { transaction_id: "meow" });
      assert.equal(ping?.authorization, `Bearer ${HS_TOKEN}`);

      s.as.respond = () => ({ status: 403, body: { errcode: "M_FORBIDDEN" } });
      const bad = await api(s.hs.url, "POST", "/_matrix/client/v1/appservice/whatsapp/ping", {
        token: AS_TOKEN,
        body: {},
      });
      assert.deepEqual(
        [bad.status, bad.json["errcode"], bad.json["status"]],
        [502, "M_BAD_STATUS", 403],
      );
      const wrongId = await api(s.hs.url, "POST", "/_matrix/client/v1/appservice/other/ping", {
        token: AS_TOKEN,
        body: {},
      });
      assert.deepEqual([wrongId.status, wrongId.json["errcode"]], [403, "M_FORBIDDEN"]);
      await s.hs.stop();
      await s.as.stop();
      s = undefined;
    }
    s = await setUp("synapse-1.67");
    const missing = await api(s.hs.url, "POST", "/_matrix/client/v1/appservice/whatsapp/ping", {
      token: AS_TOKEN,
      body: {},
    });
    assert.deepEqual([missing.status, missing.json["errcode"]], [400, "M_UNRECOGNIZED"]);
  });

  it("a masquerading ghost's message keeps the massaged ts and is still pushed to its appservice", async function () {
    s = await setUp("spec");
    const sent = await api(
      s.hs.url,
      "PUT",
      `/_matrix/client/v3/rooms/${enc(s.roomId)}/send/m.room.message/g1?user_id=${enc(s.ghost)}&ts=1234567890`,
      { token: AS_TOKEN, body: { msgtype: "m.text", body: "from whatsapp" } },
    );
    assert.equal(sent.status, 200);
    const event = await api(
      s.hs.url,
      "GET",
      `/_matrix/client/v3/rooms/${enc(s.roomId)}/event/${enc(sent.json["event_id"] as string)}`,
      {
        token: s.bobToken,
      },
    );
    assert.equal(event.json["sender"], s.ghost);
    assert.equal(event.json["origin_server_ts"], 1234567890);
    await s.hs.appserviceIdle("whatsapp");
    const pushed = await eventually(
      () =>
        eventsOf(s?.as.transactions() ?? []).find((e) => e["event_id"] === sent.json["event_id"]),
      "the ghost's own event in a transaction",
    );
    assert.equal(pushed["sender"], s.ghost);
  });

  for (const [profile, queryPath] of [
    ["synapse-1.67", "/rooms/%23_wa_group%3Ahs.test"],
    ["spec", "/_matrix/app/v1/rooms/%23_wa_group%3Ahs.test"],
  ] as const) {
    it(`${profile}: joining an unknown alias of the appservice's namespace asks the appservice first`, async function () {
      s = await setUp(profile);
      const setup = s;
      const alias = "#_wa_group:hs.test";
      setup.as.respond = async (req) => {
        if (req.method !== "GET" || !req.path.includes("/rooms/")) return { status: 200, body: {} };
        // The appservice creates the room and alias while the homeserver waits (AS API "Querying").
        const created = await api(setup.hs.url, "POST", "/_matrix/client/v3/createRoom", {
          token: AS_TOKEN,
          body: { preset: "public_chat", room_alias_name: "_wa_group" },
        });
        return created.status === 200 ? { status: 200, body: {} } : { status: 500 };
      };
      const joined = await api(setup.hs.url, "POST", `/_matrix/client/v3/join/${enc(alias)}`, {
        token: setup.bobToken,
        body: {},
      });
      assert.equal(joined.status, 200, JSON.stringify(joined.json));
      const query = setup.as.requests.find((r) => r.method === "GET");
      assert.equal(query?.path.replace(/%3a/gi, "%3A"), queryPath);
      const unknown = await api(
        setup.hs.url,
        "GET",
        `/_matrix/client/v3/directory/room/${enc("#elsewhere:hs.test")}`,
      );
      assert.equal(unknown.status, 404);
    });
  }
});
