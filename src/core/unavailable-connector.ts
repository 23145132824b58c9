import { BridgeError } from "../util/errors.js";
import type { MatrixUserId } from "../util/ids.js";
import type { ContactAddress } from "../util/ids.js";
import type {
  IdentifierKind,
  LoginFlow,
  LoginProcess,
  NetworkConnector,
  NetworkDescription,
  NetworkLogin,
} from "./network.js";

/**
 * The addresses of no network: nothing a user types is one. The core reads only its own
 * network's rows (migration 0019), so a bridge without its connector meets no stored address
 * either; the localpart form (hex, reversible) only keeps the contract total.
 */
const NO_ADDRESSES: IdentifierKind = {
  noun: "address",
  argument: "address",
  example: "address",
  parse: () => undefined,
  format: (address) => address,
  toLocalpart: (address) => Buffer.from(address, "utf8").toString("hex"),
  localpartPattern: "[0-9a-f]+",
  fromLocalpart: (localpart) =>
    /^(?:[0-9a-f]{2})+$/.test(localpart)
      ? (Buffer.from(localpart, "hex").toString("utf8") as ContactAddress)
      : undefined,
};

/** What the bridge calls its network when none is wired in: no network's words. */
const UNCONFIGURED: NetworkDescription = {
  id: "unconfigured",
  displayName: "remote network",
  commandPrefix: "!bridge",
  ghostLocalpartTemplate: "remote_{id}",
  ghostDisplayNameTemplate: "{id}",
  identifier: NO_ADDRESSES,
  securityNotes: [],
};

/**
 * The connector used when none is wired in: it offers no login flow, so the bot answers and
 * explains instead of failing, and stored logins stay stored until a real connector loads them.
 */
export class UnavailableConnector implements NetworkConnector {
  constructor(private readonly description: NetworkDescription = UNCONFIGURED) {}

  describe(): NetworkDescription {
    return this.description;
  }

  loginFlows(): readonly LoginFlow[] {
    return [];
  }

  createLogin(): LoginProcess {
    throw this.unavailable();
  }

  async start(): Promise<void> {}

  async stop(): Promise<void> {}

  loadLogin(user: MatrixUserId): Promise<NetworkLogin> {
    return Promise.reject(this.unavailable(user));
  }

  private unavailable(user?: MatrixUserId): BridgeError {
    return new BridgeError(
      "network-unavailable",
      `the ${this.description.displayName} connection is not available in this bridge${user === undefined ? "" : ` (login of ${user})`}`,
    );
  }
}
