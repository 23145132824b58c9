import assert from "node:assert/strict";
import type { RemoteMessageId, RemoteUserId } from "../../src/core/network.js";
import { matrixUserId, type RemoteGroupId } from "../../src/util/ids.js";
import { contactId, selfIdOf } from "../core/fakes/network.js";
import { enc } from "../homeserver/testHelpers.js";
import { BOT, startMatrixHarness, type MatrixHarness } from "./harness.js";

const SECRET = "s".repeat(20) + "-provisioning-secret";
const WA = "+491701111111";
const WA_GHOST = "@whatsapp_491701111111:example.org";
const DAVE = "+491702222222";

/**
 * Group portals through the whole bridge (test homeserver, router, provisioning API) with the
 * fake network: what a user does in the room reaches the network through their login.
 */
describe("group portals through the bridge (test homeserver, fake network)", function () {
  this.timeout(60_000);
  let h: MatrixHarness;
  let room: string;
  let group: RemoteGroupId;

  before(async function () {
    h = await startMatrixHarness("spec", {}, { provisioning: { shared_secret: SECRET } });
    const created = await h.asAlice("POST", "/_matrix/client/v3/createRoom", {
      invite: [BOT],
      is_direct: true,
    });
    const mgmt = created.json["room_id"] as string;
    const botSays = (pattern: RegExp) =>
      h.waitFor(async () => {
        const found = (await h.messages(mgmt)).find(
          (m) => m.sender === BOT && pattern.test(m.body),
        );
        return found?.body;
      }, `the bot to say ${pattern}`);
    await botSays(/Send `login` to start/);
    for (const [line, answer] of [
      ["login", /decrypts them/],
      ["phone", /phone number/],
      ["+491709876543", /code/],
      ["123456", /^Logged in/],
    ] as const) {
      await h.say(mgmt, line);
      await botSays(answer);
    }
  });
  after(async function () {
    await h?.dispose();
  });

  const alice = () => matrixUserId(h.alice.userId);

  it("create_group makes the group and its room; the user is invited", async function () {
    h.network.reachable.add(WA);
    h.network.reachable.add(DAVE);
    h.network.refusedMembers.add(contactId(DAVE));
    const res = await fetch(
      `http://127.0.0.1:${h.appservicePort}/_matrix/provision/v3/create_group?user_id=${enc(h.alice.userId)}`,
      {
        method: "POST",
        headers: { authorization: `Bearer ${SECRET}`, "content-type": "application/json" },
        body: JSON.stringify({ name: { name: "Book club" }, participants: [WA, DAVE] }),
      },
    );
    const body = (await res.json()) as Record<string, unknown>;
    assert.equal(res.status, 201, JSON.stringify(body));
    assert.deepEqual(body["rejected"], ["+49 170 2222222"]);
    room = String(body["mxid"]);
    group = body["id"] as RemoteGroupId;
    assert.equal(h.network.groups.get(group)?.subject, "Book club");
    const joined = await h.asAlice("POST", `/_matrix/client/v3/join/${enc(room)}`, {});
    assert.equal(joined.status, 200, JSON.stringify(joined.json));
    const name = await h.asAlice("GET", `/_matrix/client/v3/rooms/${enc(room)}/state/m.room.name/`);
    assert.equal(name.json["name"], "Book club");
    const levels = await h.asAlice(
      "GET",
      `/_matrix/client/v3/rooms/${enc(room)}/state/m.room.power_levels/`,
    );
    const users = levels.json["users"] as Record<string, number>;
    assert.equal(users[h.alice.userId], 50, "the creator is an admin");
    assert.equal(users[BOT], 100);
    assert.equal(levels.json["invite"], 50);
    assert.equal(levels.json["kick"], 50);
  });

  it("a message in the group room goes to the group through the user's login; members' messages come back", async function () {
    await h.say(room, "hello group");
    await h.waitFor(
      async () => (h.network.sent.some((s) => s.to === group) ? true : undefined),
      "the message at the network",
    );
    await h.network.report(alice(), {
      kind: "message",
      group,
      from: contactId(WA),
      id: "wa-1" as RemoteMessageId,
      sentAt: new Date(),
      order: 1,
      content: { type: "text", text: { text: "hi from whatsapp", spans: [] } },
      isRequest: false,
    });
    const messages = await h.messages(room);
    assert.ok(messages.some((m) => m.sender === WA_GHOST && m.body === "hi from whatsapp"));
    // The user's own message, reported back by the network, is not posted a second time.
    const mine = h.network.sent.find((s) => s.to === group);
    assert.ok(mine);
    await h.network.report(alice(), {
      kind: "message",
      group,
      from: selfIdOf(alice()) as RemoteUserId,
      id: mine.id,
      sentAt: new Date(),
      order: 2,
      content: { type: "text", text: { text: "hello group", spans: [] } },
      isRequest: false,
    });
    const again = await h.messages(room);
    assert.equal(again.filter((m) => m.body === "hello group").length, 1);
  });

  it("a member of another provider joins as a ghost named by the connector's label", async function () {
    const carol = "carol@other.example" as RemoteUserId;
    const version = (h.network.groups.get(group)?.version ?? 1) + 1;
    await h.network.report(alice(), {
      kind: "group-change",
      group,
      version,
      by: contactId(WA),
      change: "added",
      members: [{ id: carol, admin: false, displayName: "carol · other.example" }],
    });
    // Registered in the appservice namespace (the homeserver refuses ids outside it) and joined.
    const ghost = "@whatsapp__carol=40other.example:example.org";
    const members = await h.asAlice("GET", `/_matrix/client/v3/rooms/${enc(room)}/joined_members`);
    const joined = members.json["joined"] as Record<string, { display_name?: string }>;
    assert.equal(joined[ghost]?.display_name, "carol · other.example");
  });

  it("an admin (power 50) raising a ghost to 50 makes that member an admin at the network", async function () {
    const path = `/_matrix/client/v3/rooms/${enc(room)}/state/m.room.power_levels/`;
    const levels = (await h.asAlice("GET", path)).json;
    const users = { ...(levels["users"] as Record<string, number>), [WA_GHOST]: 50 };
    const raised = await h.asAlice("PUT", path, { ...levels, users });
    // Group admins must be able to change power levels, or no admin change from Matrix exists.
    assert.equal(raised.status, 200, JSON.stringify(raised.json));
    await h.waitFor(
      async () =>
        h.network.groups.get(group)?.members.find((m) => m.id === contactId(WA))?.admin === true
          ? true
          : undefined,
      "the member an admin at the network",
    );
    // Demoted again from the network (Matrix lets an admin lower no equal), for the kick below.
    const g = h.network.groups.get(group);
    if (g !== undefined)
      g.members = g.members.map((m) => ({ ...m, admin: m.id !== contactId(WA) && m.admin }));
    await h.network.report(alice(), {
      kind: "group-change",
      group,
      version: (g?.version ?? 1) + 1,
      by: null,
      change: "demoted",
      members: [{ id: contactId(WA), admin: false, displayName: WA }],
    });
    await h.waitFor(async () => {
      const now = (await h.asAlice("GET", path)).json["users"] as Record<string, number>;
      return (now[WA_GHOST] ?? 0) < 50 ? true : undefined;
    }, "the ghost back below 50");
  });

  it("renaming the room changes the subject; kicking a ghost removes the member", async function () {
    const renamed = await h.asAlice(
      "PUT",
      `/_matrix/client/v3/rooms/${enc(room)}/state/m.room.name/`,
      { name: "Reading club" },
    );
    assert.equal(renamed.status, 200, JSON.stringify(renamed.json));
    await h.waitFor(
      async () => (h.network.groups.get(group)?.subject === "Reading club" ? true : undefined),
      "the subject at the network",
    );
    const kicked = await h.asAlice("POST", `/_matrix/client/v3/rooms/${enc(room)}/kick`, {
      user_id: WA_GHOST,
    });
    assert.equal(kicked.status, 200, JSON.stringify(kicked.json));
    await h.waitFor(
      async () =>
        h.network.groups.get(group)?.members.some((m) => m.id === contactId(WA)) === false
          ? true
          : undefined,
      "the member removed at the network",
    );
  });

  it("commands in the group room: private ones are not run (others read the room), help is", async function () {
    const botSaid = (pattern: RegExp) =>
      h.waitFor(async () => {
        const found = (await h.messages(room)).find(
          (m) => m.sender === BOT && pattern.test(m.body),
        );
        return found?.body;
      }, `the bot to say ${pattern} in the group room`);
    h.network.reachable.add(DAVE);
    for (const command of ["contacts", "status", "verify +491702222222", "login"]) {
      await h.say(room, `!wa ${command}`);
      const name = command.split(" ")[0] ?? "";
      await botSaid(new RegExp(`^\`${name}\` is not run in a group's room`));
    }
    await h.say(room, "!wa help");
    await botSaid(/^Commands/);
    const bodies = (await h.messages(room))
      .filter((m) => m.sender === BOT && !m.body.startsWith("Commands"))
      .map((m) => m.body);
    // Nothing private was answered here: no contact list, no account state, no safety number.
    assert.ok(
      !bodies.some((b) => /Logged in|safety number|\d{5} \d{5}/i.test(b)),
      bodies.join("\n"),
    );
    assert.ok(!h.network.actions.some((a) => a.startsWith("safety-number")));
  });

  it("a Matrix user who is no member at the network, invited into the group room, is removed with a notice", async function () {
    const eve = "@eve:elsewhere.example";
    const invited = await h.asAlice("POST", `/_matrix/client/v3/rooms/${enc(room)}/invite`, {
      user_id: eve,
    });
    assert.equal(invited.status, 200, JSON.stringify(invited.json));
    await h.waitFor(async () => {
      const member = await h.asAlice(
        "GET",
        `/_matrix/client/v3/rooms/${enc(room)}/state/m.room.member/${enc(eve)}`,
      );
      return member.json["membership"] === "leave" ? true : undefined;
    }, "the outsider's invite withdrawn by the bot");
    const notices = (await h.messages(room)).filter((m) => m.sender === BOT).map((m) => m.body);
    assert.ok(
      notices.some((b) => b.startsWith(`${eve} was removed: only the group's members`)),
      notices.join("\n"),
    );
  });

  it("a ghost invited into a room of the user's brings the bot's offer; create-group there makes it the group's room", async function () {
    const dave = "@whatsapp_491702222222:example.org";
    h.network.refusedMembers.clear();
    h.network.reachable.add(DAVE);
    const created = await h.asAlice("POST", "/_matrix/client/v3/createRoom", {
      name: "Our plans",
      invite: [dave],
    });
    const mine = created.json["room_id"] as string;
    await h.waitFor(async () => {
      const found = (await h.messages(mine)).find(
        (m) => m.sender === BOT && /not a direct chat/.test(m.body),
      );
      return found?.body;
    }, "the bot's offer");
    await h.say(mine, "!wa create-group Our plans");
    await h.waitFor(async () => {
      const found = (await h.messages(mine)).find(
        (m) => m.sender === BOT && /This room is now the group "Our plans"/.test(m.body),
      );
      return found?.body;
    }, "the group made of the room");
    const made = [...h.network.groups.values()].find((g) => g.subject === "Our plans");
    assert.deepEqual(
      made?.members.map((m) => m.id),
      [selfIdOf(alice()), contactId(DAVE)],
    );
    const row = await h.tables.groups.byRoom(mine as never);
    assert.ok(row);
    await h.say(mine, "to the group");
    await h.waitFor(
      async () =>
        h.network.sent.some((s) => s.to === row.remoteId && s.content.type === "text")
          ? true
          : undefined,
      "the message at the group",
    );
  });
});
