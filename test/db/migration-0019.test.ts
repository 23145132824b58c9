import assert from "node:assert/strict";
import type { Knex } from "knex";
import { ContactsTable } from "../../src/db/contacts.js";
import { GhostsTable } from "../../src/db/ghosts.js";
import { GroupPortalsTable } from "../../src/db/groups.js";
import { PortalsTable } from "../../src/db/portals.js";
import { UsersTable } from "../../src/db/users.js";
import type {
  ContactAddress,
  MatrixUserId,
  RemoteGroupId,
  RemoteUserId,
} from "../../src/util/ids.js";
import { describeOnBackends } from "../helpers/db.js";
import { MigrationsUpTo } from "../helpers/migrations.js";

const T = 1_700_000_000_000;
const alice = "@alice:example.org" as MatrixUserId;
const bob = "@bob:example.org" as MatrixUserId;
const carol = "@carol:example.org" as MatrixUserId;
const mum = "491701234567@wa.example" as RemoteUserId;
const group = "g1@groups.wa.example" as RemoteGroupId;
const INTEROP = "whatsapp";
const OTHER = "loopback";

/** Rows as the bridge wrote them through the keys of 0015-0018 (the interop network's). */
async function populate(knex: Knex): Promise<void> {
  // One row at a time: a multi-row insert writes NULL, not the default, for a missing column.
  await knex("users").insert({
    mxid: alice,
    address: "+491709876543",
    login_state: "logged-in",
    created_at: T,
    updated_at: T,
  });
  await knex("users").insert({ mxid: bob, created_at: T, updated_at: T });
  await knex("ghosts").insert({
    remote_id: mum,
    address: "+491701234567",
    mxid: "@whatsapp_491701234567:example.org",
    display_name: "Mum (WhatsApp)",
    created_at: T,
  });
  await knex("contacts").insert({
    user_mxid: alice,
    remote_id: mum,
    local_name: "Mum",
    created_at: T,
  });
  await knex("portals").insert({
    user_mxid: alice,
    remote_id: mum,
    room_id: "!dm:example.org",
    request_state: "accepted",
    created_at: T,
    updated_at: T,
  });
  const [{ id: portalId }] = (await knex("portals").select("id")) as [{ id: number }];
  await knex("messages").insert({
    portal_id: portalId,
    event_id: "$m1",
    remote_id: "o1",
    author: mum,
    sent_at: T,
    direction: "in",
  });
  await knex("group_portals").insert({
    remote_id: group,
    subject: "Family",
    created_at: T,
    updated_at: T,
  });
}

const TABLES = ["users", "ghosts", "contacts", "portals", "messages", "group_portals"] as const;

async function counts(knex: Knex): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const table of TABLES) {
    const row = (await knex(table).count({ n: "*" }).first()) as { n: number | string };
    out[table] = Number(row.n);
  }
  return out;
}

describeOnBackends(
  "migration 0019: the network is part of every key of a remote id or address",
  (get) => {
    const knex = (): Knex => get().db.knex;
    const options = { tableName: "schema_migrations" };
    let before0019: Record<string, number> = {};

    // One database for the suite: the tests run in order, up then down (as migration-0017's).
    before(async function () {
      await knex().migrate.latest({ ...options, migrationSource: new MigrationsUpTo("0018") });
      await populate(knex());
      before0019 = await counts(knex());
    });

    it("keeps every row (nothing cascaded by the rebuilt tables) and reads them as the interop network's", async function () {
      const [, applied] = (await knex().migrate.latest({
        ...options,
        migrationSource: new MigrationsUpTo("0019"),
      })) as [number, string[]];
      assert.deepEqual(applied, ["0019_network_keys"]);
      assert.deepEqual(await counts(knex()), before0019);
      assert.equal(
        (await new GhostsTable(knex(), INTEROP).get(mum))?.displayName,
        "Mum (WhatsApp)",
      );
      assert.equal((await new ContactsTable(knex(), INTEROP).get(alice, mum))?.localName, "Mum");
      const portal = await new PortalsTable(knex(), INTEROP).get(alice, mum);
      assert.equal(portal?.roomId, "!dm:example.org");
      assert.equal((await knex()("messages").first()).portal_id, portal?.id, "messages kept");
      assert.equal(
        (await new GroupPortalsTable(knex(), INTEROP).byRemote(group))?.subject,
        "Family",
      );
      assert.deepEqual(await new UsersTable(knex(), INTEROP).loggedInIds(), [alice]);
    });

    it("another network may then hold the same remote id, address and group id", async function () {
      const ghosts = new GhostsTable(knex(), OTHER);
      await ghosts.upsert({
        contact: mum,
        // Longer than the 16 characters 0001 gave the column (PostgreSQL refused it).
        address: "a.rather.long.handle@loop" as ContactAddress,
        mxid: "@loop_mum:example.org" as MatrixUserId,
        displayName: "Mum (Loopback)",
      });
      await new ContactsTable(knex(), OTHER).update(alice, mum, { localName: "Other mum" });
      await new PortalsTable(knex(), OTHER).ensure(alice, mum, "none");
      await new GroupPortalsTable(knex(), OTHER).ensure(group);
      await new UsersTable(knex(), OTHER).ensure(carol);
      await new UsersTable(knex(), OTHER).update(carol, {
        address: "+491709876543" as ContactAddress,
      });
      assert.equal(
        (await new GhostsTable(knex(), INTEROP).get(mum))?.displayName,
        "Mum (WhatsApp)",
      );
      assert.equal((await ghosts.get(mum))?.displayName, "Mum (Loopback)");
      assert.equal((await new ContactsTable(knex(), INTEROP).get(alice, mum))?.localName, "Mum");
    });

    it("rolling 0019 back keeps the interop network's row of each old key", async function () {
      const [, undone] = (await knex().migrate.down({
        ...options,
        migrationSource: new MigrationsUpTo("0019"),
      })) as [number, string[]];
      assert.deepEqual(undone, ["0019_network_keys"]);
      // Every row of the other network went but carol's login (a user is not a remote id).
      assert.deepEqual(await counts(knex()), { ...before0019, users: before0019["users"]! + 1 });
      const ghost = (await knex()("ghosts").where({ remote_id: mum }).first()) as Record<
        string,
        unknown
      >;
      assert.equal(ghost["display_name"], "Mum (WhatsApp)");
      const contact = (await knex()("contacts").where({ remote_id: mum }).first()) as Record<
        string,
        unknown
      >;
      assert.equal(contact["local_name"], "Mum");
      assert.equal(await knex().schema.hasColumn("group_portals", "network"), false);
      // The address carol took on the other network is dropped, alice keeps hers.
      const users = (await knex()("users").orderBy("mxid").select("mxid", "address")) as {
        mxid: string;
        address: string | null;
      }[];
      assert.deepEqual(
        users.map((u) => [u.mxid, u.address]),
        [
          [alice, "+491709876543"],
          [bob, null],
          [carol, null],
        ],
      );
      // The old keys are back: a second ghost of the same remote id is refused.
      await assert.rejects(
        knex()("ghosts").insert({
          remote_id: mum,
          network: OTHER,
          mxid: "@x:example.org",
          created_at: T,
        }),
      );
      // And forward again.
      await knex().migrate.latest({ ...options, migrationSource: new MigrationsUpTo("0019") });
      assert.equal((await new GhostsTable(knex(), INTEROP).get(mum))?.address, "+491701234567");
    });
  },
  { migrate: false },
);
