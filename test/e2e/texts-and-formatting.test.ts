import assert from "node:assert/strict";
import { bodyOf, E2e, eventually, type WhatsAppUser } from "./harness.js";

describe("e2e: texts, formatting, notices, emotes, receipts and typing", function () {
  this.timeout(60_000);
  let e: E2e;
  let a: WhatsAppUser;
  let portal: string;

  before(async function () {
    e = await E2e.start();
    a = await e.whatsappUser("+491701111111");
    await e.login();
    portal = await e.openChat(a);
  });
  after(async function () {
    await e?.stop();
  });

  const ghostOf = (u: WhatsAppUser) => e.ghostOf(u);

  it("Matrix HTML arrives at WhatsApp as the spec's text styling, sanitised, mentions as text", async function () {
    const ghost = ghostOf(a);
    await e.text(portal, "plain fallback", {
      format: "org.matrix.custom.html",
      formatted_body:
        "<strong>bold</strong> <em>italic</em> <del>gone</del> <code>mono</code> " +
        `<a href="https://example.org/x">a link</a> hi <a href="https://matrix.to/#/${ghost}">Anna</a>` +
        "<script>alert('x')</script><img src=x onerror=alert(1)>" +
        "<pre><code>let x = 1;\n</code></pre><blockquote>quoted</blockquote>",
    });
    const got = await e.received(a, "the styled text", (r) => /bold/.test(bodyOf(r) ?? ""));
    const body = bodyOf(got) ?? "";
    assert.match(
      body,
      /^\*bold\* _italic_ ~gone~ `mono` a link \(https:\/\/example\.org\/x\) hi Anna/,
    );
    assert.match(body, /\n```\nlet x = 1;\n```\n/);
    assert.match(body, /\n> quoted$/);
    assert.doesNotMatch(body, /alert|<|onerror/, "script and attributes are dropped");
  });

  it("WhatsApp styling arrives on Matrix as formatted_body with the markers kept in body", async function () {
    const text =
      "*bold* _italic_ ~gone~ `mono` https://example.org/y <script>alert(1)</script>\n" +
      "```\ncode block\n```\n> a quote";
    await e.from(a, { type: "text", text });
    const event = await e.ghostSays(portal, "A's styled text", (c) =>
      String(c["body"]).includes("code block"),
    );
    const content = event.getContent();
    assert.equal(content["msgtype"], "m.text");
    assert.equal(content["body"], text, "the plain body keeps the markers (§13.1)");
    assert.equal(content["format"], "org.matrix.custom.html");
    const html = String(content["formatted_body"]);
    // The HTML shows the styling instead of the markers (issue 14, point 8).
    assert.match(html, /<(strong|b)>bold<\/(strong|b)>/);
    assert.match(html, /<(em|i)>italic<\/(em|i)>/);
    assert.match(html, /<(del|s|strike)>gone<\/(del|s|strike)>/);
    assert.match(html, /<code>mono<\/code>/);
    assert.match(html, /<pre><code>code block\n<\/code><\/pre>/);
    assert.match(html, /<blockquote>a quote<\/blockquote>/);
    // §13.1 has no link syntax: a URL stays text, which Matrix clients linkify themselves.
    assert.match(html, /https:\/\/example\.org\/y/);
    assert.doesNotMatch(html, /<script/, "HTML in the text is escaped, not rendered");
    assert.match(html, /&lt;script&gt;/);
  });

  it("an m.notice and an m.emote from Matrix arrive as texts", async function () {
    await e.send(portal, { msgtype: "m.notice", body: "automated reminder" });
    await e.received(a, "the notice", (r) => (bodyOf(r) ?? "").includes("automated reminder"));
    await e.send(portal, { msgtype: "m.emote", body: "waves" });
    const got = await e.received(a, "the emote", (r) => (bodyOf(r) ?? "").includes("waves"));
    assert.equal(bodyOf(got), "/me waves");
  });

  it("a missed call and a disappearing-messages setting from WhatsApp become notices", async function () {
    await e.from(a, {
      type: "call",
      callId: "b9548d57-5184-4cee-9a00-9a5c9b5d550b",
      media: "video",
      outcome: "missed",
    });
    const call = await e.ghostSays(portal, "the call notice", (c) =>
      /call/i.test(String(c["body"])),
    );
    assert.equal(call.getContent()["msgtype"], "m.notice");
    assert.match(String(call.getContent()["body"]), /missed video call/i);

    await e.from(a, { type: "disappearing", timer: 604800 });
    const notice = await e.sees(portal, "the disappearing-messages notice", (ev) =>
      /disappearing/i.test(String(ev.getContent()["body"])),
    );
    assert.equal(notice.getContent()["msgtype"], "m.notice");
    assert.match(String(notice.getContent()["body"]), /does not support disappearing messages/);
  });

  it("typing shows on both sides", async function () {
    await e.client.sendTyping(portal, true, 10_000);
    const typing = await e.received(a, "my typing", () => true, "chat-state");
    assert.equal(typing.data["state"], "composing");
    await e.from(a, { type: "typing", state: "composing" });
    await eventually(
      () => (e.client.getRoom(portal)?.getMember(ghostOf(a))?.typing === true ? true : undefined),
      "A typing on Matrix",
    );
  });

  it("a read receipt on a later event (a reaction) marks the contact's message before it", async function () {
    const id = await e.from(a, { type: "text", text: "react, then read" });
    const message = await e.ghostSays(portal, "A's text", (c) => c["body"] === "react, then read");
    const reactionId = await e.send(
      portal,
      {
        "m.relates_to": { rel_type: "m.annotation", event_id: message.getId(), key: "👍" },
      },
      "m.reaction",
    );
    const reaction = await e.sees(portal, "my reaction", (ev) => ev.getId() === reactionId);
    await e.client.sendReadReceipt(reaction);
    await e.received(a, "my read marker", (r) => JSON.stringify(r.data).includes(id), "displayed");
  });

  it("read receipts show on both sides", async function () {
    const id = await e.from(a, { type: "text", text: "read me" });
    const event = await e.ghostSays(portal, "A's text", (c) => c["body"] === "read me");
    await e.client.sendReadReceipt(event);
    await e.received(a, "my read marker", (r) => JSON.stringify(r.data).includes(id), "displayed");

    await e.text(portal, "did you read this?");
    const mine = await e.received(a, "my question", (r) => bodyOf(r) === "did you read this?");
    await e.from(a, {
      type: "displayed",
      ref: { id: String(mine.data["originId"]), author: e.myJid },
    });
    const question = await e.sees(
      portal,
      "my question",
      (ev) => ev.getContent()["body"] === "did you read this?",
    );
    await eventually(
      () =>
        e.client.getRoom(portal)?.getEventReadUpTo(ghostOf(a)) === question.getId()
          ? true
          : undefined,
      "A's read receipt on my question",
    );
  });
});
