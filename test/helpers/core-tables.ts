import type { Knex } from "knex";
import { ContactsTable } from "../../src/db/contacts.js";
import { GroupPortalsTable } from "../../src/db/groups.js";
import { MessagesTable } from "../../src/db/messages.js";
import { PortalsTable } from "../../src/db/portals.js";
import { UsersTable } from "../../src/db/users.js";

/**
 * The core's tables on the bridge's database, for tests to read what the core stored. The core
 * keeps its own instances private (its consumers go through core/ports.ts); these are the same
 * tables on the same connection (the portals' cache is per connection, so it is shared too).
 */
export function coreTables(knex: Knex) {
  return {
    users: new UsersTable(knex),
    portalRows: new PortalsTable(knex),
    contacts: new ContactsTable(knex),
    messages: new MessagesTable(knex),
    groups: new GroupPortalsTable(knex),
  };
}

export type CoreTables = ReturnType<typeof coreTables>;
