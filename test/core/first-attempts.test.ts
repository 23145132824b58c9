import assert from "node:assert/strict";
import type { RemoteEvent, RemoteMessageId } from "../../src/core/network.js";
import { eventId } from "../../src/util/ids.js";
import { ALICE } from "./helpers.js";
import { WITH_INTEROP, createCoreOn, withHooks, type NetHarness } from "./networks.js";

const text = (body: string) => ({ type: "text" as const, text: { text: body, spans: [] } });

/**
 * A select on the `messages` table, quoted as either backend quotes names (SQLite's backticks,
 * PostgreSQL's double quotes), and one of its conditions with a placeholder (`?` or `$1`).
 */
const LOOKUP = /^select .* from [`"]messages[`"] where/;
const condition = (column: string) => new RegExp(`[\`"]${column}[\`"] = (\\?|\\$\\d+)`);

/**
 * Issue #15: the core looks a message's mapping up only when the message may have been bridged
 * before. A first attempt (`firstHandOver` from the network, `firstAttempt` from the Matrix
 * ingress) skips the look-up; every other attempt keeps it, and is what keeps a message once.
 */
for (const nut of WITH_INTEROP) {
  const BOB_ID = nut.bob.id;

  let counter = 0;
  function incoming(body: string): Extract<RemoteEvent, { kind: "message" }> {
    counter += 1;
    return {
      kind: "message",
      from: BOB_ID,
      id: `first-${counter}` as RemoteMessageId,
      sentAt: new Date(1_700_000_000_000 + counter),
      order: counter,
      content: text(body),
      isRequest: false,
    };
  }

  describe(`core: look-ups of a message's mapping on its first attempt, on ${nut.label}`, function () {
    let h: NetHarness;
    /** The statements the core ran on the `messages` table, by their WHERE clause. */
    let lookups: { byRemote: number; byEvent: number };
    beforeEach(async function () {
      h = await createCoreOn(nut);
      await nut.logIn(h);
      await nut.addUser(h.network, nut.bob);
      lookups = { byRemote: 0, byEvent: 0 };
      h.db.db.knex.on("query", (query: { sql: string }) => {
        if (!LOOKUP.test(query.sql)) return;
        if (condition("remote_id").test(query.sql)) lookups.byRemote += 1;
        if (condition("event_id").test(query.sql)) lookups.byEvent += 1;
      });
    });
    afterEach(async function () {
      await h.dispose();
    });

    const posted = (body: string) => h.matrix.events.filter((e) => e.text === body).length;

    it("a network message handed over for the first time is posted and mapped without a look-up", async function () {
      const message = incoming("first time");
      await h.network.report(ALICE, { ...message, firstHandOver: true });
      assert.equal(posted("first time"), 1);
      assert.equal(lookups.byRemote, 0, "no look-up of the message's mapping");
      const portal = await h.tables.portalRows.get(ALICE, BOB_ID);
      assert.ok(portal);
      // Mapped: a reply to it refers to the posted event.
      await h.network.report(ALICE, {
        ...incoming("a reply"),
        replyTo: { author: BOB_ID, id: message.id },
      });
      const original = h.matrix.events.find((e) => e.text === "first time");
      assert.equal(h.matrix.events.find((e) => e.text === "a reply")?.replyTo, original?.eventId);
    });

    withHooks(
      nut,
      "a repeat hand-over and a wrong flag on demand: the provider's inbox drops a resent id",
    )(
      "a message handed over again is found mapped and not posted twice; a repeat flagged as first would be",
      async function () {
        const message = incoming("once");
        await h.network.report(ALICE, { ...message, firstHandOver: true });
        // A replay after a restart, a retry after a failed report, a redelivery: no flag.
        await h.network.report(ALICE, message);
        assert.equal(posted("once"), 1);
        assert.equal(lookups.byRemote, 1, "the repeat looked the mapping up");
        // The core trusts the flag: only a first hand-over may carry it (receiver.ts, types.ts).
        await h.network.report(ALICE, { ...message, firstHandOver: true });
        assert.equal(posted("once"), 2, "a wrong flag posts the message again");
      },
    );

    it("a Matrix message on its first attempt is sent without a look-up; a later attempt finds it sent", async function () {
      await h.network.report(ALICE, incoming("hello"));
      const portal = await h.tables.portalRows.get(ALICE, BOB_ID);
      assert.ok(portal);
      const before = lookups.byEvent;
      const id = eventId("$first-attempt");
      await h.core.router.fromMatrix.message(ALICE, portal, id, text("mine"), undefined, {
        firstAttempt: true,
      });
      assert.equal(lookups.byEvent, before, "no look-up of the event's mapping");
      await h.network.settled();
      assert.equal(h.network.sent.filter((s) => s.content.type === "text").length, 1);
      // The next attempt (after a crash or a failure following the send) sends nothing.
      await h.core.router.fromMatrix.message(ALICE, portal, id, text("mine"));
      await h.network.settled();
      assert.equal(lookups.byEvent, before + 1);
      assert.equal(h.network.sent.length, 1, "sent once");
      // The core trusts the flag: only the ingress's first attempt may carry it. (The loopback
      // network keeps one send per event id itself; the fake sends whatever it is asked.)
      if (nut.id !== "fake") return;
      await h.core.router.fromMatrix.message(ALICE, portal, id, text("mine"), undefined, {
        firstAttempt: true,
      });
      await h.network.settled();
      assert.equal(h.network.sent.length, 2, "a wrong flag sends the event again");
    });
  });
}
