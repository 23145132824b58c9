import { BridgeError } from "../util/errors.js";
import type { MatrixUserId } from "../util/ids.js";
import type { LoginFlow, LoginProcess, NetworkConnector, NetworkLogin } from "./network.js";

/**
 * The connector used when none is wired in: it offers no login flow, so the bot answers and
 * explains instead of failing, and stored logins stay stored until a real connector loads them.
 */
export class UnavailableConnector implements NetworkConnector {
  loginFlows(): readonly LoginFlow[] {
    return [];
  }

  createLogin(): LoginProcess {
    throw unavailable();
  }

  async start(): Promise<void> {}

  async stop(): Promise<void> {}

  loadLogin(user: MatrixUserId): Promise<NetworkLogin> {
    return Promise.reject(unavailable(user));
  }
}

function unavailable(user?: MatrixUserId): BridgeError {
  return new BridgeError(
    "network-unavailable",
    `the WhatsApp connection is not available in this bridge${user === undefined ? "" : ` (login of ${user})`}`,
  );
}
