import assert from "node:assert/strict";
import type { MatrixEvent } from "matrix-js-sdk";
import { bodyOf, E2e, element, eventually, type Received, type WhatsAppUser } from "./harness.js";

describe("e2e: replies, edits, deletions, reactions and what cannot be bridged", function () {
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

  /** A's text on Matrix, with its origin-id on WhatsApp. */
  async function fromA(text: string): Promise<{ event: MatrixEvent; id: string }> {
    const id = await e.from(a, { type: "text", text });
    const event = await e.ghostSays(portal, `A's "${text}"`, (c) => c["body"] === text);
    return { event, id };
  }

  /** My text at A, with its event id on Matrix. */
  async function fromMe(
    text: string,
    extra: Record<string, unknown> = {},
  ): Promise<{ eventId: string; got: Received; id: string }> {
    const eventId = await e.text(portal, text, extra);
    const got = await e.received(a, `"${text}" at A`, (r) => bodyOf(r) === text);
    return { eventId, got, id: String(got.data["originId"]) };
  }

  const reactionsAt = async (targetId: string): Promise<string[][]> =>
    (await a.received("message"))
      .map((r) => element(r, "reactions"))
      .filter((r) => r !== undefined && r["id"] === targetId)
      .map((r) => r?.["reactions"] as string[]);

  it("a reply goes each way with its reference", async function () {
    const theirs = await fromA("are you coming tonight?");
    const mine = await fromMe("yes!", {
      "m.relates_to": { "m.in_reply_to": { event_id: theirs.event.getId() } },
    });
    const reply = element(mine.got, "reply");
    assert.equal(reply?.["id"], theirs.id);
    assert.equal(reply?.["author"], a.jid);

    await e.from(a, {
      type: "reply",
      text: "great",
      replyTo: { id: mine.id, author: e.myJid },
    });
    const event = await e.ghostSays(portal, "A's reply", (c) => c["body"] === "great");
    assert.deepEqual(event.getContent()["m.relates_to"], {
      "m.in_reply_to": { event_id: mine.eventId },
    });
  });

  it("an edit goes each way and replaces the text", async function () {
    const mine = await fromMe("see you at 8");
    await e.send(portal, {
      msgtype: "m.text",
      body: "* see you at 9",
      "m.new_content": { msgtype: "m.text", body: "see you at 9" },
      "m.relates_to": { rel_type: "m.replace", event_id: mine.eventId },
    });
    const edit = await e.received(a, "my edit", (r) => element(r, "replace") !== undefined);
    assert.equal(element(edit, "replace")?.["id"], mine.id);
    assert.equal(bodyOf(edit), "see you at 9");

    const theirs = await fromA("meet at the statoin");
    await e.from(a, { type: "edit", id: theirs.id, text: "meet at the station" });
    await eventually(() => {
      const shown = e.client.getRoom(portal)?.findEventById(theirs.event.getId() ?? "");
      return shown?.getContent()["body"] === "meet at the station" ? true : undefined;
    }, "A's edit applied to the original on Matrix");
    const replace = await e.ghostSays(
      portal,
      "A's m.replace",
      (c) => (c["m.relates_to"] as { rel_type?: string } | undefined)?.rel_type === "m.replace",
    );
    assert.equal(replace.getContent()["m.relates_to"]?.event_id, theirs.event.getId());
  });

  it("a redaction deletes at WhatsApp and a retraction redacts on Matrix", async function () {
    const mine = await fromMe("wrong chat, sorry");
    await e.client.redactEvent(portal, mine.eventId);
    await e.received(a, "my retraction", (r) => element(r, "retract")?.["id"] === mine.id);

    const theirs = await fromA("oops");
    await e.from(a, { type: "retract", id: theirs.id });
    await eventually(
      () =>
        e.client
          .getRoom(portal)
          ?.findEventById(theirs.event.getId() ?? "")
          ?.isRedacted()
          ? true
          : undefined,
      "A's message redacted on Matrix",
    );
  });

  it("reactions go to WhatsApp as the full set, and a redaction removes one", async function () {
    const theirs = await fromA("pizza tonight?");
    const target = theirs.event.getId() ?? "";
    const react = (key: string) =>
      e.send(
        portal,
        { "m.relates_to": { rel_type: "m.annotation", event_id: target, key } },
        "m.reaction",
      );
    const thumbs = await react("👍");
    await eventually(
      async () => ((await reactionsAt(theirs.id)).length >= 1 ? true : undefined),
      "the first set",
    );
    await react("❤️");
    await eventually(
      async () => ((await reactionsAt(theirs.id)).length >= 2 ? true : undefined),
      "the second set",
    );
    await e.client.redactEvent(portal, thumbs);
    const sets = await eventually(async () => {
      const s = await reactionsAt(theirs.id);
      return s.length >= 3 ? s : undefined;
    }, "the set after the redaction");
    assert.deepEqual(sets, [["👍"], ["👍", "❤️"], ["❤️"]]);
  });

  it("WhatsApp reaction sets become annotations, and a smaller set redacts the rest", async function () {
    const mine = await fromMe("I passed the exam");
    const ghost = e.ghostOf(a);
    const shown = (): string[] =>
      e
        .timeline(portal)
        .filter(
          (ev) =>
            ev.getType() === "m.reaction" &&
            ev.getSender() === ghost &&
            !ev.isRedacted() &&
            ev.getRelation()?.event_id === mine.eventId,
        )
        .map((ev) => String(ev.getRelation()?.key))
        .sort();
    await e.from(a, {
      type: "reaction",
      target: { id: mine.id, author: e.myJid },
      reactions: ["🎉", "😂"],
    });
    await eventually(() => (shown().length === 2 ? true : undefined), "two annotations");
    assert.deepEqual(shown(), ["🎉", "😂"].sort());
    await e.from(a, {
      type: "reaction",
      target: { id: mine.id, author: e.myJid },
      reactions: ["🎉"],
    });
    await eventually(() => (shown().length === 1 ? true : undefined), "one annotation left");
    assert.deepEqual(shown(), ["🎉"]);
    await e.from(a, { type: "reaction", target: { id: mine.id, author: e.myJid }, reactions: [] });
    await eventually(() => (shown().length === 0 ? true : undefined), "no annotation left");
  });

  it("what cannot be bridged gets a visible notice in the room", async function () {
    const before = e.timeline(portal).length;
    const poll = await e.send(
      portal,
      {
        "org.matrix.msc3381.poll.start": {
          question: { "org.matrix.msc1767.text": "Lunch?" },
          kind: "org.matrix.msc3381.poll.disclosed",
          max_selections: 1,
          answers: [
            { id: "y", "org.matrix.msc1767.text": "yes" },
            { id: "n", "org.matrix.msc1767.text": "no" },
          ],
        },
        "org.matrix.msc1767.text": "Lunch?\n1. yes\n2. no",
      },
      "org.matrix.msc3381.poll.start",
    );
    const notice = await e.botSays(portal, /./, before);
    assert.equal(notice.getContent()["msgtype"], "m.notice");
    assert.equal(notice.getContent()["m.relates_to"]?.["m.in_reply_to"]?.event_id, poll);

    const odd = await e.send(portal, { msgtype: "org.example.custom", body: "" });
    const second = await e.sees(
      portal,
      "a notice about the custom message",
      (ev) =>
        ev.getSender() === e.bot &&
        ev.getContent()["m.relates_to"]?.["m.in_reply_to"]?.event_id === odd,
    );
    assert.match(String(second.getContent()["body"]), /not sent|cannot/i);
  });
});
