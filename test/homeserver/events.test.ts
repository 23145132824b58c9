import assert from "node:assert/strict";
import { newEventId, redactEvent } from "./events.js";
import type { RoomEvent } from "./types.js";

const base = { event_id: "$e", room_id: "!r:hs.test", sender: "@a:hs.test", origin_server_ts: 1 };

describe("test homeserver redaction algorithm", function () {
  it("a redacted message keeps its envelope and loses all content", function () {
    const event: RoomEvent = {
      ...base,
      type: "m.room.message",
      content: { body: "secret", msgtype: "m.text" },
      unsigned: { age: 5 },
    };
    const redacted = redactEvent(event, 10);
    assert.deepEqual(redacted, { ...base, type: "m.room.message", content: {} });
  });

  it("a redacted member event keeps only its membership (and the v9+ join authorisation)", function () {
    const event: RoomEvent = {
      ...base,
      type: "m.room.member",
      state_key: "@a:hs.test",
      content: {
        membership: "join",
        displayname: "A",
        join_authorised_via_users_server: "@b:hs.test",
      },
    };
    assert.deepEqual(redactEvent(event, 10).content, {
      membership: "join",
      join_authorised_via_users_server: "@b:hs.test",
    });
    assert.deepEqual(redactEvent(event, 8).content, { membership: "join" });
  });

  it("power levels keep invite only from v11, create keeps everything only from v11", function () {
    const pl: RoomEvent = {
      ...base,
      type: "m.room.power_levels",
      state_key: "",
      content: { invite: 0, ban: 50, notifications: { room: 50 } },
    };
    assert.deepEqual(redactEvent(pl, 10).content, { ban: 50 });
    assert.deepEqual(redactEvent(pl, 11).content, { ban: 50, invite: 0 });
    const create: RoomEvent = {
      ...base,
      type: "m.room.create",
      state_key: "",
      content: { creator: "@a:hs.test", type: "m.space" },
    };
    assert.deepEqual(redactEvent(create, 10).content, { creator: "@a:hs.test" });
    assert.deepEqual(redactEvent(create, 11).content, { creator: "@a:hs.test", type: "m.space" });
  });

  it("a redaction event keeps content.redacts only from v11", function () {
    const redaction: RoomEvent = {
      ...base,
      type: "m.room.redaction",
      redacts: "$x",
      content: { redacts: "$x", reason: "r" },
    };
    assert.deepEqual(redactEvent(redaction, 11).content, { redacts: "$x" });
    assert.deepEqual(redactEvent(redaction, 10).content, {});
  });

  it("event ids have the room v4+ shape", function () {
    assert.match(newEventId(), /^\$[A-Za-z0-9_-]{43}$/);
  });
});
