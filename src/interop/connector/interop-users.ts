// The table's module is src/interop/store/interop-users.ts (one store module per interop table,
// docs/architecture.md); this name stays while connector.ts, another helper's file, imports it.
export { InteropUsersTable, type InteropUserRow } from "../store/interop-users.js";
