import assert from "node:assert/strict";
import type { RemoteMessageId } from "../../src/core/network.js";
import { parseStyling } from "../../src/interop/convert/styling.js";
import type { MatrixUserId } from "../../src/util/ids.js";
import { contactId } from "../core/fakes/network.js";
import { enc } from "../homeserver/testHelpers.js";
import { BOT, type MatrixHarness } from "./harness.js";
import { BOB, startPortalWorld, type PortalWorld } from "./portal-world.js";

/**
 * Issue 13's numbered cases, each through the whole bridge against the test homeserver (which
 * refuses events over 64 KiB with 413 M_TOO_LARGE, as Synapse does). After each, one legitimate
 * message each way must still arrive, exactly once.
 */
describe("no single event stops the bridge", function () {
  this.timeout(120_000);
  let w: PortalWorld;
  let h: MatrixHarness;
  let alice: MatrixUserId;
  let portalBob: string;
  let portalCarol: string;
  let seq = 0;
  const botSays = (room: string, pattern: RegExp, after = 0) => w.botSays(room, pattern, after);
  const command = (text: string, answer: RegExp) => w.command(text, answer);
  const fromContact = (phone: string, text: string) => w.fromContact(phone, text);
  const send = (room: string, type: string, content: Record<string, unknown>) =>
    w.send(room, type, content);
  const push = (events: Record<string, unknown>[]) => w.push(events);
  const legitimateTrafficFlows = (label: string) => w.legitimateTrafficFlows(label);

  before(async function () {
    w = await startPortalWorld({
      ingressPolicy: { initialDelayMs: 20, maxDelayMs: 100, maxAttempts: 3 },
    });
    ({ h, alice, portalBob, portalCarol } = w);
  });
  after(async function () {
    await w?.dispose();
  });

  it("1. a 40,000-character unknown command and msgtype get capped notices; nothing stalls", async function () {
    const answer = await command("x".repeat(40_000), /^Unknown command/);
    assert.ok(answer.length < 200, `the answer is capped (${answer.length} characters)`);
    await send(portalBob, "m.room.message", { msgtype: "y".repeat(40_000), body: "hi" });
    const notice = await botSays(portalBob, /^Not sent: msgtype y+…/);
    assert.ok(notice.length < 300, `the notice is capped (${notice.length} characters)`);
    await legitimateTrafficFlows("a huge command");
  });

  it("2. a rescinded invite and room or event ids with a space are permanent, not a 500", async function () {
    const invite = {
      type: "m.room.member",
      state_key: BOT,
      sender: h.alice.userId,
      room_id: "!rescinded:example.org",
      event_id: `$invite-${++seq}`,
      content: { membership: "invite", is_direct: true },
    };
    assert.equal(await push([invite]), 200);
    const spaced = (room: string, id: string) => ({
      type: "m.room.message",
      sender: h.alice.userId,
      room_id: room,
      event_id: id,
      content: { msgtype: "m.text", body: "hello" },
    });
    assert.equal(await push([spaced("!a room:example.org", `$ok-${++seq}`)]), 200);
    assert.equal(await push([spaced(portalBob, `$an event ${++seq}`)]), 200);
    await legitimateTrafficFlows("unusable ids");
  });

  it("3. WhatsApp '*b* ' x 3900 is posted fitted; a long text is truncated with a note; a refused delivery becomes a notice", async function () {
    const styled = parseStyling("*b* ".repeat(3900)).withoutMarkers;
    await h.network.report(alice, {
      kind: "message",
      from: contactId(BOB),
      id: `bold-${++seq}` as RemoteMessageId,
      sentAt: new Date(),
      order: ++seq,
      content: { type: "text", text: styled },
      isRequest: false,
    });
    const bold = (await h.messages(portalBob)).find((m) => m.body === styled.text);
    assert.ok(bold, "the whole text arrived");
    assert.equal(bold.content["formatted_body"], undefined, "the HTML rendering was dropped");

    await fromContact(BOB, "z".repeat(70_000));
    const long = (await h.messages(portalBob)).find((m) => m.body.startsWith("zzzz"));
    assert.match(String(long?.body), /… \[truncated: \d+ more characters\]$/);
    assert.ok(Buffer.byteLength(JSON.stringify(long?.content)) < 65_536);

    // The homeserver refuses the ghost's next send for good (400): a notice, then the next flows.
    let refusals = 1;
    const clear = h.hs.failClientRequests(({ method, path }) =>
      method === "PUT" && path.includes("/send/m.room.message/") && refusals-- > 0
        ? { status: 400 }
        : undefined,
    );
    try {
      await fromContact(BOB, "refused by the homeserver");
    } finally {
      clear();
    }
    await botSays(portalBob, /sent a message that could not be shown here.*M_UNKNOWN/);
    await legitimateTrafficFlows("an oversized rendering");
  });

  it("4. a reply, edit or deletion naming another portal's event is refused with a notice; nothing leaves", async function () {
    const inCarol = await send(portalCarol, "m.room.message", {
      msgtype: "m.text",
      body: "for Carol",
    });
    await h.waitFor(
      async () => ((await h.tables.messages.byEvent(inCarol as never)) ? true : undefined),
      "Carol's message bridged",
    );
    const sentBefore = h.network.sent.length;
    const actionsBefore = h.network.actions.length;
    await send(portalBob, "m.room.message", {
      msgtype: "m.text",
      body: "a reply across chats",
      "m.relates_to": { "m.in_reply_to": { event_id: inCarol } },
    });
    await botSays(portalBob, /reply refers to a message of another chat/);
    await send(portalBob, "m.room.message", {
      msgtype: "m.text",
      body: "* edited",
      "m.new_content": { msgtype: "m.text", body: "edited" },
      "m.relates_to": { rel_type: "m.replace", event_id: inCarol },
    });
    await botSays(portalBob, /edit refers to a message of another chat/);
    assert.equal(
      await push([
        {
          type: "m.room.redaction",
          sender: h.alice.userId,
          room_id: portalBob,
          event_id: `$redact-${++seq}`,
          redacts: inCarol,
          content: { redacts: inCarol },
        },
      ]),
      200,
    );
    await botSays(portalBob, /deletion refers to a message of another chat/);
    assert.equal(h.network.sent.length, sentBefore, "nothing was sent");
    assert.deepEqual(h.network.actions.slice(actionsBefore), [], "no edit or retraction");
    // Carol's own deletion of it still goes out.
    const redacted = await h.asAlice(
      "PUT",
      `/_matrix/client/v3/rooms/${enc(portalCarol)}/redact/${enc(inCarol)}/r${++seq}`,
      {},
    );
    assert.equal(redacted.status, 200);
    await h.waitFor(
      async () => (h.network.actions.some((a) => a.startsWith("retract")) ? true : undefined),
      "the retraction in Carol's chat",
    );
    await legitimateTrafficFlows("cross-portal relations");
  });

  it("5. a refused reaction key is not stored; a key over 256 characters gets a notice", async function () {
    const target = await send(portalBob, "m.room.message", {
      msgtype: "m.text",
      body: "react here",
    });
    await h.waitFor(
      async () => ((await h.tables.messages.byEvent(target as never)) ? true : undefined),
      "the message bridged",
    );
    h.network.refuseReaction = (key) => key.includes(" ");
    const react = (key: string) =>
      send(portalBob, "m.reaction", {
        "m.relates_to": { rel_type: "m.annotation", event_id: target, key },
      });
    await react("hello world");
    await botSays(portalBob, /"hello world" is not a single emoji/);
    await react("👍");
    await h.waitFor(
      async () => (h.network.actions.some((a) => a.endsWith("[👍]")) ? true : undefined),
      "the thumbs-up alone at the network",
    );
    await react("k".repeat(300));
    await botSays(portalBob, /^Not sent: reaction has no valid key/);
    h.network.refuseReaction = undefined;
    await legitimateTrafficFlows("bad reactions");
  });

  it("a permanent failure in one portal delays another portal's message by less than a second", async function () {
    // Every bot notice into Carol's portal is refused for good (400), so handling her next
    // unbridgeable event fails permanently.
    const clear = h.hs.failClientRequests(({ method, path, appserviceId }) =>
      appserviceId !== undefined &&
      method === "PUT" &&
      path.includes(enc(portalCarol)) &&
      path.includes("/send/")
        ? { status: 400 }
        : undefined,
    );
    try {
      await send(portalCarol, "m.room.message", { msgtype: "org.example.unknown", body: "x" });
      const text = `to Bob beside a failing chat ${++seq}`;
      const sentAt = Date.now();
      await h.say(portalBob, text);
      await h.waitFor(
        async () =>
          h.network.sent.some((m) => m.content.type === "text" && m.content.text.text === text)
            ? true
            : undefined,
        "Bob's message at the network",
      );
      assert.ok(Date.now() - sentAt < 1000, `delayed ${Date.now() - sentAt} ms`);
    } finally {
      clear();
    }
    await legitimateTrafficFlows("a failing portal");
  });

  describe("6. smaller items", function () {
    async function mediaFromContact(mimeType: string, bytes: Uint8Array, fileName: string) {
      const id = `media-${++seq}`;
      await h.network.report(alice, {
        kind: "message",
        from: contactId(BOB),
        id: id as RemoteMessageId,
        sentAt: new Date(),
        order: ++seq,
        content: {
          type: "media",
          media: {
            kind: "image",
            mimeType,
            size: bytes.length,
            fileName,
            width: 10,
            height: 10,
            open: async () =>
              (async function* () {
                yield bytes;
              })(),
          },
        },
        isRequest: false,
      });
      const event = (await h.messages(portalBob)).find((m) => m.body === fileName);
      assert.ok(event, `${fileName} arrived`);
      return event.content;
    }

    it("WhatsApp media is typed by its content: active types go as octet-stream files", async function () {
      const html = Buffer.from("<!DOCTYPE html><html><script>alert(1)</script></html>");
      const svg = Buffer.from("<svg xmlns='http://www.w3.org/2000/svg'><script>x()</script></svg>");
      const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0]);
      const asHtml = await mediaFromContact("text/html", html, "page.html");
      const asSvg = await mediaFromContact("image/svg+xml", svg, "picture.svg");
      const disguised = await mediaFromContact("image/png", html, "disguised.png");
      const mislabelled = await mediaFromContact("image/jpeg", png, "really.png");
      for (const content of [asHtml, asSvg, disguised]) {
        assert.equal(content["msgtype"], "m.file");
        assert.equal(
          (content["info"] as { mimetype: string }).mimetype,
          "application/octet-stream",
        );
      }
      assert.equal(mislabelled["msgtype"], "m.image");
      assert.equal((mislabelled["info"] as { mimetype: string }).mimetype, "image/png");
      await legitimateTrafficFlows("active media");
    });

    it("an attachment whose mxc is missing on the homeserver is refused saying so", async function () {
      await send(portalBob, "m.room.message", {
        msgtype: "m.file",
        body: "gone.txt",
        url: "mxc://example.org/doesnotexist",
        info: { mimetype: "text/plain", size: 10 },
      });
      await botSays(portalBob, /^Not sent: the attachment could not be found on the homeserver/);
      await legitimateTrafficFlows("a missing attachment");
    });

    it("bidirectional overrides and zero-width characters in a contact's name do not reach the label", async function () {
      await command(
        `name ${BOB} \u202Eevil\u200B\u2066Bob\u2069 👨\u200D👩`,
        /is now shown to you as/,
      );
      const member = await h.asAlice(
        "GET",
        `/_matrix/client/v3/rooms/${enc(portalBob)}/state/m.room.member/${enc("@whatsapp_491701234567:example.org")}`,
      );
      assert.equal(member.json["displayname"], "evilBob 👨\u200D👩 · +49 170 1234567 (WhatsApp)");
      await legitimateTrafficFlows("a name with controls");
    });
  });
});
