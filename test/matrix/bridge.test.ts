import assert from "node:assert/strict";
import type { RemoteMessageId } from "../../src/core/network.js";
import { heapCompactionHolders } from "../../src/util/heap-compaction.js";
import { matrixUserId } from "../../src/util/ids.js";
import { contactId } from "../core/fakes/network.js";
import { failFirstPushes } from "../homeserver/index.js";
import { enc } from "../homeserver/testHelpers.js";
import { BOT, startMatrixHarness, type MatrixHarness } from "./harness.js";

const BOB = "+491701234567";
const GHOST = "@whatsapp_491701234567:example.org";

describe("the bridge against the test homeserver, with a fake network", function () {
  this.timeout(60_000);
  let h: MatrixHarness;
  let mgmt: string;

  before(async function () {
    h = await startMatrixHarness();
  });
  after(async function () {
    await h?.dispose();
  });

  async function botSays(room: string, pattern: RegExp, after = 0): Promise<string> {
    return h.waitFor(async () => {
      const found = (await h.messages(room))
        .slice(after)
        .find((m) => m.sender === BOT && pattern.test(m.body));
      return found?.body;
    }, `the bot to say ${pattern}`);
  }

  async function command(text: string, answer: RegExp): Promise<string> {
    const before = (await h.messages(mgmt)).length;
    await h.say(mgmt, text);
    return botSays(mgmt, answer, before);
  }

  it("a running bridge holds the idle heap compaction, and lets go of it when stopped", async function () {
    const held = heapCompactionHolders();
    assert.ok(held >= 1, "the running bridge does not hold the heap compaction");
    const second = await startMatrixHarness();
    assert.equal(heapCompactionHolders(), held + 1);
    await second.dispose();
    assert.equal(heapCompactionHolders(), held);
  });

  it("inviting the bot to a DM gets it joined and a greeting", async function () {
    const created = await h.asAlice("POST", "/_matrix/client/v3/createRoom", {
      invite: [BOT],
      is_direct: true,
      preset: "trusted_private_chat",
    });
    assert.equal(created.status, 200);
    mgmt = created.json["room_id"] as string;
    await botSays(mgmt, /Send `login` to start/);
  });

  it("the bot carries the display name from the config", async function () {
    const name = await h.waitFor(async () => {
      const profile = await h.asAlice("GET", `/_matrix/client/v3/profile/${enc(BOT)}/displayname`);
      return profile.json["displayname"] as string | undefined;
    }, "the bot's display name");
    assert.equal(name, "WhatsApp bridge bot");
  });

  it("login: the warning, then number, code and done", async function () {
    await command("login", /decrypts them to post them to Matrix/);
    await command("phone", /Send your phone number/);
    await command("+491709876543", /Send your code/);
    await command("123456", /^Logged in/);
    assert.ok(h.bridge.core.provisioning.logins.get(matrixUserId(h.alice.userId)));
  });

  it("a bad argument is answered with the usage line", async function () {
    assert.equal(await command("start-chat 0170", /^Usage/), "Usage: `start-chat <+number>`");
  });

  let portal: string;
  it("start-chat creates a DM portal from the ghost and invites the user", async function () {
    h.network.reachable.add(BOB);
    await command(`start-chat ${BOB}`, /Invited you to a new chat with \+49 170 1234567/);
    const row = await h.tables.portalRows.get(matrixUserId(h.alice.userId), contactId(BOB));
    assert.ok(row?.roomId);
    portal = row.roomId;
    const joined = await h.asAlice("POST", `/_matrix/client/v3/join/${enc(portal)}`, {});
    assert.equal(joined.status, 200, JSON.stringify(joined.json));
    const create = await h.asAlice(
      "GET",
      `/_matrix/client/v3/rooms/${enc(portal)}/state/m.room.create/`,
    );
    assert.equal(create.json["creator"] ?? GHOST, GHOST);
    const me = await h.asAlice(
      "GET",
      `/_matrix/client/v3/rooms/${enc(portal)}/state/m.room.member/${enc(h.alice.userId)}`,
    );
    assert.equal(me.json["membership"], "join");
    const ghost = await h.asAlice(
      "GET",
      `/_matrix/client/v3/rooms/${enc(portal)}/state/m.room.member/${enc(GHOST)}`,
    );
    assert.equal(ghost.json["displayname"], "+49 170 1234567 (WhatsApp)");
    await botSays(portal, /must accept your first message/);
    await h.hs.appserviceIdle(h.appserviceId);
    assert.equal(
      await h.tables.users.get(matrixUserId(GHOST)),
      undefined,
      "the ghost's invite of the bot was not taken for a user's",
    );
  });

  it("the portal sits in the user's WhatsApp space, and a local name shows only in the portal", async function () {
    const user = await h.tables.users.get(matrixUserId(h.alice.userId));
    assert.ok(user?.spaceRoom);
    const joined = await h.asAlice("POST", `/_matrix/client/v3/join/${enc(user.spaceRoom)}`, {});
    assert.equal(joined.status, 200);
    const child = await h.asAlice(
      "GET",
      `/_matrix/client/v3/rooms/${enc(user.spaceRoom)}/state/m.space.child/${enc(portal)}`,
    );
    assert.deepEqual(child.json["via"], ["example.org"]);
    await command(`name ${BOB} Bob`, /shown to you as "Bob"/);
    const member = await h.asAlice(
      "GET",
      `/_matrix/client/v3/rooms/${enc(portal)}/state/m.room.member/${enc(GHOST)}`,
    );
    assert.equal(member.json["displayname"], "Bob · +49 170 1234567 (WhatsApp)");
    const profile = await h.asAlice("GET", `/_matrix/client/v3/profile/${enc(GHOST)}/displayname`);
    assert.equal(profile.json["displayname"], "+49 170 1234567 (WhatsApp)");
  });

  it("a message from the network appears in the portal from the ghost", async function () {
    await h.network.report(matrixUserId(h.alice.userId), {
      kind: "message",
      from: contactId(BOB),
      id: "bob-1" as RemoteMessageId,
      sentAt: new Date(),
      order: 1,
      content: { type: "text", text: { text: "hello from WhatsApp", spans: [] } },
      isRequest: false,
    });
    const messages = await h.messages(portal);
    const fromGhost = messages.find((m) => m.body === "hello from WhatsApp");
    assert.equal(fromGhost?.sender, GHOST);
    await botSays(portal, /accepted your chat request/);
  });

  it("a Matrix message in the portal reaches the network; the ghost's own events are not echoed", async function () {
    const sentBefore = h.network.sent.length;
    const eventId = await h.say(portal, "hi Bob");
    await h.waitFor(
      async () => (h.network.sent.length > sentBefore ? true : undefined),
      "the send",
    );
    await h.hs.appserviceIdle(h.appserviceId);
    assert.equal(h.network.sent.length, sentBefore + 1, "only alice's message, not the ghost's");
    const sent = h.network.sent.at(-1);
    assert.equal(sent?.to, contactId(BOB));
    assert.deepEqual(sent?.content, { type: "text", text: { text: "hi Bob", spans: [] } });
    assert.equal((await h.tables.messages.byEvent(eventId as never))?.direction, "out");
  });

  it("media crosses in both directions: uploaded by the ghost, opened from the user's mxc", async function () {
    const bytes = new Uint8Array([137, 80, 78, 71, 1, 2, 3]);
    await h.network.report(matrixUserId(h.alice.userId), {
      kind: "message",
      from: contactId(BOB),
      id: "bob-img" as RemoteMessageId,
      sentAt: new Date(),
      order: 3,
      content: {
        type: "media",
        media: {
          kind: "image",
          mimeType: "image/png",
          size: bytes.length,
          width: 1,
          height: 1,
          open: async () =>
            (async function* () {
              yield bytes;
            })(),
        },
      },
      isRequest: false,
    });
    const image = (await h.messages(portal)).find((m) => m.content["msgtype"] === "m.image");
    assert.equal(image?.sender, GHOST);
    assert.match(String(image?.content["url"]), /^mxc:\/\/example\.org\//);

    const upload = await fetch(`${h.hs.url}/_matrix/media/v3/upload?filename=a.txt`, {
      method: "POST",
      headers: { authorization: `Bearer ${h.alice.accessToken}`, "content-type": "text/plain" },
      body: "file from matrix",
    });
    const mxc = ((await upload.json()) as { content_uri: string }).content_uri;
    const before = h.network.sent.length;
    const sent = await h.asAlice(
      "PUT",
      `/_matrix/client/v3/rooms/${enc(portal)}/send/m.room.message/file-1`,
      { msgtype: "m.file", body: "a.txt", url: mxc, info: { mimetype: "text/plain", size: 16 } },
    );
    assert.equal(sent.status, 200);
    const out = await h.waitFor(
      async () => (h.network.sent.length > before ? h.network.sent.at(-1) : undefined),
      "the file at the network",
    );
    assert.equal(out.content.type, "media");
    if (out.content.type !== "media") return;
    const chunks: Uint8Array[] = [];
    for await (const chunk of await out.content.media.open()) chunks.push(chunk);
    assert.equal(Buffer.concat(chunks).toString("utf8"), "file from matrix");
  });

  it("the user's typing reaches the network through the pushed ephemeral events", async function () {
    const typed = await h.asAlice(
      "PUT",
      `/_matrix/client/v3/rooms/${enc(portal)}/typing/${enc(h.alice.userId)}`,
      { typing: true, timeout: 30000 },
    );
    assert.equal(typed.status, 200);
    await h.waitFor(
      async () => (h.network.actions.includes(`typing ${contactId(BOB)} true`) ? true : undefined),
      "typing at the network",
    );
  });

  it("a Matrix message's first attempt is sent without a look-up of its mapping (#15)", async function () {
    let lookups = 0;
    const count = (query: { sql: string }): void => {
      if (/from `messages` where `event_id` = \?/.test(query.sql)) lookups += 1;
    };
    h.bridge.db.knex.on("query", count);
    try {
      const sentBefore = h.network.sent.length;
      const eventId = await h.say(portal, "first attempt");
      await h.waitFor(
        async () => (h.network.sent.length > sentBefore ? true : undefined),
        "the send",
      );
      await h.hs.appserviceIdle(h.appserviceId);
      assert.equal(lookups, 0, "the ingress told the core it is the event's first attempt");
      assert.equal((await h.tables.messages.byEvent(eventId as never))?.direction, "out");
    } finally {
      h.bridge.db.knex.off("query", count);
    }
  });

  it("a transaction delivered twice (lost acknowledgement) is processed once", async function () {
    const sentBefore = h.network.sent.length;
    h.hs.failAppservicePushes(failFirstPushes(1, { status: 500, deliver: true }));
    await h.say(portal, "only once please");
    await h.waitFor(
      async () => (h.network.sent.length > sentBefore ? true : undefined),
      "the send",
    );
    await h.hs.appserviceIdle(h.appserviceId);
    h.hs.failAppservicePushes(undefined);
    assert.equal(
      h.network.sent.filter(
        (s) => s.content.type === "text" && s.content.text.text === "only once please",
      ).length,
      1,
    );
  });

  it("a transaction that fails at the homeserver's end is retried and nothing is lost", async function () {
    const sentBefore = h.network.sent.length;
    h.hs.failAppservicePushes(failFirstPushes(2, { status: 502 }));
    await h.say(portal, "after an outage");
    await h.waitFor(
      async () => (h.network.sent.length > sentBefore ? true : undefined),
      "the send",
    );
    h.hs.failAppservicePushes(undefined);
    assert.equal(h.network.sent.at(-1)?.content.type, "text");
  });

  it("a first message from an unknown number is an explained invite; rejecting it offers block and report", async function () {
    const carol = "+491705550123";
    await h.network.report(matrixUserId(h.alice.userId), {
      kind: "message",
      from: contactId(carol),
      id: "carol-1" as RemoteMessageId,
      sentAt: new Date(),
      order: 1,
      content: { type: "text", text: { text: "hi, remember me?", spans: [] } },
      isRequest: true,
    });
    const row = await h.tables.portalRows.get(matrixUserId(h.alice.userId), contactId(carol));
    assert.ok(row?.roomId);
    assert.equal(row.requestState, "incoming-pending");
    const before = (await h.messages(mgmt)).length;
    const left = await h.asAlice("POST", `/_matrix/client/v3/rooms/${enc(row.roomId)}/leave`, {});
    assert.equal(left.status, 200);
    await botSays(mgmt, /declined the message request from \+49 170 5550123.*block/, before);
    assert.equal((await h.tables.portalRows.byRoom(row.roomId as never))?.requestState, "declined");
  });

  it("a contact writing to a portal the user left re-invites the user to the same room", async function () {
    const left = await h.asAlice("POST", `/_matrix/client/v3/rooms/${enc(portal)}/leave`, {});
    assert.equal(left.status, 200);
    await h.waitFor(
      async () =>
        (await h.tables.portalRows.byRoom(portal as never))?.userMembership === "leave"
          ? true
          : undefined,
      "the leave to be seen",
    );
    await h.network.report(matrixUserId(h.alice.userId), {
      kind: "message",
      from: contactId(BOB),
      id: "bob-2" as RemoteMessageId,
      sentAt: new Date(),
      order: 2,
      content: { type: "text", text: { text: "still there?", spans: [] } },
      isRequest: false,
    });
    const rejoined = await h.asAlice("POST", `/_matrix/client/v3/join/${enc(portal)}`, {});
    assert.equal(rejoined.status, 200, "alice was invited back");
    const messages = await h.messages(portal);
    assert.ok(messages.some((m) => m.body === "still there?" && m.sender === GHOST));
  });
});
