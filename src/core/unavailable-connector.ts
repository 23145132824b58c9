import { BridgeError } from "../util/errors.js";
import type { MatrixUserId } from "../util/ids.js";
import type {
  LoginFlow,
  LoginProcess,
  NetworkConnector,
  NetworkDescription,
  NetworkLogin,
} from "./network.js";
import { phoneIdentifier } from "../util/phone.js";

/**
 * What the bridge calls its network when none is wired in. Ghost names follow the phone
 * identifier, the kind of the stored ghosts a bridge without its connector most likely has.
 */
const UNCONFIGURED: NetworkDescription = {
  id: "unconfigured",
  displayName: "remote network",
  commandPrefix: "!bridge",
  ghostLocalpartTemplate: "remote_{id}",
  ghostDisplayNameTemplate: "{id}",
  identifier: phoneIdentifier,
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
