import assert from "node:assert/strict";
import { bodyOf, E2e, eventually, type WhatsAppUser } from "./harness.js";

const WINDOW_SECONDS = 4;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** How long a marker or typing notification would take at most to cross, had it been sent. */
const QUIET_MS = 1500;

/**
 * Conformance items that live in the core, checked end to end: P17 (no read markers or typing
 * when the user turned them off, in either direction) and P22 (edits and retractions only from
 * the author and within the windows, §13.6, §13.7), with windows of a few seconds.
 */
describe("e2e: read markers and typing settings (P17), edit and retraction windows (P22)", function () {
  this.timeout(90_000);
  let e: E2e;
  let a: WhatsAppUser;
  let portal: string;

  before(async function () {
    e = await E2e.start("alice", {
      simulatorLimits: {
        "edit-window-seconds": WINDOW_SECONDS,
        "retract-window-seconds": WINDOW_SECONDS,
      },
    });
    a = await e.whatsappUser("+491701111111");
    await e.login();
    portal = await e.openChat(a);
  });
  after(async function () {
    await e?.stop();
  });

  const displayedAt = async (id: string) =>
    (await a.received("displayed")).filter((r) => JSON.stringify(r.data).includes(id));

  it("P17: with read receipts off, no read marker is sent or shown; back on, both are", async function () {
    assert.equal(await e.command("settings read-receipts off"), "read-receipts is now off.");
    const theirs = await e.from(a, { type: "text", text: "did you see this?" });
    const event = await e.ghostSays(portal, "A's text", (c) => c["body"] === "did you see this?");
    await e.client.sendReadReceipt(event);
    await e.text(portal, "mine, unread");
    const mine = await e.received(a, "my text", (r) => bodyOf(r) === "mine, unread");
    const mineEvent = await e.sees(
      portal,
      "my text",
      (ev) => ev.getContent()["body"] === "mine, unread",
    );
    await e.from(a, {
      type: "displayed",
      ref: { id: String(mine.data["originId"]), author: e.myJid },
    });
    await sleep(QUIET_MS);
    assert.deepEqual(await displayedAt(theirs), [], "no read marker sent");
    assert.notEqual(
      e.client.getRoom(portal)?.getEventReadUpTo(e.ghostOf(a)),
      mineEvent.getId(),
      "A's read marker is not shown",
    );

    assert.equal(await e.command("settings read-receipts on"), "read-receipts is now on.");
    const again = await e.from(a, { type: "text", text: "and now?" });
    const event2 = await e.ghostSays(portal, "A's second text", (c) => c["body"] === "and now?");
    await e.client.sendReadReceipt(event2);
    await eventually(
      async () => ((await displayedAt(again)).length > 0 ? true : undefined),
      "my read marker",
    );
  });

  it("P17: with typing off, typing is neither sent nor shown; back on, it is", async function () {
    assert.equal(await e.command("settings typing off"), "typing is now off.");
    const before = (await a.received("chat-state")).length;
    await e.client.sendTyping(portal, true, 10_000);
    await e.from(a, { type: "typing", state: "composing" });
    await sleep(QUIET_MS);
    assert.equal((await a.received("chat-state")).length, before, "my typing is not sent");
    assert.notEqual(
      e.client.getRoom(portal)?.getMember(e.ghostOf(a))?.typing,
      true,
      "A's typing is not shown",
    );
    await e.client.sendTyping(portal, false, 0);

    assert.equal(await e.command("settings typing on"), "typing is now on.");
    await e.client.sendTyping(portal, true, 10_000);
    await eventually(
      async () => ((await a.received("chat-state")).length > before ? true : undefined),
      "my typing",
    );
    await e.from(a, { type: "typing", state: "composing" });
    await eventually(
      () => (e.client.getRoom(portal)?.getMember(e.ghostOf(a))?.typing === true ? true : undefined),
      "A's typing",
    );
  });

  it("P22: edits and retractions of my message by the contact are ignored", async function () {
    await e.text(portal, "my words");
    const mine = await e.received(a, "my text", (r) => bodyOf(r) === "my words");
    const mineEvent = await e.sees(
      portal,
      "my text",
      (ev) => ev.getContent()["body"] === "my words",
    );
    const id = String(mine.data["originId"]);
    await e.from(a, { type: "edit", id, text: "words put in my mouth" });
    await e.from(a, { type: "retract", id });
    // A marker message after them: once it shows, the two before it were handled.
    await e.from(a, { type: "text", text: "after the forgeries" });
    await e.ghostSays(portal, "A's text after", (c) => c["body"] === "after the forgeries");
    const shown = e.client.getRoom(portal)?.findEventById(mineEvent.getId() ?? "");
    assert.equal(shown?.isRedacted(), false, "not redacted");
    assert.equal(shown?.getContent()["body"], "my words", "not edited");
    assert.equal(
      e.timeline(portal).filter((ev) => String(ev.getContent()["body"]).includes("words put"))
        .length,
      0,
    );
  });

  it("P22: late edits and retractions are ignored from WhatsApp and refused with a notice from Matrix", async function () {
    const theirs = await e.from(a, { type: "text", text: "typo: teh" });
    const theirEvent = await e.ghostSays(portal, "A's text", (c) => c["body"] === "typo: teh");
    const second = await e.from(a, { type: "text", text: "to be deleted too late" });
    const secondEvent = await e.ghostSays(
      portal,
      "A's other text",
      (c) => c["body"] === "to be deleted too late",
    );
    const mineId = await e.text(portal, "my tpyo");
    await e.received(a, "my text", (r) => bodyOf(r) === "my tpyo");
    const mine2 = await e.text(portal, "mine to delete too late");
    await e.received(a, "my other text", (r) => bodyOf(r) === "mine to delete too late");
    await sleep(WINDOW_SECONDS * 1000 + 1000);

    await e.from(a, { type: "edit", id: theirs, text: "typo: the" });
    await e.from(a, { type: "retract", id: second });
    await e.from(a, { type: "text", text: "after the late ones" });
    await e.ghostSays(portal, "A's text after", (c) => c["body"] === "after the late ones");
    const room = e.client.getRoom(portal);
    assert.equal(room?.findEventById(theirEvent.getId() ?? "")?.getContent()["body"], "typo: teh");
    assert.equal(room?.findEventById(secondEvent.getId() ?? "")?.isRedacted(), false);

    const editId = await e.send(portal, {
      msgtype: "m.text",
      body: "* my typo",
      "m.new_content": { msgtype: "m.text", body: "my typo" },
      "m.relates_to": { rel_type: "m.replace", event_id: mineId },
    });
    const editNotice = await e.sees(
      portal,
      "the notice about the late edit",
      (ev) =>
        ev.getSender() === e.bot &&
        ev.getContent()["m.relates_to"]?.["m.in_reply_to"]?.event_id === editId,
    );
    assert.match(String(editNotice.getContent()["body"]), /edits only within 4 seconds/);
    await e.client.redactEvent(portal, mine2);
    const redactNotice = await e.sees(
      portal,
      "the notice about the late deletion",
      (ev) =>
        ev.getSender() === e.bot &&
        ev.getContent()["m.relates_to"]?.["m.in_reply_to"]?.event_id === mine2,
    );
    assert.match(String(redactNotice.getContent()["body"]), /deletions only within 4 seconds/);
    const gotAtA = await a.received("message");
    assert.equal(gotAtA.filter((r) => bodyOf(r) === "my typo").length, 0, "no late edit sent");
  });
});
