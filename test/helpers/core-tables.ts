import type { Knex } from "knex";
import { ContactsTable } from "../../src/db/contacts.js";
import { GroupPortalsTable } from "../../src/db/groups.js";
import { MessagesTable } from "../../src/db/messages.js";
import { PortalsTable } from "../../src/db/portals.js";
import { UsersTable } from "../../src/db/users.js";

/**
 * The core's tables on the bridge's database, for tests to read what the core stored. The core
 * keeps its own instances private (its consumers go through core/ports.ts); these are the same
 * tables on the same connection, of the core's network (`core.network.id`; the interop
 * connector's by default). The portals' cache is per connection and network, so it is shared too.
 */
export function coreTables(knex: Knex, network = "whatsapp") {
  return {
    users: new UsersTable(knex, network),
    portalRows: new PortalsTable(knex, network),
    contacts: new ContactsTable(knex, network),
    messages: new MessagesTable(knex),
    groups: new GroupPortalsTable(knex, network),
  };
}

export type CoreTables = ReturnType<typeof coreTables>;
