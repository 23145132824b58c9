import assert from "node:assert/strict";
import type { RemoteMessageId } from "../../src/core/network.js";
import { MatrixRefusedError } from "../../src/core/matrix-api.js";
import { BridgeError } from "../../src/util/errors.js";
import { eventId, type EventId, type RoomId } from "../../src/util/ids.js";
import { ALICE, MGMT } from "./helpers.js";
import {
  NETWORKS,
  WITH_INTEROP,
  acceptIfRequest,
  createCoreOn,
  withHooks,
  type NetHarness,
} from "./networks.js";
import type { FakeNetwork } from "./fakes/network.js";
import type { LoopbackNetwork } from "../../src/networks/loopback/index.js";

/** A string as a regular expression matching it literally. */
const literal = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

function text(body: string) {
  return { type: "text" as const, text: { text: body, spans: [] } };
}

for (const nut of WITH_INTEROP) {
  const BOB = nut.bob.typed;
  const BOB_ID = nut.bob.id;
  const GHOST = nut.bob.ghost;
  const SHOWN = literal(nut.bob.shown);

  let counter = 0;
  function incoming(body: string, isRequest = false) {
    counter += 1;
    return {
      kind: "message" as const,
      from: BOB_ID,
      id: `in-${counter}` as RemoteMessageId,
      sentAt: new Date(1_700_000_000_000 + counter),
      order: counter,
      content: text(body),
      isRequest,
    };
  }

  /** Makes the network refuse the next sends (FakeNetwork: an error; loopback: Bob is gone). */
  function refuseSends(h: NetHarness, refuse: boolean): void {
    if (nut.id === "fake") {
      (h.network as FakeNetwork).sendError = refuse
        ? new BridgeError("rate-limited", "you are sending too fast")
        : undefined;
    } else if (refuse) (h.network as LoopbackNetwork).users.delete(BOB);
    else (h.network as LoopbackNetwork).users.add(BOB);
  }

  describe(`core: portals and message requests, on ${nut.label}`, function () {
    let h: NetHarness;
    beforeEach(async function () {
      h = await createCoreOn(nut);
      await nut.logIn(h);
    });
    afterEach(async function () {
      await h.dispose();
    });

    async function portalRoom(): Promise<RoomId> {
      const portal = await h.tables.portalRows.get(ALICE, BOB_ID);
      assert.ok(portal?.roomId, "the portal has a room");
      return portal.roomId;
    }

    it("start-chat on a reachable number creates a DM from the ghost, in the user's space, pending the reply", async function () {
      await nut.addUser(h.network, nut.bob);
      const [answer] = await h.say(`start-chat ${BOB}`);
      assert.match(
        answer ?? "",
        new RegExp(`Invited you to a new chat with ${SHOWN}.*must accept`),
      );
      const room = await portalRoom();
      assert.equal(h.matrix.rooms.get(room)?.creator, GHOST);
      assert.equal(h.matrix.rooms.get(room)?.user, ALICE);
      assert.equal(h.matrix.ghosts.get(GHOST as never), nut.bob.ghostName);
      const space = (await h.tables.users.get(ALICE))?.spaceRoom;
      assert.ok(space);
      assert.equal(h.matrix.rooms.get(space)?.name, nut.name);
      assert.ok(h.matrix.calls.includes(`space-child ${space} ${room}`));
      assert.match(h.matrix.rooms.get(room)?.topic ?? "", /must accept your first message/);
      assert.match(h.matrix.lastNotice(room), /must accept your first message/);
      assert.equal(
        (await h.tables.portalRows.get(ALICE, BOB_ID))?.requestState,
        "outgoing-pending",
      );
    });

    it("start-chat twice reuses the portal; an unreachable number gets the one neutral answer", async function () {
      await nut.addUser(h.network, nut.bob);
      await h.say(`pm ${BOB}`);
      const [again] = await h.say(`pm ${BOB}`);
      assert.match(again ?? "", /already have a chat/);
      assert.equal(h.matrix.calls.filter((c) => c.startsWith("create-portal")).length, 1);
      const [unreachable] = await h.say(`start-chat ${nut.nobody}`);
      const { identifier } = h.core.network;
      assert.match(
        unreachable ?? "",
        new RegExp(`cannot be reached.*not a ${nut.name} ${identifier.noun}`),
      );
      assert.equal((await h.tables.portalRows.listByUser(ALICE)).length, 1, "no portal for it");
      assert.deepEqual(await h.say("start-chat 0170"), [
        `Usage: \`start-chat <${identifier.argument}>\``,
      ]);
    });

    it("the bot's words about reaching contacts and identity changes are the network's own (#16)", async function () {
      const network = h.core.network;
      // Interop reaches only contacts who allowed third-party chats; loopback reaches anyone.
      const reach = network.reachableContacts === undefined ? /third-party/ : /third-party apps/;
      const check = (text: string | undefined, what: string) =>
        network.reachableContacts === undefined
          ? assert.doesNotMatch(text ?? "", reach, what)
          : assert.match(text ?? "", reach, what);
      check(h.matrix.notices(MGMT)[0], "the welcome");
      const help = (await h.say("help")).join("\n");
      check(
        help.split("\n").find((line) => line.includes("start-chat")),
        "start-chat's help",
      );
      // How many messages a report may disclose is the network's (interop: 5, §16.2).
      if (network.reportDisclosureLimit === undefined) assert.doesNotMatch(help, /report .*\[0-/);
      else assert.match(help, new RegExp(`report .*\\[0-${network.reportDisclosureLimit}\\]`));
      check((await h.say(`start-chat ${nut.nobody}`))[0], "the unreachable notice");
      // The core handles an identity change of any network that reports one.
      await h.network.report(ALICE, incoming("hi"));
      const room = await portalRoom();
      await h.network.report(ALICE, {
        kind: "identity-changed",
        contact: BOB_ID,
        verifiedMarkCleared: false,
      });
      const notice = h.matrix.lastNotice(room);
      assert.match(notice, new RegExp(`security code with ${SHOWN} changed`));
      if (network.identityChangeCauses === undefined) {
        assert.doesNotMatch(notice, /phone|reinstall/, "no other network's causes");
      } else {
        assert.match(notice, /This happens when they reinstall WhatsApp or switch phones;/);
      }
      assert.match(notice, new RegExp(`\`${literal(network.commandPrefix)} verify\``));
    });

    it("the contact's first reply accepts the chat request and clears the pending topic", async function () {
      await nut.addUser(h.network, nut.bob);
      await h.say(`start-chat ${BOB}`);
      const room = await portalRoom();
      await h.network.report(ALICE, incoming("hi back"));
      assert.equal((await h.tables.portalRows.get(ALICE, BOB_ID))?.requestState, "accepted");
      assert.ok(h.matrix.calls.includes(`topic ${room} ""`));
      assert.match(h.matrix.lastNotice(room), /accepted your chat request/);
    });

    // The gatekeeper accepts only a request a first message opened; start-chat sends none.
    withHooks(nut, "no request to accept")(
      "request-accepted from the network also accepts the pending chat",
      async function () {
        await nut.addUser(h.network, nut.bob);
        await h.say(`start-chat ${BOB}`);
        await h.network.report(ALICE, { kind: "request-accepted", contact: BOB_ID });
        assert.equal((await h.tables.portalRows.get(ALICE, BOB_ID))?.requestState, "accepted");
      },
    );

    it("a first message from an unknown number arrives as an explained request invite, from the ghost", async function () {
      await h.network.report(ALICE, incoming("hello, I am Bob", true));
      const room = await portalRoom();
      const info = h.matrix.rooms.get(room);
      assert.equal(info?.creator, GHOST);
      assert.equal(info?.name, `Message request: ${nut.bob.shown}`);
      const prefix = h.core.network.commandPrefix;
      assert.match(
        info?.topic ?? "",
        new RegExp(
          `Join to accept.*reject the invitation to decline.*${prefix} block.*${prefix} report`,
        ),
      );
      const posted = h.matrix.events.find((e) => e.kind === "content");
      assert.equal(posted?.sender, GHOST);
      assert.equal(posted?.text, "hello, I am Bob");
      assert.equal(posted?.room, room);
      assert.equal(
        (await h.tables.portalRows.get(ALICE, BOB_ID))?.requestState,
        "incoming-pending",
      );
    });

    it("joining a request accepts it and turns the room into an ordinary chat", async function () {
      await h.network.report(ALICE, incoming("hello", true));
      const portal = await h.tables.portalRows.get(ALICE, BOB_ID);
      assert.ok(portal);
      await h.core.router.portals.onUserMembership(portal, "join");
      const after = await h.tables.portalRows.get(ALICE, BOB_ID);
      assert.equal(after?.requestState, "accepted");
      assert.equal(after?.userMembership, "join");
      assert.ok(h.matrix.calls.includes(`name ${portal.roomId} ""`));
      assert.match(
        h.matrix.lastNotice(portal.roomId as RoomId),
        /You accepted the message request/,
      );
    });

    it("rejecting a request invite declines it and the bot offers block and report", async function () {
      await h.network.report(ALICE, incoming("buy now", true));
      const portal = await h.tables.portalRows.get(ALICE, BOB_ID);
      assert.ok(portal);
      await h.core.router.portals.onUserMembership(portal, "leave");
      assert.equal((await h.tables.portalRows.get(ALICE, BOB_ID))?.requestState, "declined");
      const notice = h.matrix.lastNotice(MGMT);
      assert.match(notice, new RegExp(`declined the message request from ${SHOWN}`));
      assert.match(notice, new RegExp(`block ${SHOWN}`));
      assert.match(notice, /report/);
      assert.deepEqual(
        h.network.actions.filter((a) => a.startsWith("block")),
        [],
        "decline is silent",
      );
    });

    it("a portal the user left gets the contact's next message and a new invite to the same room", async function () {
      await h.network.report(ALICE, incoming("first"));
      const portal = await h.tables.portalRows.get(ALICE, BOB_ID);
      assert.ok(portal?.roomId);
      await h.core.router.portals.onUserMembership(portal, "join");
      await h.core.router.portals.onUserMembership({ ...portal, userMembership: "join" }, "leave");
      await h.network.report(ALICE, incoming("are you there?"));
      const last = h.matrix.events.filter((e) => e.kind === "content").at(-1);
      assert.equal(last?.room, portal.roomId, "posted into the same room");
      assert.equal(last?.text, "are you there?");
      assert.ok(h.matrix.calls.includes(`invite ${portal.roomId} ${ALICE} by ${GHOST}`));
      assert.equal(h.matrix.calls.filter((c) => c.startsWith("create-portal")).length, 1);
      assert.equal((await h.tables.portalRows.get(ALICE, BOB_ID))?.userMembership, "invite");
    });

    it("two first messages reported at once make one room, and a concurrent redelivery posts once", async function () {
      const first = incoming("one", true);
      const second = incoming("two", true);
      await Promise.all([
        h.network.report(ALICE, first),
        h.network.report(ALICE, second),
        h.network.report(ALICE, first),
      ]);
      assert.equal(h.matrix.calls.filter((c) => c.startsWith("create-portal")).length, 1);
      assert.deepEqual(
        h.matrix.events.filter((e) => e.kind === "content").map((e) => e.text),
        ["one", "two"],
      );
    });

    it("the same network message reported twice is posted once", async function () {
      const event = incoming("once");
      await h.network.report(ALICE, event);
      await h.network.report(ALICE, event);
      assert.equal(h.matrix.events.filter((e) => e.text === "once").length, 1);
    });

    it("a reply, an edit and a retraction from the contact refer to the bridged event", async function () {
      const first = incoming("original");
      await h.network.report(ALICE, first);
      const original = h.matrix.events.find((e) => e.text === "original");
      await h.network.report(ALICE, {
        ...incoming("a reply"),
        replyTo: { author: BOB_ID, id: first.id },
      });
      assert.equal(h.matrix.events.find((e) => e.text === "a reply")?.replyTo, original?.eventId);
      await h.network.report(ALICE, {
        kind: "edit",
        from: BOB_ID,
        target: { author: BOB_ID, id: first.id },
        content: text("edited"),
        order: 99,
      });
      assert.equal(h.matrix.events.find((e) => e.text === "edited")?.edits, original?.eventId);
      if (!nut.supports.retract) return;
      await h.network.report(ALICE, {
        kind: "retract",
        from: BOB_ID,
        target: { author: BOB_ID, id: first.id },
      });
      assert.ok(
        h.matrix.calls.some((c) => c.startsWith("redact") && c.includes(original?.eventId ?? "?")),
      );
    });

    it("a Matrix message in the portal reaches the network and is mapped; a reply refers to the contact's message", async function () {
      const first = incoming("question?");
      await h.network.report(ALICE, first);
      const portal = await h.tables.portalRows.get(ALICE, BOB_ID);
      assert.ok(portal);
      const theirs = h.matrix.events.find((e) => e.text === "question?")?.eventId as EventId;
      await h.core.router.fromMatrix.message(
        ALICE,
        portal,
        eventId("$mine1"),
        text("answer!"),
        theirs,
      );
      await h.network.settled();
      assert.equal(h.network.sent.length, 1);
      assert.equal(h.network.sent[0]?.to, BOB_ID);
      assert.deepEqual(h.network.sent[0]?.replyTo, { author: BOB_ID, id: first.id });
      assert.equal(
        (await h.tables.messages.byEvent(eventId("$mine1")))?.remoteId,
        h.network.sent[0]?.id,
      );
      await h.core.router.fromMatrix.message(ALICE, portal, eventId("$mine1"), text("answer!"));
      await h.network.settled();
      assert.equal(h.network.sent.length, 1, "the same Matrix event is sent once");
    });

    it("replying to a message request accepts it", async function () {
      await h.network.report(ALICE, incoming("hi", true));
      const portal = await h.tables.portalRows.get(ALICE, BOB_ID);
      assert.ok(portal);
      await h.core.router.fromMatrix.message(ALICE, portal, eventId("$r1"), text("hi!"));
      assert.equal((await h.tables.portalRows.get(ALICE, BOB_ID))?.requestState, "accepted");
    });

    withHooks(nut, "refusing a send and a send-failed on demand are the fakes' hooks")(
      "a send the network refuses, and a later send-failed, are answered as replies to the event",
      async function () {
        await h.network.report(ALICE, incoming("hi"));
        const portal = await h.tables.portalRows.get(ALICE, BOB_ID);
        assert.ok(portal?.roomId);
        refuseSends(h, true);
        await h.core.router.fromMatrix.message(ALICE, portal, eventId("$m1"), text("spam"));
        const refused = h.matrix.events.at(-1);
        assert.equal(refused?.replyTo, "$m1");
        assert.match(refused?.text ?? "", /Not sent: (you are sending too fast|bob@loop is not)/);
        refuseSends(h, false);
        await h.core.router.fromMatrix.message(ALICE, portal, eventId("$m2"), text("ok"));
        const id = h.network.sent.at(-1)?.id;
        assert.ok(id);
        await h.network.report(ALICE, {
          kind: "send-failed",
          target: { author: "me" as never, id },
          reason: { code: "blocked", message: "refused" },
        });
        const failure = h.matrix.events.at(-1);
        assert.equal(failure?.replyTo, "$m2");
        assert.match(failure?.text ?? "", /Not delivered: the recipient does not accept/);
      },
    );

    withHooks(nut, "a verified mark and an undecryptable message on demand are the fakes' hooks")(
      "identity changes and undecryptable messages are explained in the portal",
      async function () {
        if (!nut.supports.safetyNumbers) this.skip(); // no encryption, no identities to change
        await h.network.report(ALICE, incoming("hi"));
        const room = await portalRoom();
        await h.network.report(ALICE, {
          kind: "identity-changed",
          contact: BOB_ID,
          verifiedMarkCleared: true,
        });
        assert.match(
          h.matrix.lastNotice(room),
          new RegExp(`security code with ${SHOWN} changed.*no longer marked as verified`),
        );
        await h.network.report(ALICE, {
          kind: "undecryptable",
          from: BOB_ID,
          id: "x" as RemoteMessageId,
          sentAt: new Date(0),
        });
        assert.match(h.matrix.lastNotice(room), /could not be decrypted/);
        // The one time format of notices (issue 14: ISO here, HH:MM:SS (UTC) elsewhere).
        assert.match(h.matrix.lastNotice(room), /\(sent 1970-01-01 00:00:00 UTC\)/);
      },
    );

    // The real connector retries a failed hand-over itself: its report never rejects.
    withHooks(nut, "a report that rejects and the same change id twice")(
      "an identity change reported again after a failure posts one notice per change (#16)",
      async function () {
        if (!nut.supports.safetyNumbers) this.skip();
        await h.network.report(ALICE, incoming("hi"));
        const room = await portalRoom();
        const change = {
          kind: "identity-changed" as const,
          contact: BOB_ID,
          verifiedMarkCleared: false,
          changeId: "change-1",
        };
        const changed = () => h.matrix.notices(room).filter((n) => /security code/.test(n));
        // The homeserver fails the notice: the handler fails, and the network reports it again.
        h.matrix.noticeFailures.push(new Error("M_UNKNOWN (500)"));
        await assert.rejects(h.network.report(ALICE, change));
        assert.equal(changed().length, 0);
        await h.network.report(ALICE, change);
        assert.equal(changed().length, 1, "posted after the failure");
        // Handled, but the network could not record that (its database failed): reported again.
        await h.network.report(ALICE, change);
        assert.equal(changed().length, 1, "the same change is not posted twice");
        await h.network.report(ALICE, { ...change, changeId: "change-2" });
        assert.equal(changed().length, 2, "a later change is");
        // Refused for good: handled (not retried for ever, which would hold back Bob's messages).
        h.matrix.noticeFailures.push(new MatrixRefusedError("M_FORBIDDEN", 403, "not in the room"));
        await h.network.report(ALICE, { ...change, changeId: "change-3" });
        assert.equal(changed().length, 2);
      },
    );

    it("a call arrives as content from the ghost; read and typing are shown by the ghost", async function () {
      await h.network.report(ALICE, {
        ...incoming(""),
        content: { type: "call", media: "audio", outcome: "missed" },
      });
      const room = await portalRoom();
      assert.equal(h.matrix.events.at(-1)?.content?.type, "call");
      await acceptIfRequest(h, BOB_ID);
      await h.network.report(ALICE, { kind: "typing", from: BOB_ID, typing: true });
      assert.ok(h.matrix.calls.includes(`typing ${room} ${GHOST} true`));
    });

    it("while a request is pending, the contact's typing is not shown (P17)", async function () {
      await h.network.report(ALICE, incoming("hello", true));
      const room = await portalRoom();
      await h.network.report(ALICE, { kind: "typing", from: BOB_ID, typing: true });
      assert.ok(!h.matrix.calls.includes(`typing ${room} ${GHOST} true`));
      const portal = await h.tables.portalRows.get(ALICE, BOB_ID);
      assert.ok(portal);
      await h.core.router.portals.onUserMembership(portal, "join");
      await h.network.report(ALICE, { kind: "typing", from: BOB_ID, typing: true });
      assert.ok(h.matrix.calls.includes(`typing ${room} ${GHOST} true`), "shown once accepted");
    });

    it("a logged-out state is told in the management room once", async function () {
      const state = {
        kind: "state" as const,
        state: { code: "logged-out" as const, message: "The number was bound elsewhere." },
      };
      await h.network.report(ALICE, state);
      await h.network.report(ALICE, state);
      assert.equal(
        h.matrix.notices(MGMT).filter((n) => n.includes("You were logged out")).length,
        1,
      );
    });
  });
}

for (const nut of NETWORKS.filter((n) => n.id === "fake")) {
  describe(`core: an identity change the network holds sending for, on ${nut.label}`, function () {
    it("tells the user to confirm the new code with the network's verify command", async function () {
      const h = await createCoreOn(nut);
      try {
        await nut.logIn(h);
        await h.network.report(ALICE, {
          kind: "message",
          from: nut.bob.id,
          id: "held-1" as RemoteMessageId,
          sentAt: new Date(0),
          order: 1,
          content: { type: "text", text: { text: "hi", spans: [] } },
          isRequest: false,
        });
        const room = (await h.tables.portalRows.get(ALICE, nut.bob.id))?.roomId as RoomId;
        await h.network.report(ALICE, {
          kind: "identity-changed",
          contact: nut.bob.id,
          verifiedMarkCleared: false,
          sendingHeld: true,
        });
        assert.match(
          h.matrix.lastNotice(room),
          /are held until you check the new code with `!wa verify`/,
        );
      } finally {
        await h.dispose();
      }
    });
  });
}
