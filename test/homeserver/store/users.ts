import { MatrixError } from "../errors.js";
import { newOpaqueId } from "../events.js";

export interface UserRecord {
  userId: string;
  localpart: string;
  /** Unset for appservice-registered (passwordless) users. */
  password?: string;
  displayname: string | null;
  avatarUrl: string | null;
  /** The appservice that registered the user, if any. */
  appserviceId?: string;
  presence: { presence: string; statusMsg?: string; lastActive: number };
}

export interface Session {
  accessToken: string;
  userId: string;
  deviceId: string;
}

/** Localparts allowed by the spec's user identifier grammar (historical characters excluded). */
const LOCALPART = /^[a-z0-9._=\-/+]+$/;

/** Accounts, devices and access tokens. */
export class UserStore {
  private readonly users = new Map<string, UserRecord>();
  private readonly sessions = new Map<string, Session>();

  constructor(private readonly serverName: string) {}

  userIdFor(localpart: string): string {
    return `@${localpart}:${this.serverName}`;
  }

  get(userId: string): UserRecord | undefined {
    return this.users.get(userId);
  }

  create(
    localpart: string,
    options: { password?: string; appserviceId?: string } = {},
  ): UserRecord {
    if (!LOCALPART.test(localpart)) {
      throw new MatrixError(
        400,
        "M_INVALID_USERNAME",
        `Invalid localpart ${JSON.stringify(localpart)}`,
      );
    }
    const userId = this.userIdFor(localpart);
    if (this.users.has(userId))
      throw new MatrixError(400, "M_USER_IN_USE", `${userId} is already registered`);
    const record: UserRecord = {
      userId,
      localpart,
      displayname: localpart,
      avatarUrl: null,
      presence: { presence: "offline", lastActive: Date.now() },
    };
    if (options.password !== undefined) record.password = options.password;
    if (options.appserviceId !== undefined) record.appserviceId = options.appserviceId;
    this.users.set(userId, record);
    return record;
  }

  checkPassword(userId: string, password: string): boolean {
    const record = this.users.get(userId);
    return record?.password !== undefined && record.password === password;
  }

  startSession(userId: string, deviceId?: string): Session {
    const session: Session = {
      accessToken: `syt_${newOpaqueId(32)}`,
      userId,
      deviceId: deviceId ?? newOpaqueId(10).toUpperCase(),
    };
    this.sessions.set(session.accessToken, session);
    return session;
  }

  session(accessToken: string): Session | undefined {
    return this.sessions.get(accessToken);
  }

  endSession(accessToken: string): void {
    this.sessions.delete(accessToken);
  }

  /** Revokes every access token of one device. */
  endDeviceSessions(userId: string, deviceId: string): void {
    for (const [token, session] of this.sessions)
      if (session.userId === userId && session.deviceId === deviceId) this.sessions.delete(token);
  }

  endAllSessions(userId: string): void {
    for (const [token, session] of this.sessions)
      if (session.userId === userId) this.sessions.delete(token);
  }

  /** Case-insensitive substring search over user ids and display names. */
  search(term: string, limit: number): UserRecord[] {
    const needle = term.toLowerCase();
    return [...this.users.values()]
      .filter(
        (u) =>
          u.userId.toLowerCase().includes(needle) ||
          (u.displayname ?? "").toLowerCase().includes(needle),
      )
      .slice(0, limit);
  }
}
