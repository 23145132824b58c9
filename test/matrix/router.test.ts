import assert from "node:assert/strict";
import type { WeakEvent } from "matrix-appservice-bridge";
import { ProcessedEventsTable } from "../../src/db/processed-events.js";
import { MatrixEventRouter } from "../../src/matrix/router.js";
import { silentLogger } from "../../src/util/log.js";
import { contactId } from "../core/fakes/network.js";
import { ALICE, MGMT, createCore, logIn, type CoreHarness } from "../core/helpers.js";

const GHOST = "@whatsapp_491701234567:example.org";
let counter = 0;

function event(
  sender: string,
  room: string,
  type: string,
  content: Record<string, unknown>,
  stateKey?: string,
): WeakEvent {
  counter += 1;
  return {
    event_id: `$e${counter}`,
    room_id: room,
    sender,
    type,
    content,
    origin_server_ts: Date.now(),
    ...(stateKey === undefined ? {} : { state_key: stateKey }),
  };
}

const text = (sender: string, room: string, body: string) =>
  event(sender, room, "m.room.message", { msgtype: "m.text", body });

describe("matrix event router", function () {
  let h: CoreHarness;
  let router: MatrixEventRouter;
  let processed: ProcessedEventsTable;

  beforeEach(async function () {
    h = await createCore();
    processed = new ProcessedEventsTable(h.db.db.knex);
    router = new MatrixEventRouter({
      core: h.core.router,
      processed,
      openMedia: async () => {
        throw new Error("no media in these tests");
      },
      log: silentLogger(),
    });
  });
  afterEach(async function () {
    await h.dispose();
  });

  it("the bot's invite to a DM by a permitted user makes a management room that takes commands", async function () {
    await router.handleEvent(
      event(
        ALICE,
        MGMT,
        "m.room.member",
        { membership: "invite", is_direct: true },
        h.matrix.botUserId,
      ),
    );
    assert.equal((await h.tables.users.get(ALICE))?.managementRoom, MGMT);
    await router.handleEvent(text(ALICE, MGMT, "ping"));
    assert.match(h.matrix.lastNotice(MGMT), /^Pong/);
  });

  it("events from the bot and from ghosts are never handled (no echo)", async function () {
    await router.handleEvent(
      event(ALICE, MGMT, "m.room.member", { membership: "invite" }, h.matrix.botUserId),
    );
    const before = h.matrix.events.length;
    const fromBot = text(h.matrix.botUserId, MGMT, "help");
    const ghostInvite = event(
      GHOST,
      "!portal:example.org",
      "m.room.member",
      { membership: "invite" },
      h.matrix.botUserId,
    );
    await router.handleEvent(fromBot);
    await router.handleEvent(ghostInvite);
    assert.equal(h.matrix.events.length, before, "no answer to the bot's own text");
    assert.equal(
      await h.tables.users.get(GHOST as never),
      undefined,
      "a ghost never becomes a user",
    );
    assert.equal(await processed.has(fromBot.event_id), false);
  });

  it("a user without permission gets one refusal at the invite, then is ignored", async function () {
    const stranger = "@eve:elsewhere.example";
    await router.handleEvent(
      event(
        stranger,
        "!x:example.org",
        "m.room.member",
        { membership: "invite" },
        h.matrix.botUserId,
      ),
    );
    const refusal = h.matrix.notices("!x:example.org" as never);
    assert.equal(refusal.length, 1);
    assert.match(refusal[0] ?? "", /may not use this bridge/);
    await router.handleEvent(text(stranger, "!x:example.org", "help"));
    assert.deepEqual(h.matrix.notices("!x:example.org" as never), refusal, "no command answered");
  });

  it("an event seen before is skipped, so a redelivered transaction is handled once", async function () {
    await router.handleEvent(
      event(ALICE, MGMT, "m.room.member", { membership: "invite" }, h.matrix.botUserId),
    );
    const ping = text(ALICE, MGMT, "ping");
    await router.handleTransaction({ id: "t1", events: [ping], ephemeral: [] });
    await router.handleTransaction({ id: "t1", events: [ping], ephemeral: [] });
    assert.equal(h.matrix.notices(MGMT).filter((n) => n.startsWith("Pong")).length, 1);
  });

  it("a failing event fails the transaction unrecorded; the retry handles only what is left", async function () {
    await router.handleEvent(
      event(ALICE, MGMT, "m.room.member", { membership: "invite" }, h.matrix.botUserId),
    );
    const first = text(ALICE, MGMT, "ping");
    const other = "!second:example.org";
    const second = event(
      ALICE,
      other,
      "m.room.member",
      { membership: "invite" },
      h.matrix.botUserId,
    );
    const realSend = h.matrix.sendNotice.bind(h.matrix);
    let failures = 1;
    h.matrix.sendNotice = async (room, body, replyTo) => {
      if (room === other && failures > 0) {
        failures -= 1;
        throw new Error("homeserver unavailable");
      }
      return realSend(room, body, replyTo);
    };
    await assert.rejects(
      router.handleTransaction({ id: "t2", events: [first, second], ephemeral: [] }),
    );
    assert.equal(await processed.has(first.event_id), true);
    assert.equal(await processed.has(second.event_id), false);
    await router.handleTransaction({ id: "t2", events: [first, second], ephemeral: [] });
    assert.equal(
      h.matrix.notices(MGMT).filter((n) => n.startsWith("Pong")).length,
      1,
      "the first is not repeated",
    );
    assert.match(
      h.matrix.lastNotice(other as never),
      /Send `login` to start/,
      "the second is not lost",
    );
  });

  it("portal events: text goes to the network, !wa is a command, joins accept requests, other senders are ignored", async function () {
    await logIn(h);
    await h.network.report(ALICE, {
      kind: "message",
      from: contactId("+491701234567"),
      id: "m1" as never,
      sentAt: new Date(),
      order: 1,
      content: { type: "text", text: { text: "hi", spans: [] } },
      isRequest: true,
    });
    const portal = await h.tables.portalRows.get(ALICE, contactId("+491701234567"));
    assert.ok(portal?.roomId);
    await router.handleEvent(
      event(ALICE, portal.roomId, "m.room.member", { membership: "join" }, ALICE),
    );
    assert.equal((await h.tables.portalRows.byId(portal.id))?.requestState, "accepted");
    await router.handleEvent(text("@mallory:example.org", portal.roomId, "sneaky"));
    await router.handleEvent(text(ALICE, portal.roomId, "hello Bob"));
    assert.deepEqual(
      h.network.sent.map((s) => s.content.type === "text" && s.content.text.text),
      ["hello Bob"],
    );
    await router.handleEvent(text(ALICE, portal.roomId, "!wa block"));
    assert.ok(h.network.actions.includes(`block ${contactId("+491701234567")}`));
    await router.handleEvent(
      event(ALICE, portal.roomId, "m.room.message", { msgtype: "m.image", body: "x.png" }),
    );
    assert.match(h.matrix.lastNotice(portal.roomId), /^Not sent: /);
  });

  it("typing and read receipts from the user reach the network only when allowed", async function () {
    await logIn(h);
    await h.network.report(ALICE, {
      kind: "message",
      from: contactId("+491701234567"),
      id: "m1" as never,
      sentAt: new Date(),
      order: 1,
      content: { type: "text", text: { text: "hi", spans: [] } },
      isRequest: true,
    });
    const portal = await h.tables.portalRows.get(ALICE, contactId("+491701234567"));
    assert.ok(portal?.roomId);
    const room = portal.roomId;
    const bridged = h.matrix.events.find((e) => e.text === "hi")?.eventId ?? "";
    const typing = { type: "m.typing", room_id: room, content: { user_ids: [ALICE] } };
    const receipt = {
      type: "m.receipt",
      room_id: room,
      content: { [bridged]: { "m.read": { [ALICE]: { ts: 1 } } } },
    };
    await router.handleTransaction({ id: "e1", events: [], ephemeral: [typing, receipt] });
    assert.deepEqual(
      h.network.actions.filter((a) => a.startsWith("typing") || a.startsWith("read")),
      [],
      "not while the request is pending",
    );
    await h.core.router.portals.onUserMembership(portal, "join");
    await router.handleTransaction({ id: "e2", events: [], ephemeral: [typing, receipt] });
    assert.ok(h.network.actions.includes(`typing ${contactId("+491701234567")} true`));
    assert.ok(h.network.actions.includes(`read ${contactId("+491701234567")} m1`));
  });
});
