import assert from "node:assert/strict";
import type { RemoteMessageId, RemoteUserId } from "../../src/core/network.js";
import { ContactsTable } from "../../src/db/contacts.js";
import { GhostsTable } from "../../src/db/ghosts.js";
import { GroupPortalsTable } from "../../src/db/groups.js";
import { MessagesTable } from "../../src/db/messages.js";
import { PortalsTable } from "../../src/db/portals.js";
import { ReactionsTable } from "../../src/db/reactions.js";
import {
  PROCESSED_EVENT_RETENTION_MS,
  ProcessedEventsTable,
} from "../../src/db/processed-events.js";
import { UsersTable } from "../../src/db/users.js";
import {
  eventId,
  matrixUserId,
  phoneNumber,
  roomId,
  type ContactAddress,
  type RemoteGroupId,
} from "../../src/util/ids.js";
import { describeOnBackends } from "../helpers/db.js";

/** The network id the tables are given (the interop connector's). */
const NETWORK = "whatsapp";

const alice = matrixUserId("@alice:example.org");
const bob = matrixUserId("@Bob:example.org");
const carol = matrixUserId("@carol:example.org");
const contact = "491701234567@wa.example" as RemoteUserId;
const other = "491705550000@wa.example" as RemoteUserId;

describeOnBackends("core tables", (get) => {
  it("a user is created logged out with receipts and typing on, and patches read back typed", async function () {
    const users = new UsersTable(get().db.knex, NETWORK);
    const created = await users.ensure(alice, 1000);
    assert.equal(created.loginState, "logged-out");
    assert.equal(created.readReceipts, true);
    assert.equal(created.typingNotifications, true);
    await users.update(alice, {
      loginState: "logged-in",
      address: phoneNumber("+491709876543"),
      managementRoom: roomId("!mgmt:example.org"),
      readReceipts: false,
      warningAcceptedAt: 2000,
    });
    const again = await users.ensure(alice, 5000);
    assert.equal(again.createdAt, 1000, "ensure keeps the existing row");
    assert.equal(again.loginState, "logged-in");
    assert.equal(again.readReceipts, false);
    assert.equal(again.warningAcceptedAt, 2000);
    assert.equal((await users.byManagementRoom(roomId("!mgmt:example.org")))?.mxid, alice);
    assert.deepEqual(
      (await users.loggedIn()).map((u) => u.mxid),
      [alice],
    );
    assert.equal((await users.countByState())["logged-in"], 1);
  });

  it("a phone number moved to another user is released from the first", async function () {
    const users = new UsersTable(get().db.knex, NETWORK);
    await users.ensure(bob);
    await users.releaseAddress(phoneNumber("+491709876543"), bob);
    await users.update(bob, { address: phoneNumber("+491709876543") });
    assert.equal((await users.get(alice))?.address, null);
    assert.equal((await users.get(bob))?.address, "+491709876543");
  });

  it("a portal is unique per (user, contact) and keeps its state across ensure", async function () {
    const portals = new PortalsTable(get().db.knex, NETWORK);
    const first = await portals.ensure(alice, contact, "incoming-pending");
    assert.equal(first.userMembership, "invite");
    assert.equal(first.roomId, null);
    await portals.update(first.id, {
      roomId: roomId("!portal:example.org"),
      requestState: "accepted",
      userMembership: "join",
    });
    const again = await portals.ensure(alice, contact, "outgoing-pending");
    assert.equal(again.id, first.id);
    assert.equal(again.requestState, "accepted");
    assert.equal((await portals.byRoom(roomId("!portal:example.org")))?.contact, contact);
    await portals.ensure(alice, other, "none");
    assert.deepEqual(
      (await portals.listByUser(alice)).map((p) => p.contact),
      [contact, other],
    );
    assert.equal(await portals.count(), 2);
  });

  it("a portal and a ghost read again come from memory, and a write is seen by the next read", async function () {
    const { knex } = get().db;
    let queries = 0;
    const onQuery = () => (queries += 1);
    knex.on("query", onQuery);
    try {
      const portals = new PortalsTable(knex, NETWORK);
      const made = await portals.ensure(alice, other, "none");
      queries = 0;
      // Another instance on the same database shares the cache (the core makes several).
      const elsewhere = new PortalsTable(knex, NETWORK);
      assert.equal((await elsewhere.get(alice, other))?.id, made.id);
      assert.equal((await elsewhere.byId(made.id))?.contact, other);
      assert.equal(queries, 0, "no query for a portal read before");
      await portals.update(made.id, {
        roomId: roomId("!cached:example.org"),
        requestState: "accepted",
      });
      const updated = await elsewhere.get(alice, other);
      assert.equal(updated?.roomId, "!cached:example.org");
      assert.equal(updated?.requestState, "accepted");
      assert.equal((await elsewhere.byRoom(roomId("!cached:example.org")))?.id, made.id);

      const ghosts = new GhostsTable(knex, NETWORK);
      const ghost = {
        contact: other,
        address: phoneNumber("+491705550000"),
        mxid: matrixUserId("@whatsapp_491705550000:example.org"),
      };
      await ghosts.upsert({ ...ghost, displayName: "first" });
      assert.equal((await ghosts.get(other))?.displayName, "first");
      queries = 0;
      assert.equal((await new GhostsTable(knex, NETWORK).byAddress(ghost.address))?.contact, other);
      assert.equal(queries, 0, "no query for a ghost read before");
      await ghosts.upsert({ ...ghost, displayName: "second" });
      assert.equal((await ghosts.byMxid(ghost.mxid))?.displayName, "second");
    } finally {
      knex.removeListener("query", onQuery);
    }
  });

  it("a ghost's display name is updated in place", async function () {
    const ghosts = new GhostsTable(get().db.knex, NETWORK);
    const ghost = {
      contact,
      address: phoneNumber("+491701234567"),
      mxid: matrixUserId("@whatsapp_491701234567:example.org"),
    };
    await ghosts.upsert({ ...ghost, displayName: null });
    await ghosts.upsert({ ...ghost, displayName: "+49 1701234567 (WhatsApp)" });
    assert.equal((await ghosts.get(contact))?.displayName, "+49 1701234567 (WhatsApp)");
    assert.equal((await ghosts.byMxid(ghost.mxid))?.contact, contact);
  });

  it("a contact's local name and block are kept per user", async function () {
    const contacts = new ContactsTable(get().db.knex, NETWORK);
    await contacts.update(alice, contact, { localName: "Mum" });
    await contacts.update(alice, contact, { blocked: true });
    const row = await contacts.get(alice, contact);
    assert.equal(row?.localName, "Mum");
    assert.equal(row?.blocked, true);
    assert.equal(await contacts.get(bob, contact), undefined);
    await contacts.update(alice, contact, { blocked: false });
    assert.equal((await contacts.get(alice, contact))?.blocked, false);
  });

  it("ensuring a user or portal and patching a contact each cost one statement, created or not", async function () {
    const knex = get().db.knex;
    const users = new UsersTable(knex, NETWORK);
    const portals = new PortalsTable(knex, NETWORK);
    const contacts = new ContactsTable(knex, NETWORK);
    const counted = async (work: () => Promise<unknown>): Promise<number> => {
      let n = 0;
      const count = (): void => {
        n += 1;
      };
      knex.on("query", count);
      try {
        await work();
      } finally {
        knex.off("query", count);
      }
      return n;
    };
    assert.equal(await counted(() => users.ensure(carol)), 2, "new: read, then insert returning");
    assert.equal(await counted(() => users.ensure(carol)), 1, "known: one read");
    const created = await portals.ensure(carol, other, "accepted");
    assert.equal(created.contact, other, "the insert returned the new row");
    portals.forget(created.id);
    assert.equal(
      await counted(() => portals.ensure(carol, other, "accepted")),
      1,
      "known: one read",
    );
    assert.equal(await counted(() => portals.ensure(carol, other, "accepted")), 0, "then cached");
    assert.equal(
      await counted(() => contacts.update(carol, other, { localName: "Other" })),
      1,
      "created with its patch in one upsert",
    );
    assert.equal(await counted(() => contacts.update(carol, other, { blocked: true })), 1);
    assert.equal(await counted(() => contacts.update(carol, other, {})), 1);
    const row = await contacts.get(carol, other);
    assert.equal(row?.localName, "Other");
    assert.equal(row?.blocked, true);
  });

  it("rows name the network of the tables that wrote them (migration 0015)", async function () {
    const knex = get().db.knex;
    const dave = matrixUserId("@dave:example.org");
    const loop = "dave@loop" as RemoteUserId;
    await new UsersTable(knex, "loopback").ensure(dave);
    await new PortalsTable(knex, "loopback").ensure(dave, loop, "none");
    await new ContactsTable(knex, "loopback").update(dave, loop, { localName: "D" });
    await new GhostsTable(knex, "loopback").upsert({
      contact: loop,
      address: "dave@loop" as ContactAddress,
      mxid: matrixUserId("@loop_dave:example.org"),
      displayName: null,
    });
    await new UsersTable(knex, NETWORK).ensure(matrixUserId("@erin:example.org"));
    const networkOf = async (table: string, where: Record<string, string>) =>
      ((await knex(table).where(where).first()) as { network: string }).network;
    assert.equal(await networkOf("users", { mxid: dave }), "loopback");
    assert.equal(await networkOf("portals", { user_mxid: dave }), "loopback");
    assert.equal(await networkOf("contacts", { user_mxid: dave }), "loopback");
    assert.equal(await networkOf("ghosts", { remote_id: loop }), "loopback");
    assert.equal(await networkOf("users", { mxid: "@erin:example.org" }), NETWORK);
  });

  it("two networks with the same remote id and address keep apart (migration 0019)", async function () {
    const knex = get().db.knex;
    const frank = matrixUserId("@frank:example.org");
    const grace = matrixUserId("@grace:example.org");
    const shared = "shared-contact-id" as RemoteUserId;
    // Longer than the 16 characters of an E.164 number, which PostgreSQL held the column to.
    const address = "someone.with.a.long.name@loop" as ContactAddress;
    const group = "shared-group-id" as RemoteGroupId;
    const tables = (network: string) => ({
      users: new UsersTable(knex, network),
      portals: new PortalsTable(knex, network),
      contacts: new ContactsTable(knex, network),
      ghosts: new GhostsTable(knex, network),
      groups: new GroupPortalsTable(knex, network),
    });
    const a = tables("net-a");
    const b = tables("net-b");
    await a.users.ensure(frank);
    await b.users.ensure(grace);
    for (const [t, user, name] of [
      [a, frank, "A"],
      [b, grace, "B"],
    ] as const) {
      await t.users.update(user, { loginState: "logged-in", address });
      await t.ghosts.upsert({
        contact: shared,
        address,
        mxid: matrixUserId(`@${name.toLowerCase()}_shared:example.org`),
        displayName: `ghost ${name}`,
      });
      await t.contacts.update(user, shared, { localName: `contact ${name}` });
      await t.contacts.update(frank, shared, { blocked: name === "B" });
      await t.portals.ensure(frank, shared, name === "A" ? "accepted" : "declined");
      await t.groups.update((await t.groups.ensure(group)).id, { subject: `group ${name}` });
    }
    for (const [t, name] of [
      [a, "A"],
      [b, "B"],
    ] as const) {
      assert.equal((await t.ghosts.get(shared))?.displayName, `ghost ${name}`, name);
      assert.equal((await t.ghosts.byAddress(address))?.displayName, `ghost ${name}`, name);
      assert.equal(
        (await t.ghosts.byMxid(matrixUserId(`@a_shared:example.org`)))?.displayName,
        name === "A" ? "ghost A" : undefined,
        `${name}: another network's ghost is not found by its Matrix id`,
      );
      assert.equal((await t.contacts.get(frank, shared))?.blocked, name === "B", name);
      assert.equal((await t.contacts.listByUser(frank)).length, 1, name);
      const portal = await t.portals.get(frank, shared);
      assert.equal(portal?.requestState, name === "A" ? "accepted" : "declined", name);
      assert.equal((await t.portals.listByUser(frank)).length, 1, name);
      assert.equal((await t.groups.byRemote(group))?.subject, `group ${name}`, name);
    }
    assert.equal((await a.contacts.get(frank, shared))?.localName, "contact A");
    assert.equal((await b.contacts.get(grace, shared))?.localName, "contact B");
    assert.equal(await b.contacts.get(grace, "nobody" as RemoteUserId), undefined);
    // Each network's logins, counts and addresses are its own.
    assert.deepEqual(await a.users.loggedInIds(), [frank]);
    assert.deepEqual(await b.users.loggedInIds(), [grace]);
    assert.equal((await b.users.countByState())["logged-in"], 1);
    await b.users.releaseAddress(address, grace);
    assert.equal((await a.users.get(frank))?.address, address, "net-b cannot free net-a's address");
    assert.equal(await a.portals.count(), 1);
    await b.portals.deleteByUser(frank);
    assert.equal((await a.portals.get(frank, shared))?.requestState, "accepted");
    assert.equal(await b.portals.get(frank, shared), undefined);
  });

  it("a message is mapped once; the same remote id again is refused", async function () {
    const { knex } = get().db;
    const portal = await new PortalsTable(knex, NETWORK).ensure(alice, contact, "none");
    const messages = new MessagesTable(knex);
    const base = {
      portalId: portal.id,
      author: contact,
      order: 7,
      direction: "in" as const,
    };
    assert.equal(
      await messages.insert({
        ...base,
        eventId: eventId("$e1"),
        remoteId: "m1" as RemoteMessageId,
        sentAt: 10,
      }),
      true,
    );
    assert.equal(
      await messages.insert({
        ...base,
        eventId: eventId("$e1b"),
        remoteId: "m1" as RemoteMessageId,
        sentAt: 10,
      }),
      false,
    );
    await messages.insert({
      ...base,
      eventId: eventId("$e2"),
      remoteId: "m2" as RemoteMessageId,
      sentAt: 20,
    });
    await messages.insert({
      ...base,
      eventId: eventId("$e3"),
      remoteId: "m3" as RemoteMessageId,
      author: "alice=3aexample.org@matrix.bridge.example" as RemoteUserId,
      direction: "out",
      sentAt: 30,
    });
    assert.equal(
      (await messages.byRemote(portal.id, contact, "m1" as RemoteMessageId))?.eventId,
      "$e1",
    );
    assert.equal((await messages.byEvent(eventId("$e2")))?.order, 7);
    assert.equal(
      (await messages.outgoingByRemote([portal.id], "m3" as RemoteMessageId))?.eventId,
      "$e3",
    );
    await messages.markRetracted(eventId("$e2"));
    assert.deepEqual(
      (await messages.latestIncoming(portal.id, 5)).map((m) => m.remoteId),
      ["m1"],
    );
    assert.equal((await messages.byEvent(eventId("$e2")))?.retracted, true);
  });

  it("processed event ids are remembered and pruned after the retention", async function () {
    const processed = new ProcessedEventsTable(get().db.knex);
    await processed.mark("$old", 1000);
    await processed.mark("$old", 2000);
    await processed.mark("$new", 1000 + PROCESSED_EVENT_RETENTION_MS);
    assert.equal(await processed.has("$old"), true);
    assert.equal(await processed.prune(1001 + PROCESSED_EVENT_RETENTION_MS), 1);
    assert.equal(await processed.has("$old"), false);
    assert.equal(await processed.has("$new"), true);
  });

  it("reactions are listed per sender and message, and deleted by event", async function () {
    const { knex } = get().db;
    const portal = await new PortalsTable(knex, NETWORK).ensure(alice, contact, "none");
    const reactions = new ReactionsTable(knex);
    const target = { author: contact as string, id: "m9" as RemoteMessageId };
    const base = { portalId: portal.id, targetId: target.id, targetAuthor: target.author };
    await reactions.insert({ ...base, eventId: eventId("$r1"), sender: alice, emoji: "👍" });
    await reactions.insert({ ...base, eventId: eventId("$r2"), sender: alice, emoji: "🎉" });
    await reactions.insert({ ...base, eventId: eventId("$r3"), sender: bob, emoji: "👍" });
    await reactions.insert({ ...base, eventId: eventId("$r1"), sender: alice, emoji: "👍" });
    assert.deepEqual(
      (await reactions.bySender(portal.id, target, alice)).map((r) => r.emoji),
      ["👍", "🎉"],
    );
    await reactions.delete(eventId("$r1"));
    assert.equal(await reactions.byEvent(eventId("$r1")), undefined);
    assert.equal((await reactions.byEvent(eventId("$r3")))?.sender, bob);
  });
});
