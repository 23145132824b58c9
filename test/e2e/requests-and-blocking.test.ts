import assert from "node:assert/strict";
import type { MatrixEvent } from "matrix-js-sdk";
import { bodyOf, E2e, eventually, type WhatsAppUser } from "./harness.js";

/** The bot's notice that replies to `eventId`. */
function replyNotice(e: E2e, room: string, eventId: string, what: string): Promise<MatrixEvent> {
  return e.sees(
    room,
    what,
    (ev) =>
      ev.getSender() === e.bot &&
      ev.getContent()["m.relates_to"]?.["m.in_reply_to"]?.event_id === eventId,
  );
}

describe("e2e: message requests, blocking, refusals and identity changes", function () {
  this.timeout(90_000);
  let e: E2e;

  before(async function () {
    e = await E2e.start();
    await e.login();
  });
  after(async function () {
    await e?.stop();
  });

  async function requestFrom(user: WhatsAppUser, text: string): Promise<string> {
    const before = new Set(e.invites());
    await e.from(user, { type: "text", text });
    return e.newInvite(before, `the message request from ${user.phone}`);
  }

  it("a message request accepted by joining opens the chat both ways", async function () {
    const b = await e.whatsappUser("+491702222222");
    const room = await requestFrom(b, "hello, we met at the conference");
    assert.match(e.client.getRoom(room)?.name ?? "", /Message request/);
    await e.client.joinRoom(room);
    await e.ghostSays(
      room,
      "B's first message",
      (c) => c["body"] === "hello, we met at the conference",
    );
    await e.botSays(room, /accepted the message request/);
    await e.text(room, "nice to hear from you");
    await e.received(b, "my answer at B", (r) => bodyOf(r) === "nice to hear from you");
    await e.from(b, { type: "text", text: "likewise" });
    await e.ghostSays(room, "B's second message", (c) => c["body"] === "likewise");
  });

  it("a message request declined by rejecting the invite, then the contact blocked", async function () {
    const c = await e.whatsappUser("+491703333333");
    const room = await requestFrom(c, "cheap watches!!!");
    const mgmtBefore = e.timeline(e.mgmt).length;
    await e.client.leave(room);
    await e.botSays(e.mgmt, /declined.*block/is, mgmtBefore);
    assert.match(await e.command(`block ${c.phone}`), /^Blocked \+49 170 3333333/);
    assert.match(await e.command("contacts"), /\+49 170 3333333 \(.*blocked/);
    // The gatekeeper now refuses C's messages to the Matrix user (§16.1).
    const refused = await c.sendReporting({ type: "text", to: e.myJid, text: "are you there?" });
    assert.equal(refused.delivered, false, "the gatekeeper does not deliver to a blocker");
    assert.notEqual(e.client.getRoom(room)?.getMyMembership(), "invite", "no new invite");
    assert.match(await e.command(`unblock ${c.phone}`), /^Unblocked/);
  });

  it("a contact who blocks the Matrix user: the next message gets a failure notice replying to it", async function () {
    const a = await e.whatsappUser("+491701111111");
    const portal = await e.openChat(a);
    const blocked = await a.request("POST", `/users/${a.digits}/blocks`, { jid: e.myJid });
    assert.equal(blocked.status, 200);
    const eventId = await e.text(portal, "are we still on for Friday?");
    const notice = await replyNotice(e, portal, eventId, "the failure notice");
    assert.match(String(notice.getContent()["body"]), /does not accept your messages/);
    assert.equal(notice.getContent()["msgtype"], "m.notice");
  });

  it("a contact who stops accepting third-party chats: the next message fails visibly", async function () {
    const d = await e.whatsappUser("+491704444444");
    const portal = await e.openChat(d);
    const optOut = await d.request("PUT", `/users/${d.digits}/opt-in`, { optedIn: false });
    assert.equal(optOut.status, 200);
    const eventId = await e.text(portal, "hello again");
    const notice = await replyNotice(e, portal, eventId, "the failure notice");
    assert.match(String(notice.getContent()["body"]), /can no longer be reached/);
  });

  it("a text too large for WhatsApp fails visibly", async function () {
    const f = await e.whatsappUser("+491705555555");
    const portal = await e.openChat(f);
    const eventId = await e.text(portal, "x".repeat(20_000));
    const notice = await replyNotice(e, portal, eventId, "the failure notice");
    assert.match(String(notice.getContent()["body"]), /^Not (sent|delivered)/);
  });

  it("a contact's new identity key shows a notice in the chat", async function () {
    const g = await e.whatsappUser("+491706666666");
    const portal = await e.openChat(g);
    await e.from(g, { type: "text", text: "before" });
    await e.ghostSays(portal, "G's text", (c) => c["body"] === "before");
    const reset = await g.request("POST", `/users/${g.digits}/reset-identity`);
    assert.equal(reset.status, 200);
    await e.from(g, { type: "text", text: "new phone, who dis" });
    await e.ghostSays(
      portal,
      "G's text from the new device",
      (c) => c["body"] === "new phone, who dis",
    );
    const notice = await e.botSays(portal, /security code with \+49 170 6666666 changed/);
    assert.equal(notice.getContent()["msgtype"], "m.notice");
    // Messages still flow both ways after the change (identity_change: warn).
    await e.text(portal, "welcome back");
    await e.received(g, "my text after the change", (r) => bodyOf(r) === "welcome back");
  });

  it("block and unblock from the Matrix side reach the gatekeeper's block list", async function () {
    const h = await e.whatsappUser("+491707777777");
    const portal = await e.openChat(h);
    assert.match(await e.command(`block ${h.phone}`), /^Blocked/);
    const refused = await h.sendReporting({ type: "text", to: e.myJid, text: "hello?" });
    assert.equal(refused.delivered, false, "the gatekeeper does not deliver to a blocker");
    assert.match(await e.command(`unblock ${h.phone}`), /^Unblocked/);
    await e.from(h, { type: "text", text: "now?" });
    await e.ghostSays(portal, "H's text after unblocking", (c) => c["body"] === "now?");
  });
});

describe("e2e: a rate-limited message gets a failure notice", function () {
  this.timeout(60_000);
  let e: E2e;

  before(async function () {
    e = await E2e.start("bob", { simulatorLimits: { "messages-per-minute": 3 } });
    await e.login();
  });
  after(async function () {
    await e?.stop();
  });

  it("the message over the gatekeeper's per-minute limit is answered with a notice", async function () {
    const a = await e.whatsappUser("+491701111111");
    const portal = await e.openChat(a);
    const sent: string[] = [];
    for (let i = 0; i < 4; i++) sent.push(await e.text(portal, `burst ${i}`));
    const notice = await eventually(
      () =>
        e
          .timeline(portal)
          .find(
            (ev) =>
              ev.getSender() === e.bot &&
              sent.includes(String(ev.getContent()["m.relates_to"]?.["m.in_reply_to"]?.event_id)),
          ),
      "a notice replying to one of the burst",
    );
    assert.match(String(notice.getContent()["body"]), /sending too fast.*sends it again by itself/);
    const targets = e
      .timeline(portal)
      .filter((ev) => ev.getSender() === e.bot && /too fast/.test(String(ev.getContent()["body"])))
      .map((ev) => String(ev.getContent()["m.relates_to"]?.["m.in_reply_to"]?.event_id));
    assert.equal(new Set(targets).size, targets.length, "one notice per held message");
    assert.ok(targets.every((t) => sent.includes(t)));
  });
});
