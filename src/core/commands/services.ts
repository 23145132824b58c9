import type { PermissionLevel } from "../../config/schema.js";
import type { ContactsTable } from "../../db/contacts.js";
import type { MessagesTable } from "../../db/messages.js";
import type { PortalsTable } from "../../db/portals.js";
import type { UsersTable } from "../../db/users.js";
import type { ContactAddress, MatrixUserId, RemoteGroupId, RoomId } from "../../util/ids.js";
import type { DeadLetterQueue } from "../dead-letters.js";
import type { GhostManager } from "../ghosts.js";
import type { LoginManager } from "../logins.js";
import type { LoginState, NetworkDescription, NetworkLogin, RemoteUserId } from "../network.js";
import type { OpenPortal } from "../portals.js";
import type { CommandRegistry } from "./framework.js";

/**
 * What the bridge commands may use of the core: the commands' port. BridgeCore builds it (with
 * itself behind the methods) and passes it as `services`; the commands see only this, so
 * core/commands/ does not import bridge-core.ts (which imports the commands to register them).
 * Tables and managers appear as the few methods the commands call (`Pick`), not whole.
 */
export interface CommandServices {
  readonly users: Pick<UsersTable, "get" | "ensure" | "update" | "countByState">;
  readonly portalRows: Pick<PortalsTable, "get" | "count" | "listByUser">;
  readonly contacts: Pick<ContactsTable, "update" | "listByUser">;
  readonly messages: Pick<MessagesTable, "latestIncoming" | "count">;
  readonly ghosts: Pick<GhostManager, "mxidFor" | "ensure" | "label" | "setLocalName">;
  readonly logins: Pick<LoginManager, "begin" | "cancel" | "get" | "failure" | "count">;
  readonly commands: Pick<CommandRegistry<CommandServices>, "permitted" | "terms">;
  readonly deadLetters: DeadLetterQueue | undefined;
  /**
   * The safety number last shown to a user for a contact (`verify`), keyed `user contact`:
   * `verify … confirm` marks what the user compared, not whatever key the contact has by then.
   */
  readonly shownSafetyNumbers: Map<string, string>;
  /** The network's self-description: its name, its addresses. */
  readonly network: NetworkDescription;
  loginStateOf(user: MatrixUserId): LoginState | undefined;
  permissionOf(user: MatrixUserId): PermissionLevel;
  logoutUser(
    user: MatrixUserId,
    options?: { leavePortals?: boolean },
  ): Promise<{ outcome: "done" | "local-only" | "not-logged-in"; left: number; kept: number }>;
  cleanUpPortals(user: MatrixUserId): Promise<number>;
  openChat(
    user: MatrixUserId,
    address: ContactAddress,
  ): Promise<{ reachable: false } | { reachable: true; open: OpenPortal }>;
  requireLogin(user: MatrixUserId): NetworkLogin;
  /**
   * Creates a group at the network with these contacts and its portal room (`create-group`, the
   * provisioning API's create_group); `rejected` names the contacts the network would not add.
   */
  createGroup(
    user: MatrixUserId,
    subject: string,
    contacts: readonly ContactAddress[],
  ): Promise<{ room: RoomId; group: RemoteGroupId; rejected: readonly string[] }>;
  contactFor(login: NetworkLogin, address: ContactAddress): Promise<RemoteUserId>;
}

/** A command's address argument, as the network's identifier kind parses it. */
export function parseAddressArg(
  network: NetworkDescription,
  value: string | undefined,
): ContactAddress | undefined {
  return value === undefined ? undefined : network.identifier.parse(value);
}
