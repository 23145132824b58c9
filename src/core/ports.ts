import type { PermissionLevel } from "../config/schema.js";
import type { GroupPortalsTable } from "../db/groups.js";
import type { PortalRow, PortalsTable } from "../db/portals.js";
import type { UsersTable } from "../db/users.js";
import type { ContactAddress, EventId, MatrixUserId, RemoteGroupId, RoomId } from "../util/ids.js";
import type { GhostManager } from "./ghosts.js";
import type { GroupManager } from "./groups.js";
import type { LoginLoadFailure, LoginManager } from "./logins.js";
import type { MatrixEventsHandler } from "./matrix-events.js";
import type { LoginState, NetworkConnector, NetworkDescription } from "./network.js";
import type { OpenPortal, PortalManager } from "./portals.js";

/*
 * The core's ports: what each outside consumer may use of it, and nothing more (#16, "explicit
 * ports instead of BridgeCore's fields"). BridgeCore builds one object per port and keeps its
 * tables and managers private, so a consumer's needs show in one interface and a test drives the
 * core through the same door the product does.
 */

/** What the Matrix router (matrix/router.ts) needs: who is who, where a room leads, the handlers. */
export interface RouterPort {
  /** The network's self-description: the router reads the portal command prefix from it. */
  readonly network: NetworkDescription;
  readonly botUserId: MatrixUserId;
  /** Whether a sender is the bridge itself (bot or ghost): its events are never bridged back. */
  isOwnUser(user: string): boolean;
  isGhost(user: string): boolean;
  permissionOf(user: MatrixUserId): PermissionLevel;
  /** A notice from the bot in a room (refusals, echoes the router answers itself). */
  notice(room: RoomId, text: string, replyTo?: EventId): Promise<void>;
  /** Which 1:1 portal, group portal or management room a room is. */
  readonly portalRows: Pick<PortalsTable, "byRoom">;
  readonly groupPortals: Pick<GroupPortalsTable, "byRoom" | "user" | "users">;
  readonly users: Pick<UsersTable, "byManagementRoom">;
  /** A user's membership changed in a 1:1 portal. */
  readonly portals: Pick<PortalManager, "onUserMembership">;
  /** Membership, name and power-level changes in group portals. */
  readonly groups: Pick<
    GroupManager,
    | "onUserMembership"
    | "onGhostInvited"
    | "onGhostKicked"
    | "onRenamed"
    | "onPowerLevels"
    | "onOutsider"
  >;
  /** Messages, edits, reactions, redactions, typing and receipts from Matrix into portals. */
  readonly fromMatrix: Pick<
    MatrixEventsHandler,
    "message" | "edit" | "reaction" | "redaction" | "typing" | "read"
  >;
  onBotInvited(user: MatrixUserId, room: RoomId): Promise<void>;
  onGhostInvited(
    user: MatrixUserId,
    room: RoomId,
    ghost: MatrixUserId,
    isDirect: boolean,
  ): Promise<void>;
  handleManagementMessage(user: MatrixUserId, room: RoomId, text: string): Promise<void>;
  handlePortalCommand(user: MatrixUserId, portal: PortalRow, text: string): Promise<void>;
  handleGroupPortalCommand(user: MatrixUserId, room: RoomId, text: string): Promise<void>;
  createGroupHere(user: MatrixUserId, room: RoomId, text: string): Promise<void>;
}

/** What the provisioning API (provisioning/api.ts) needs: the login processes and chat creation. */
export interface ProvisioningPort {
  readonly network: NetworkDescription;
  readonly botUserId: MatrixUserId;
  readonly homeserverDomain: string;
  loginFlows(): ReturnType<NetworkConnector["loginFlows"]>;
  readonly logins: Pick<
    LoginManager,
    "get" | "securityWarningText" | "startStructured" | "stepOf" | "submitStructured"
  >;
  readonly users: Pick<UsersTable, "get">;
  readonly portalRows: Pick<PortalsTable, "get">;
  readonly ghosts: Pick<GhostManager, "mxidFor">;
  isOwnUser(user: string): boolean;
  permissionOf(user: MatrixUserId): PermissionLevel;
  loginStateOf(user: MatrixUserId): LoginState | undefined;
  logoutUser(
    user: MatrixUserId,
    options?: { leavePortals?: boolean },
  ): Promise<{ outcome: "done" | "local-only" | "not-logged-in"; left: number; kept: number }>;
  openChat(
    user: MatrixUserId,
    address: ContactAddress,
  ): Promise<{ reachable: false } | { reachable: true; open: OpenPortal }>;
  createGroup(
    user: MatrixUserId,
    subject: string,
    addresses: readonly ContactAddress[],
  ): Promise<{ room: RoomId; group: RemoteGroupId; rejected: readonly string[] }>;
}

/** What readiness (`/ready`) and the metrics read: the connection's health, the failed logins. */
export interface HealthPort {
  /** Asked for its connection health and queue depths when it reports them (network.ts guards). */
  readonly connector: NetworkConnector;
  /** Stored logins that failed to load and wait for a retry. */
  failedLogins(): number;
  /** Why a user's stored login failed to load and when it is tried next, if it did. */
  loginFailure(user: MatrixUserId): Readonly<LoginLoadFailure> | undefined;
}
