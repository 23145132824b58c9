import assert from "node:assert/strict";
import type { RemoteUserId } from "../../src/core/network.js";
import { PortalsTable } from "../../src/db/portals.js";
import { UsersTable } from "../../src/db/users.js";
import { matrixUserId, roomId } from "../../src/util/ids.js";
import { describeOnBackends } from "../helpers/db.js";

/** The counts the metrics read at scrape time (src/bridge.ts, scrapeSources). */
const NETWORK = "whatsapp";
const OTHER_NETWORK = "loopback";

const alice = matrixUserId("@alice:example.org");
const bob = matrixUserId("@bob:example.org");
const carol = matrixUserId("@carol:example.org");
const contact = "491701234567@wa.example" as RemoteUserId;
const other = "491705550000@wa.example" as RemoteUserId;

describeOnBackends("table counts", (get) => {
  it("logged-in users are counted for the table's network only, other login states not at all", async function () {
    const knex = get().db.knex;
    const users = new UsersTable(knex, NETWORK);
    const elsewhere = new UsersTable(knex, OTHER_NETWORK);
    assert.equal(await users.countLoggedIn(), 0);
    await users.ensure(alice);
    await users.update(alice, { loginState: "logged-in" });
    await users.ensure(bob);
    await users.update(bob, { loginState: "verifying" });
    // A user row belongs to the network that created it; carol logged in to the other network.
    await elsewhere.ensure(carol);
    await elsewhere.update(carol, { loginState: "logged-in" });
    assert.equal(await users.countLoggedIn(), 1);
    assert.equal(await elsewhere.countLoggedIn(), 1);
    await users.update(bob, { loginState: "logged-in" });
    assert.equal(await users.countLoggedIn(), 2);
  });

  it("portals are counted once they have a room, for the table's network only", async function () {
    const knex = get().db.knex;
    const portals = new PortalsTable(knex, NETWORK);
    const elsewhere = new PortalsTable(knex, OTHER_NETWORK);
    assert.equal(await portals.countWithRoom(), 0);
    const withRoom = await portals.ensure(alice, contact, "none");
    await portals.update(withRoom.id, { roomId: roomId("!a:example.org") });
    await portals.ensure(alice, other, "incoming-pending");
    // The same user and remote id on the other network: a row of its own, with a room.
    const theirs = await elsewhere.ensure(alice, contact, "none");
    await elsewhere.update(theirs.id, { roomId: roomId("!b:example.org") });
    assert.equal(await portals.countWithRoom(), 1);
    assert.equal(await elsewhere.countWithRoom(), 1);
    assert.equal(await portals.count(), 2, "count() still counts the rows without a room");
  });
});
