import assert from "node:assert/strict";
import type { RemoteMessageId, RemoteUserId } from "../../src/core/network.js";
import { GhostsTable } from "../../src/db/ghosts.js";
import { GroupPortalsTable } from "../../src/db/groups.js";
import { GROUP_MESSAGES, MessagesTable } from "../../src/db/messages.js";
import { UsersTable } from "../../src/db/users.js";
import { eventId, matrixUserId, roomId, type RemoteGroupId } from "../../src/util/ids.js";
import { describeOnBackends } from "../helpers/db.js";

/** The network id the tables are given (the interop connector's). */
const NETWORK = "whatsapp";

const alice = matrixUserId("@alice:example.org");
const group = "group-1@g.example" as RemoteGroupId;
const member = "491701234567@wa.example" as RemoteUserId;

describeOnBackends("group portal tables (migration 0014)", (get) => {
  it("a group message reported twice is stored once: the second insert does nothing", async function () {
    const { knex } = get().db;
    const groups = new GroupPortalsTable(knex, NETWORK);
    const portal = await groups.ensure(group);
    assert.equal((await groups.ensure(group)).id, portal.id, "one row per group");
    const messages = new MessagesTable(knex, GROUP_MESSAGES);
    const row = {
      portalId: portal.id,
      remoteId: "m-1" as RemoteMessageId,
      author: member,
      order: 1,
      sentAt: 1,
      direction: "in" as const,
    };
    assert.equal(await messages.insert({ ...row, eventId: eventId("$first") }), true);
    assert.equal(await messages.insert({ ...row, eventId: eventId("$second") }), false);
    assert.equal((await messages.byRemote(portal.id, member, row.remoteId))?.eventId, "$first");
  });

  it("the version only moves forward: a stale or repeated change does not advance it", async function () {
    const groups = new GroupPortalsTable(get().db.knex, NETWORK);
    const portal = await groups.ensure("group-2@g.example" as RemoteGroupId);
    await groups.update(portal.id, { roomId: roomId("!g2:example.org"), version: 3 });
    assert.equal(await groups.advanceVersion(portal.id, 2), false);
    assert.equal(await groups.advanceVersion(portal.id, 3), false);
    assert.equal(await groups.advanceVersion(portal.id, 4), true);
    assert.equal((await groups.byRoom(roomId("!g2:example.org")))?.version, 4);
  });

  it("users, members and ghosts without a phone number are kept", async function () {
    const { knex } = get().db;
    const groups = new GroupPortalsTable(knex, NETWORK);
    await new UsersTable(knex, NETWORK).ensure(alice);
    const portal = await groups.ensure(group);
    await groups.putUser(portal.id, alice, {
      membership: "invite",
      requestState: "incoming-pending",
    });
    await groups.putUser(portal.id, alice, { membership: "join" });
    assert.deepEqual(await groups.user(portal.id, alice), {
      portalId: portal.id,
      user: alice,
      membership: "join",
      requestState: "incoming-pending",
    });
    await groups.putMembers(portal.id, [{ remoteId: member, admin: false, displayName: "x" }]);
    await groups.putMembers(portal.id, [{ remoteId: member, admin: true, displayName: "x" }]);
    assert.deepEqual(await groups.members(portal.id), [
      { remoteId: member, admin: true, displayName: "x" },
    ]);
    const ghosts = new GhostsTable(knex, NETWORK);
    const carol = "carol@other.example" as RemoteUserId;
    await ghosts.upsert({
      contact: carol,
      address: null,
      mxid: matrixUserId("@whatsapp__carol=40other.example:example.org"),
      displayName: "carol · other.example",
    });
    assert.equal((await ghosts.get(carol))?.address, null);
  });
});
