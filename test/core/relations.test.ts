import assert from "node:assert/strict";
import type { RemoteMessageId } from "../../src/core/network.js";
import type { PortalRow } from "../../src/db/portals.js";
import { eventId, type EventId, type RoomId } from "../../src/util/ids.js";
import { ALICE } from "./helpers.js";
import { WITH_INTEROP, createCoreOn, withHooks, type NetHarness } from "./networks.js";

for (const nut of WITH_INTEROP) {
  const BOB_ID = nut.bob.id;
  const GHOST = nut.bob.ghost;

  describe(`core: reactions, edits and deletions in both directions, on ${nut.label}`, function () {
    let h: NetHarness;
    let portal: PortalRow & { roomId: RoomId };
    let theirs: EventId;

    beforeEach(async function () {
      h = await createCoreOn(nut);
      await nut.logIn(h);
      await h.network.report(ALICE, {
        kind: "message",
        from: BOB_ID,
        id: "b1" as RemoteMessageId,
        sentAt: new Date(1000),
        order: 1,
        content: { type: "text", text: { text: "how are you?", spans: [] } },
        isRequest: false,
      });
      const row = await h.tables.portalRows.get(ALICE, BOB_ID);
      assert.ok(row?.roomId);
      portal = { ...row, roomId: row.roomId };
      theirs = h.matrix.events.find((e) => e.text === "how are you?")?.eventId as EventId;
    });
    afterEach(async function () {
      await h.dispose();
    });

    it("the contact's reaction set becomes ghost reactions added and removed", async function () {
      const target = { author: BOB_ID, id: "b1" as RemoteMessageId };
      await h.network.report(ALICE, {
        kind: "reactions",
        from: BOB_ID,
        target,
        emojis: ["👍", "❤️"],
      });
      const added = h.matrix.events.filter((e) => e.kind === "reaction");
      assert.deepEqual(
        added.map((e) => [e.sender, e.replyTo, e.text]),
        [
          [GHOST, theirs, "👍"],
          [GHOST, theirs, "❤️"],
        ],
      );
      await h.network.report(ALICE, { kind: "reactions", from: BOB_ID, target, emojis: ["❤️"] });
      const thumbs = added[0]?.eventId ?? "";
      assert.ok(h.matrix.calls.includes(`redact ${portal.roomId} ${thumbs} by ${GHOST}`));
      assert.equal(
        h.matrix.events.filter((e) => e.kind === "reaction").length,
        2,
        "❤️ is not re-sent",
      );
    });

    it("the user's reactions go to the network as the complete set, and a redaction shrinks it", async function () {
      await h.core.router.fromMatrix.reaction(ALICE, portal, eventId("$r1"), theirs, "👍");
      await h.core.router.fromMatrix.reaction(ALICE, portal, eventId("$r2"), theirs, "🎉");
      await h.core.router.fromMatrix.redaction(ALICE, portal, eventId("$r1"));
      await h.network.settled();
      assert.deepEqual(
        h.network.actions.filter((a) => a.startsWith("reactions")),
        [
          `reactions ${BOB_ID} b1 [👍]`,
          `reactions ${BOB_ID} b1 [👍🎉]`,
          `reactions ${BOB_ID} b1 [🎉]`,
        ],
      );
    });

    it("the user's edit and deletion of their own message reach the network; others' are ignored", async function () {
      await h.core.router.fromMatrix.message(ALICE, portal, eventId("$mine"), {
        type: "text",
        text: { text: "fine", spans: [] },
      });
      await h.network.settled();
      const mine = h.network.sent.at(-1)?.id;
      await h.core.router.fromMatrix.edit(ALICE, portal, eventId("$edit"), eventId("$mine"), {
        type: "text",
        text: { text: "fine, thanks", spans: [] },
      });
      await h.core.router.fromMatrix.edit(ALICE, portal, eventId("$edit2"), theirs, {
        type: "text",
        text: { text: "not mine", spans: [] },
      });
      await h.core.router.fromMatrix.redaction(ALICE, portal, eventId("$mine"));
      await h.core.router.fromMatrix.redaction(ALICE, portal, eventId("$mine"));
      await h.network.settled();
      assert.deepEqual(
        h.network.actions.filter((a) => a.startsWith("edit") || a.startsWith("retract")),
        nut.supports.retract
          ? [`edit ${BOB_ID} ${mine}`, `retract ${BOB_ID} ${mine}`]
          : [`edit ${BOB_ID} ${mine}`],
      );
    });

    // The windows and the server's time of an event are set by the fakes' hooks.
    withHooks(nut, "edit windows and server times on demand")(
      "the contact's edit and retraction outside the network's windows are ignored (P22)",
      async function () {
        if (!nut.supports.retract) this.skip();
        h.network.editWindowMs = 60_000;
        (h.network as unknown as { retractWindowMs: number }).retractWindowMs = 60_000;
        const target = { author: BOB_ID, id: "b1" as RemoteMessageId };
        // The original was sent at 1 s; these arrive 2 minutes later by the network's clock.
        const late = new Date(121_000);
        await h.network.report(ALICE, {
          kind: "edit",
          from: BOB_ID,
          target,
          content: { type: "text", text: { text: "how are you??", spans: [] } },
          order: 2,
          serverTime: late,
        });
        await h.network.report(ALICE, { kind: "retract", from: BOB_ID, target, serverTime: late });
        assert.equal(h.matrix.events.filter((e) => e.text === "how are you??").length, 0);
        assert.ok(!h.matrix.calls.some((c) => c.startsWith(`redact ${portal.roomId} ${theirs}`)));
        await h.network.report(ALICE, {
          kind: "retract",
          from: BOB_ID,
          target,
          serverTime: new Date(30_000),
        });
        assert.ok(h.matrix.calls.some((c) => c.startsWith(`redact ${portal.roomId} ${theirs}`)));
      },
    );

    it("the contact's read marker on the user's message is shown as the ghost's receipt", async function () {
      await h.core.router.fromMatrix.message(ALICE, portal, eventId("$mine"), {
        type: "text",
        text: { text: "fine", spans: [] },
      });
      await h.network.settled();
      const mine = h.network.sent.at(-1)?.id as RemoteMessageId;
      await h.network.report(ALICE, {
        kind: "read",
        from: BOB_ID,
        upTo: { author: "alice=3aexample.org@matrix.bridge.example" as never, id: mine },
      });
      assert.ok(h.matrix.calls.includes(`receipt ${portal.roomId} $mine by ${GHOST}`));
    });
  });
}
