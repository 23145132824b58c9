import type { Knex } from "knex";
import type { ContactAddress, MatrixUserId, RoomId } from "../util/ids.js";
import { readBool, readNumberOrNull, readStringOrNull } from "./values.js";

/** logged-out | warned (saw the security warning) | verifying (a login is in progress) | logged-in */
type LoginStateColumn = "logged-out" | "warned" | "verifying" | "logged-in";

interface UserRow {
  mxid: MatrixUserId;
  /** The address the network verified for the login (interop: the bound phone number). */
  address: ContactAddress | null;
  handle: string | null;
  loginState: LoginStateColumn;
  loginFlow: string | null;
  managementRoom: RoomId | null;
  spaceRoom: RoomId | null;
  readReceipts: boolean;
  typingNotifications: boolean;
  warningAcceptedAt: number | null;
  createdAt: number;
  updatedAt: number;
}

type UserPatch = Partial<
  Pick<
    UserRow,
    | "address"
    | "handle"
    | "loginState"
    | "loginFlow"
    | "managementRoom"
    | "spaceRoom"
    | "readReceipts"
    | "typingNotifications"
    | "warningAcceptedAt"
  >
>;

const COLUMNS: Record<keyof UserPatch, string> = {
  address: "address",
  handle: "handle",
  loginState: "login_state",
  loginFlow: "login_flow",
  managementRoom: "management_room",
  spaceRoom: "space_room",
  readReceipts: "read_receipts",
  typingNotifications: "typing_notifications",
  warningAcceptedAt: "warning_accepted_at",
};

/** The `users` table: one row per Matrix user who talked to the bridge. */
export class UsersTable {
  constructor(
    private readonly knex: Knex,
    /**
     * The network whose logins these are (its description's id): written on insert, and the
     * lists of logins and the address a login holds read only its rows. A user is found by Matrix
     * id alone: the row is the Matrix user's, one per database.
     */
    private readonly network: string,
  ) {}

  async get(mxid: MatrixUserId): Promise<UserRow | undefined> {
    const row = (await this.knex("users").where({ mxid }).first()) as
      Record<string, unknown> | undefined;
    return row === undefined ? undefined : toUser(row);
  }

  /** Returns the user's row, creating it (logged out) on first contact. */
  async ensure(mxid: MatrixUserId, now = Date.now()): Promise<UserRow> {
    // One statement either way: a user seen before is read; a new one is inserted and returned
    // by the insert itself. Only a concurrent first contact (the insert found the row) reads again.
    const known = await this.get(mxid);
    if (known !== undefined) return known;
    const [inserted] = (await this.knex("users")
      .insert({ mxid, network: this.network, created_at: now, updated_at: now })
      .onConflict("mxid")
      .ignore()
      .returning("*")) as Record<string, unknown>[];
    const row = inserted === undefined ? await this.get(mxid) : toUser(inserted);
    if (row === undefined) throw new Error(`user ${mxid} vanished right after its insert`);
    return row;
  }

  async update(mxid: MatrixUserId, patch: UserPatch, now = Date.now()): Promise<void> {
    const values: Record<string, unknown> = { updated_at: now };
    for (const [key, value] of Object.entries(patch)) {
      values[COLUMNS[key as keyof UserPatch]] = value;
    }
    await this.knex("users").where({ mxid }).update(values);
  }

  /** Frees an address held by another user (interop: the gatekeeper moved the binding, §9.1 rule 6). */
  async releaseAddress(
    address: ContactAddress,
    keep: MatrixUserId,
    now = Date.now(),
  ): Promise<void> {
    await this.knex("users")
      .where({ network: this.network, address })
      .andWhereNot({ mxid: keep })
      .update({ address: null, updated_at: now });
  }

  async byManagementRoom(room: RoomId): Promise<UserRow | undefined> {
    const row = (await this.knex("users").where({ management_room: room }).first()) as
      Record<string, unknown> | undefined;
    return row === undefined ? undefined : toUser(row);
  }

  async loggedIn(): Promise<UserRow[]> {
    const rows = (await this.knex("users")
      .where({ network: this.network, login_state: "logged-in" })
      .orderBy("mxid")) as Record<string, unknown>[];
    return rows.map(toUser);
  }

  /** The ids of logged-in users, in one query (start-up: only the ids are needed). */
  async loggedInIds(): Promise<MatrixUserId[]> {
    const rows = (await this.knex("users")
      .select("mxid")
      .where({ network: this.network, login_state: "logged-in" })
      .orderBy("mxid")) as { mxid: MatrixUserId }[];
    return rows.map((row) => row.mxid);
  }

  /** How many of the network's users are logged in (the metrics' users_logged_in). */
  async countLoggedIn(): Promise<number> {
    const row = (await this.knex("users")
      .where({ network: this.network, login_state: "logged-in" })
      .count({ n: "*" })
      .first()) as { n: number | string } | undefined;
    return Number(row?.n ?? 0);
  }

  async countByState(): Promise<Record<LoginStateColumn, number>> {
    const rows = (await this.knex("users")
      .select("login_state")
      .where({ network: this.network })
      .count({ n: "*" })
      .groupBy("login_state")) as { login_state: LoginStateColumn; n: number | string }[];
    const counts = { "logged-out": 0, warned: 0, verifying: 0, "logged-in": 0 };
    for (const row of rows) counts[row.login_state] = Number(row.n);
    return counts;
  }
}

function toUser(row: Record<string, unknown>): UserRow {
  return {
    mxid: String(row["mxid"]) as MatrixUserId,
    address: readStringOrNull(row["address"]) as ContactAddress | null,
    handle: readStringOrNull(row["handle"]),
    loginState: String(row["login_state"]) as LoginStateColumn,
    loginFlow: readStringOrNull(row["login_flow"]),
    managementRoom: readStringOrNull(row["management_room"]) as RoomId | null,
    spaceRoom: readStringOrNull(row["space_room"]) as RoomId | null,
    readReceipts: readBool(row["read_receipts"]),
    typingNotifications: readBool(row["typing_notifications"]),
    warningAcceptedAt: readNumberOrNull(row["warning_accepted_at"]),
    createdAt: Number(row["created_at"]),
    updatedAt: Number(row["updated_at"]),
  };
}
