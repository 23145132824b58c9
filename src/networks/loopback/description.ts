import type { IdentifierKind, NetworkDescription } from "../../core/network.js";
import type { ContactAddress } from "../../util/ids.js";

/** A loopback user's name: what comes before `@loop`. */
const NAME = "[a-z0-9._-]{1,32}";
const ADDRESS = new RegExp(`^(${NAME})@loop$`);

/**
 * Loopback addresses are handles such as `alice@loop`, typed and shown as they are; a ghost's
 * localpart holds the name before `@loop`.
 */
export const loopbackIdentifier: IdentifierKind = {
  noun: "address",
  argument: "name@loop",
  example: "alice@loop",
  parse: (input) => (ADDRESS.test(input) ? (input as ContactAddress) : undefined),
  format: (address) => address,
  toLocalpart: (address) => address.slice(0, -"@loop".length),
  localpartPattern: NAME,
  fromLocalpart: (localpart) =>
    new RegExp(`^${NAME}$`).test(localpart) ? (`${localpart}@loop` as ContactAddress) : undefined,
};

export const LOOPBACK_DESCRIPTION: NetworkDescription = {
  id: "loopback",
  displayName: "Loopback",
  commandPrefix: "!lo",
  ghostLocalpartTemplate: "loop_{id}",
  ghostDisplayNameTemplate: "{id} (Loopback)",
  identifier: loopbackIdentifier,
  securityNotes: [
    "Loopback is an in-memory network inside this bridge: nothing leaves the process, and " +
      "everything is forgotten when the bridge stops.",
    "Loopback has no end-to-end encryption and no safety numbers.",
  ],
};
