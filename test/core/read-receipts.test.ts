import assert from "node:assert/strict";
import type { RemoteMessageId } from "../../src/core/network.js";
import type { PortalRow } from "../../src/db/portals.js";
import { eventId, type EventId } from "../../src/util/ids.js";
import { ALICE } from "./helpers.js";
import {
  WITH_INTEROP,
  acceptIfRequest,
  createCoreOn,
  withHooks,
  type NetHarness,
} from "./networks.js";

const T0 = 1_700_000_000_000;

const text = (body: string) => ({ type: "text" as const, text: { text: body, spans: [] } });

for (const nut of WITH_INTEROP) {
  const BOB_ID = nut.bob.id;

  // The contact's send times are the test's clock here; the simulator stamps messages by its own.
  const atTestTimes = (title: string, fn: Mocha.AsyncFunc) =>
    withHooks(nut, "messages sent at the test's times")(title, fn);

  describe(`core: a read receipt marks the latest bridged message at or before its event, on ${nut.label}`, function () {
    let h: NetHarness;
    let portal: PortalRow;
    beforeEach(async function () {
      h = await createCoreOn(nut);
      await nut.logIn(h);
      for (const [i, body] of ["one", "two"].entries()) {
        await h.network.report(ALICE, {
          kind: "message",
          from: BOB_ID,
          id: `in-${i + 1}` as RemoteMessageId,
          sentAt: new Date(T0 + (i + 1) * 1000),
          order: i + 1,
          content: text(body),
          isRequest: false,
        });
      }
      const row = await acceptIfRequest(h, BOB_ID);
      assert.ok(row.roomId);
      portal = row;
    });
    afterEach(async function () {
      await h.dispose();
    });

    const reads = async (): Promise<string[]> => {
      await h.network.settled();
      return h.network.actions.filter((a) => a.startsWith("read "));
    };
    const eventOf = (body: string): EventId => {
      const found = h.matrix.events.find((e) => e.text === body)?.eventId;
      assert.ok(found, body);
      return found;
    };

    it("on a bridged incoming message, marks that message", async function () {
      await h.core.router.fromMatrix.read(ALICE, portal, eventOf("one"));
      assert.deepEqual(await reads(), [`read ${BOB_ID} in-1`]);
    });

    atTestTimes(
      "on a later edit or reaction (not a bridged message), marks the message before it",
      async function () {
        const reaction = eventId("$reaction-after-two");
        h.matrix.eventTimes.set(reaction, T0 + 2500);
        await h.core.router.fromMatrix.read(ALICE, portal, reaction);
        const earlier = eventId("$edit-between");
        h.matrix.eventTimes.set(earlier, T0 + 1500);
        await h.core.router.fromMatrix.read(ALICE, portal, earlier);
        assert.deepEqual(await reads(), [`read ${BOB_ID} in-2`, `read ${BOB_ID} in-1`]);
      },
    );

    atTestTimes(
      "on a message the contact deleted, marks the contact's message before it",
      async function () {
        // Element puts the receipt on the latest event, which may be a deleted (redacted) message.
        const deleted = eventOf("two");
        h.matrix.eventTimes.set(eventOf("one"), T0 + 1100);
        h.matrix.eventTimes.set(deleted, T0 + 2100);
        await h.network.report(ALICE, {
          kind: "retract",
          from: BOB_ID,
          target: { author: BOB_ID, id: "in-2" as RemoteMessageId },
        });
        await h.core.router.fromMatrix.read(ALICE, portal, deleted);
        assert.deepEqual(await reads(), [`read ${BOB_ID} in-1`]);
      },
    );

    it("on the user's own message, marks the contact's message before it", async function () {
      await h.core.router.fromMatrix.message(ALICE, portal, eventId("$mine"), text("answer"));
      await h.core.router.fromMatrix.read(ALICE, portal, eventId("$mine"));
      assert.deepEqual(await reads(), [`read ${BOB_ID} in-2`]);
    });

    atTestTimes(
      "does not mark a message delivered late, posted after the event, however early it was sent",
      async function () {
        // The room's order: one (posted T0+1100), two (T0+2100), a reaction (T0+3000), then "late",
        // sent at T0+2500 by its sender's clock but delivered and posted only at T0+4000.
        h.matrix.eventTimes.set(eventOf("one"), T0 + 1100);
        h.matrix.eventTimes.set(eventOf("two"), T0 + 2100);
        await h.network.report(ALICE, {
          kind: "message",
          from: BOB_ID,
          id: "in-late" as RemoteMessageId,
          sentAt: new Date(T0 + 2500),
          order: 3,
          content: text("late"),
          isRequest: false,
        });
        h.matrix.eventTimes.set(eventOf("late"), T0 + 4000);
        const reaction = eventId("$reaction-before-late");
        h.matrix.eventTimes.set(reaction, T0 + 3000);
        await h.core.router.fromMatrix.read(ALICE, portal, reaction);
        assert.deepEqual(await reads(), [`read ${BOB_ID} in-2`]);
      },
    );

    it("sends nothing for an event before every bridged message or of unknown time", async function () {
      const before = eventId("$before");
      h.matrix.eventTimes.set(before, T0);
      await h.core.router.fromMatrix.read(ALICE, portal, before);
      await h.core.router.fromMatrix.read(ALICE, portal, eventId("$unknown"));
      assert.deepEqual(await reads(), []);
    });
  });
}
