import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import knexFactory, { type Knex } from "knex";
import { ContactsTable } from "../../src/db/contacts.js";
import { openDatabase, type Database, type DatabaseType } from "../../src/db/database.js";
import { GroupPortalsTable } from "../../src/db/groups.js";
import { GROUP_MESSAGES, MessagesTable } from "../../src/db/messages.js";
import { GhostsTable } from "../../src/db/ghosts.js";
import {
  DirectoryMigrationSource,
  defaultMigrationsDirectory,
  migrateToLatest,
} from "../../src/db/migrate.js";
import { PortalsTable } from "../../src/db/portals.js";
import { ReactionsTable } from "../../src/db/reactions.js";
import { UsersTable } from "../../src/db/users.js";
import { InteropUsersTable } from "../../src/interop/store/interop-users.js";
import type {
  ContactAddress,
  EventId,
  MatrixUserId,
  RemoteGroupId,
  RemoteMessageId,
  RemoteUserId,
  RoomId,
} from "../../src/util/ids.js";
import { BACKENDS, TEST_POSTGRES_URI } from "../helpers/db.js";
import { MigrationsUpTo } from "../helpers/migrations.js";

/** The interop connector's network id: the one rows of the earlier schemas name. */
const NETWORK = "whatsapp";

interface Opened {
  db: Database;
  dispose(): Promise<void>;
}

/** A fresh database; on PostgreSQL its own schema, prefixed `schema_` (this suite's prefix). */
async function open(type: DatabaseType): Promise<Opened> {
  if (type === "sqlite") {
    const dir = await mkdtemp(path.join(tmpdir(), "mwi-0015-"));
    const db = await openDatabase({ type, uri: path.join(dir, "bridge.db") });
    return {
      db,
      async dispose() {
        await db.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  }
  const schema = `schema_${randomBytes(6).toString("hex")}`;
  const admin = knexFactory({ client: "pg", connection: TEST_POSTGRES_URI });
  await admin.raw(`create schema "${schema}"`);
  await admin.destroy();
  const db = await openDatabase({ type, uri: TEST_POSTGRES_URI, schema });
  return {
    db,
    async dispose() {
      await db.close();
      const cleanup = knexFactory({ client: "pg", connection: TEST_POSTGRES_URI });
      await cleanup.raw(`drop schema "${schema}" cascade`);
      await cleanup.destroy();
    },
  };
}

const T = 1_700_000_000_000;
const alice = "@alice:example.org" as MatrixUserId;
// Uppercase and non-ASCII: an escaped localpart that a re-derivation must not be trusted to match.
const bob = "@Bob.Müller:example.org" as MatrixUserId;
const carol = "@carol:example.org" as MatrixUserId;
const contact = "491701234567@wa.example" as RemoteUserId;
const other = "491705550000@wa.example" as RemoteUserId;
const stranger = "x7f3k@msgr.example" as RemoteUserId;
const group = "g1@groups.wa.example" as RemoteGroupId;

/** Inserts row by row: a multi-row insert writes NULL, not the default, for a missing column. */
async function insert(knex: Knex, table: string, rows: Record<string, unknown>[]): Promise<void> {
  for (const row of rows) await knex(table).insert(row);
}

/** Rows as the bridge wrote them through the columns of 0001-0014. */
async function populateBefore0015(knex: Knex): Promise<void> {
  await insert(knex, "users", [
    {
      mxid: alice,
      localpart: "alice=3aexample.org",
      device_id: 1,
      phone: "+491709876543",
      login_state: "logged-in",
      management_room: "!mgmt-a:example.org",
      space_room: "!space-a:example.org",
      read_receipts: false,
      warning_accepted_at: T,
      created_at: T,
      updated_at: T + 1,
    },
    {
      mxid: bob,
      localpart: "=42ob.m=c3=bcller=3aexample.org",
      device_id: 2,
      handle: "Bobby",
      login_state: "logged-in",
      created_at: T,
      updated_at: T,
    },
    {
      mxid: carol,
      localpart: "carol=3aexample.org",
      login_state: "warned",
      login_flow: "phone",
      created_at: T,
      updated_at: T,
    },
  ]);
  await insert(knex, "ghosts", [
    {
      jid: contact,
      phone: "+491701234567",
      mxid: "@whatsapp_491701234567:example.org",
      display_name: "+49 170 1234567 (WhatsApp)",
      created_at: T,
    },
    {
      jid: other,
      phone: "+491705550000",
      mxid: "@whatsapp_491705550000:example.org",
      created_at: T,
    },
    // A group member of another provider: no phone (0014).
    {
      jid: stranger,
      phone: null,
      mxid: "@whatsapp__x7f3k=40msgr.example:example.org",
      display_name: "Sam (Messenger)",
      created_at: T,
    },
  ]);
  await insert(knex, "contacts", [
    {
      user_mxid: alice,
      contact_jid: contact,
      local_name: "Mum",
      blocked: false,
      verified_at: T + 5,
      created_at: T,
    },
    { user_mxid: alice, contact_jid: other, blocked: true, created_at: T },
    { user_mxid: bob, contact_jid: contact, created_at: T },
  ]);
  await insert(knex, "portals", [
    {
      user_mxid: alice,
      contact_jid: contact,
      room_id: "!dm-a:example.org",
      request_state: "accepted",
      user_membership: "join",
      created_at: T,
      updated_at: T,
    },
    {
      user_mxid: bob,
      contact_jid: contact,
      room_id: null,
      request_state: "incoming-pending",
      created_at: T,
      updated_at: T,
    },
  ]);
  const [{ id: portalId }] = (await knex("portals")
    .where({ user_mxid: alice, contact_jid: contact })
    .select("id")) as [{ id: number }];
  await knex("messages").insert({
    portal_id: portalId,
    event_id: "$m1",
    origin_id: "o1",
    author_jid: contact,
    seq: 7,
    sent_at: T,
    direction: "in",
  });
  await knex("reactions").insert({
    portal_id: portalId,
    event_id: "$r1",
    target_origin_id: "o1",
    target_author_jid: contact,
    sender: alice,
    emoji: "👍",
    created_at: T,
  });
  await knex("group_portals").insert({
    remote_id: group,
    room_id: "!group:example.org",
    subject: "Family",
    version: 3,
    created_at: T,
    updated_at: T,
  });
  const [{ id: groupId }] = (await knex("group_portals")
    .where({ remote_id: group })
    .select("id")) as [{ id: number }];
  await insert(knex, "group_members", [
    { portal_id: groupId, remote_id: contact, admin: true, display_name: "+49 170 1234567" },
    { portal_id: groupId, remote_id: stranger, admin: false, display_name: "Sam (Messenger)" },
  ]);
  await insert(knex, "group_users", [
    { portal_id: groupId, user_mxid: alice, membership: "join", request_state: "none" },
    { portal_id: groupId, user_mxid: bob, membership: "invite", request_state: "incoming-pending" },
  ]);
  await knex("group_messages").insert({
    portal_id: groupId,
    event_id: "$g1",
    remote_id: "go1",
    author: stranger,
    sent_at: T,
    direction: "in",
  });
  await knex("interop_groups").insert({
    local_jid: "alice=3aexample.org@bridge.example",
    group_jid: group,
    version: 3,
    participants: "[]",
    updated_at: T,
  });
}

const TABLES = [
  "users",
  "ghosts",
  "contacts",
  "portals",
  "messages",
  "reactions",
  "group_portals",
  "group_members",
  "group_users",
  "group_messages",
  "interop_groups",
] as const;

async function counts(knex: Knex): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const table of TABLES) {
    const row = (await knex(table).count({ n: "*" }).first()) as { n: number | string };
    out[table] = Number(row.n);
  }
  return out;
}

for (const backend of BACKENDS) {
  describe(`migration 0015 on a populated database [${backend}]`, function () {
    let opened: Opened | undefined;
    let rowsBefore: Record<string, number> = {};
    const knex = () => {
      if (opened === undefined) throw new Error("database not opened");
      return opened.db.knex;
    };

    before(async function () {
      opened = await open(backend);
      await knex().migrate.latest({
        migrationSource: new MigrationsUpTo("0014"),
        tableName: "schema_migrations",
      });
      assert.equal(await knex().schema.hasColumn("ghosts", "jid"), true, "the 0014 schema");
      await populateBefore0015(knex());
      rowsBefore = await counts(knex());
      const { applied } = await migrateToLatest(knex());
      assert.ok(
        applied.some((name) => name.startsWith("0015_")),
        applied.join(","),
      );
    });

    after(async function () {
      await opened?.dispose();
    });

    it("keeps every row of every core, group and interop table (nothing cascaded away)", async function () {
      assert.deepEqual(await counts(knex()), rowsBefore);
    });

    it("users read back through UsersTable with the bound number as their address", async function () {
      const users = new UsersTable(knex(), NETWORK);
      const a = await users.get(alice);
      assert.equal(a?.address, "+491709876543");
      assert.equal(a?.loginState, "logged-in");
      assert.equal(a?.managementRoom, "!mgmt-a:example.org");
      assert.equal(a?.spaceRoom, "!space-a:example.org");
      assert.equal(a?.readReceipts, false);
      assert.equal(a?.warningAcceptedAt, T);
      assert.equal(a?.updatedAt, T + 1);
      const b = await users.get(bob);
      assert.equal(b?.address, null);
      assert.equal(b?.handle, "Bobby");
      assert.equal((await users.get(carol))?.loginFlow, "phone");
      assert.deepEqual(await users.loggedInIds(), [bob, alice].sort());
      assert.equal(await knex().schema.hasColumn("users", "localpart"), false);
      assert.equal(await knex().schema.hasColumn("users", "device_id"), false);
    });

    it("the provider localpart and device moved to interop_users as stored, not re-derived", async function () {
      const interop = new InteropUsersTable(knex());
      assert.deepEqual(await interop.get(alice), {
        mxid: alice,
        localpart: "alice=3aexample.org",
        deviceId: 1,
      });
      assert.deepEqual(await interop.get(bob), {
        mxid: bob,
        localpart: "=42ob.m=c3=bcller=3aexample.org",
        deviceId: 2,
      });
      assert.equal((await interop.get(carol))?.localpart, "carol=3aexample.org");
    });

    it("ghosts read back by remote id, address and Matrix id; a member without address stays so", async function () {
      const ghosts = new GhostsTable(knex(), NETWORK);
      const g = await ghosts.get(contact);
      assert.equal(g?.address, "+491701234567");
      assert.equal(g?.displayName, "+49 170 1234567 (WhatsApp)");
      assert.equal((await ghosts.byAddress("+491705550000" as ContactAddress))?.contact, other);
      const s = await ghosts.byMxid("@whatsapp__x7f3k=40msgr.example:example.org" as MatrixUserId);
      assert.equal(s?.contact, stranger);
      assert.equal(s?.address, null);
    });

    it("contacts and portals read back by (user, remote id) with their state", async function () {
      const contacts = new ContactsTable(knex(), NETWORK);
      const mum = await contacts.get(alice, contact);
      assert.equal(mum?.localName, "Mum");
      assert.equal((await contacts.get(alice, other))?.blocked, true);
      assert.deepEqual(
        (await contacts.listByUser(alice)).map((c) => c.contact),
        [contact, other],
      );
      const portals = new PortalsTable(knex(), NETWORK);
      const dm = await portals.get(alice, contact);
      assert.equal(dm?.roomId, "!dm-a:example.org");
      assert.equal(dm?.requestState, "accepted");
      assert.equal(dm?.userMembership, "join");
      assert.equal((await portals.byRoom("!dm-a:example.org" as RoomId))?.contact, contact);
      assert.equal((await portals.get(bob, contact))?.requestState, "incoming-pending");
      // A new row after the migration still meets the (user, remote id) uniqueness.
      assert.equal(
        (await portals.ensure(bob, contact, "none")).id,
        (await portals.get(bob, contact))?.id,
      );
      const messages = new MessagesTable(knex());
      const m = await messages.byEvent("$m1" as EventId);
      assert.equal(m?.portalId, dm?.id);
      assert.equal(m?.author, contact);
      assert.equal(
        (await new ReactionsTable(knex()).byEvent("$r1" as EventId))?.targetAuthor,
        contact,
      );
    });

    it("group portals, members, users and messages are untouched", async function () {
      const groups = new GroupPortalsTable(knex(), NETWORK);
      const g = await groups.byRemote(group);
      assert.equal(g?.subject, "Family");
      assert.equal(g?.version, 3);
      const members = await groups.members(g?.id ?? -1);
      assert.deepEqual(
        members.map((m) => [m.remoteId, m.admin]).sort(),
        [
          [contact, true],
          [stranger, false],
        ].sort(),
      );
      assert.equal((await groups.user(g?.id ?? -1, bob))?.requestState, "incoming-pending");
      const gm = await new MessagesTable(knex(), GROUP_MESSAGES).byEvent("$g1" as EventId);
      assert.equal(gm?.remoteId, "go1" as RemoteMessageId);
    });

    it("every row existing before names the interop connector's network id", async function () {
      for (const table of ["users", "ghosts", "contacts", "portals"]) {
        const networks = (await knex()(table).distinct("network")) as { network: string }[];
        assert.deepEqual(
          networks.map((n) => n.network),
          ["whatsapp"],
          table,
        );
      }
    });

    it("rolling 0015 back restores the old columns with the stored localparts", async function () {
      // Later migrations are rolled back first, one at a time, until 0015 is.
      const undone: string[] = [];
      while (!undone.some((name) => name.startsWith("0015_"))) {
        const [, names] = (await knex().migrate.down({
          migrationSource: new DirectoryMigrationSource(defaultMigrationsDirectory()),
          tableName: "schema_migrations",
        })) as [number, string[]];
        assert.ok(names.length > 0, `0015 never rolled back (undone: ${undone.join(",")})`);
        undone.push(...names);
      }
      assert.deepEqual(await counts(knex()), rowsBefore);
      const b = (await knex()("users").where({ mxid: bob }).first()) as Record<string, unknown>;
      assert.equal(b["localpart"], "=42ob.m=c3=bcller=3aexample.org");
      assert.equal(Number(b["device_id"]), 2);
      const a = (await knex()("users").where({ mxid: alice }).first()) as Record<string, unknown>;
      assert.equal(a["phone"], "+491709876543");
      const g = (await knex()("ghosts").where({ jid: stranger }).first()) as Record<
        string,
        unknown
      >;
      assert.equal(g["phone"], null);
      assert.equal(
        (await knex()("portals").where({ user_mxid: alice, contact_jid: contact }).first()).room_id,
        "!dm-a:example.org",
      );
      assert.equal(await knex().schema.hasTable("interop_users"), false);
      // And forward again: the down left a schema 0015 accepts.
      await migrateToLatest(knex());
      assert.equal((await new InteropUsersTable(knex()).get(bob))?.deviceId, 2);
      assert.deepEqual(await counts(knex()), rowsBefore);
    });
  });
}
