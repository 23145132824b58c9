/**
 * The interop connector's tables, one module per table (docs/architecture.md, "Folders"): every
 * statement the connector runs on its own tables is in this folder, builder and prepared hot-path
 * statements alike. Callers name the table: `tables.sessions.upsert(tx, row)`. Transactions stay
 * the callers' (what commits together is their decision); each function runs in whatever it is
 * given: the shared knex, a knex transaction, or a `Tx` of src/db/sql.ts (hot-path statements
 * need the `Tx`).
 */
export * as decryptedMessages from "./decrypted-messages.js";
export * as deviceLists from "./device-lists.js";
export * as groups from "./groups.js";
export * as identities from "./identities.js";
export * as inbox from "./inbox.js";
export * as kyberPreKeys from "./kyber-prekeys.js";
export * as kyberUsed from "./kyber-used.js";
export * as localDevices from "./local-devices.js";
export * as localIdentities from "./local-identities.js";
export * as outbox from "./outbox.js";
export * as ownSenderKeys from "./own-sender-keys.js";
export * as preKeys from "./prekeys.js";
export * as providerDevices from "./provider-devices.js";
export * as remoteDevices from "./remote-devices.js";
export * as retryAnswers from "./retry-answers.js";
export * as retryRequests from "./retry-requests.js";
export * as senderKeyHolders from "./sender-key-holders.js";
export * as senderKeys from "./sender-keys.js";
export * as sentEnvelopes from "./sent-envelopes.js";
export * as sessions from "./sessions.js";
export * as signedPreKeys from "./signed-prekeys.js";
