import { answerGhostInvite } from "./ghost-invites.js";
import type { Knex } from "knex";
import type { Config, PermissionLevel } from "../config/schema.js";
import { ContactsTable } from "../db/contacts.js";
import { GhostsTable } from "../db/ghosts.js";
import { GroupPortalsTable } from "../db/groups.js";
import { GROUP_MESSAGES, MessagesTable } from "../db/messages.js";
import { PortalsTable, type PortalRow } from "../db/portals.js";
import { GROUP_REACTIONS, ReactionsTable } from "../db/reactions.js";
import { UsersTable } from "../db/users.js";
import { BridgeError, describeError } from "../util/errors.js";
import type { ContactAddress, MatrixUserId, RemoteGroupId, RoomId } from "../util/ids.js";
import type { Logger } from "../util/log.js";
import { accountCommands } from "./commands/account.js";
import { contactCommands } from "./commands/contacts.js";
import { CommandRegistry, type CommandContext } from "./commands/framework.js";
import { deadLettersCommand } from "./commands/dead-letters.js";
import { createGroupCommand } from "./commands/groups.js";
import type { CommandServices } from "./commands/services.js";
import type { DeadLetterQueue } from "./dead-letters.js";
import { GhostManager } from "./ghosts.js";
import { GroupManager } from "./groups.js";
import { LoginManager } from "./logins.js";
import type { MatrixApi } from "./matrix-api.js";
import { MatrixEventsHandler } from "./matrix-events.js";
import {
  isContactDirectory,
  type CoreCallbacks,
  type NetworkConnector,
  type NetworkDescription,
  type NetworkLogin,
  type RemoteEvent,
  type RemoteUserId,
} from "./network.js";
import { NO_OBSERVER, type CoreObserver } from "./observer.js";
import { permissionOf } from "./permissions.js";
import { UserLimits } from "./rate-limits.js";
import type { OpenPortal } from "./portals.js";
import { PortalManager } from "./portals.js";
import type { HealthPort, ProvisioningPort, RouterPort } from "./ports.js";
import { RemoteEventHandler } from "./remote-events.js";
import {
  echoed,
  groupCommandRefused,
  groupCreateHereUsage,
  groupCreatedHere,
  notLoggedIn,
  notReachable,
  welcome,
} from "./texts.js";

/**
 * Commands that run in a group portal: their answer is the same for everyone and private to
 * no one (the room is shared with other users of the bridge).
 */
const GROUP_SAFE_COMMANDS: ReadonlySet<string> = new Set(["help"]);

interface BridgeCoreOptions {
  config: Config;
  knex: Knex;
  matrix: MatrixApi;
  /** Built by the caller with the core as its CoreCallbacks (see `createConnector`). */
  createConnector: (callbacks: CoreCallbacks) => NetworkConnector;
  log: Logger;
  /** Told about bridged and failed messages (metrics); none by default. */
  observer?: CoreObserver;
  /** The clock of the per-user limits (tests). */
  now?: () => number;
  /** Backoff of the retries of a stored login that failed to load (tests shorten it). */
  loginRetry?: { initialMs: number; maxMs: number };
}

/**
 * The network-independent bridge: logins, portals, ghosts, message mapping and commands, wired
 * together. The Matrix side calls the `on*` and `handle*` methods; the connector calls `report`.
 */
export class BridgeCore implements CoreCallbacks {
  /** The connector's self-description: the network's name, command prefix and addresses. */
  readonly network: NetworkDescription;
  /** What the Matrix router may use (core/ports.ts). */
  readonly router: RouterPort;
  /** What the provisioning API may use (core/ports.ts). */
  readonly provisioning: ProvisioningPort;
  /** What readiness and the metrics read (core/ports.ts). */
  readonly health: HealthPort;
  private readonly users: UsersTable;
  private readonly portalRows: PortalsTable;
  private readonly ghosts: GhostManager;
  private readonly portals: PortalManager;
  private readonly groups: GroupManager;
  private readonly logins: LoginManager;
  private readonly commands: CommandRegistry<CommandServices>;
  /** What the commands may use, passed to them as `services` (commands/services.ts). */
  private readonly services: CommandServices;
  private readonly fromMatrix: MatrixEventsHandler;
  private readonly connector: NetworkConnector;
  private readonly config: Config;
  private readonly matrix: MatrixApi;
  private readonly limits: UserLimits;
  /** The Matrix ingress's dead letters, for the admin command (`attachDeadLetters`). */
  private deadLetters: DeadLetterQueue | undefined;
  private readonly remote: RemoteEventHandler;
  private readonly log: Logger;

  constructor(options: BridgeCoreOptions) {
    const { config, knex, matrix, log } = options;
    this.config = config;
    this.matrix = matrix;
    this.log = log;
    this.connector = options.createConnector(this);
    this.network = this.connector.describe();
    this.users = new UsersTable(knex, this.network.id);
    this.portalRows = new PortalsTable(knex, this.network.id);
    const contacts = new ContactsTable(knex, this.network.id);
    const messages = new MessagesTable(knex);
    const tables = {
      users: this.users,
      portals: this.portalRows,
      contacts,
      messages,
      reactions: new ReactionsTable(knex),
    };
    this.ghosts = new GhostManager({
      config,
      table: new GhostsTable(knex, this.network.id),
      matrix,
      connector: this.connector,
    });
    this.portals = new PortalManager({
      portals: this.portalRows,
      users: this.users,
      contacts,
      ghosts: this.ghosts,
      matrix,
      log: log.child({ component: "portals" }),
    });
    this.logins = new LoginManager({
      users: this.users,
      connector: this.connector,
      log: log.child({ component: "logins" }),
      retry: options.loginRetry,
      // A closure: the handler is made below, and a login changes only after the constructor.
      onLoginChanged: (user) => this.remote.forgetState(user),
    });
    this.groups = new GroupManager({
      table: new GroupPortalsTable(knex, this.network.id),
      users: this.users,
      ghosts: this.ghosts,
      logins: this.logins,
      matrix,
      log: log.child({ component: "groups" }),
    });
    const groupTables = {
      messages: new MessagesTable(knex, GROUP_MESSAGES),
      reactions: new ReactionsTable(knex, GROUP_REACTIONS),
    };
    const observer = options.observer ?? NO_OBSERVER;
    this.limits = new UserLimits(config.limits, options.now);
    const handlers = {
      tables,
      portals: this.portals,
      matrix,
      log,
      logins: this.logins,
      observer,
      limits: this.limits,
      groups: this.groups,
      groupTables,
    };
    this.remote = new RemoteEventHandler({ ...handlers, ghosts: this.ghosts });
    this.fromMatrix = new MatrixEventsHandler(handlers);
    this.commands = new CommandRegistry<CommandServices>(log.child({ component: "commands" }), {
      network: this.network.displayName,
      contact: this.network.identifier.argument,
      noun: this.network.identifier.noun,
      reach:
        this.network.reachableContacts === undefined
          ? undefined
          : ` (only contacts ${this.network.reachableContacts.who} can be reached)`,
      disclose:
        this.network.reportDisclosureLimit === undefined
          ? undefined
          : ` [0-${this.network.reportDisclosureLimit}]`,
    }).register(...accountCommands, ...contactCommands, createGroupCommand, deadLettersCommand);
    this.services = this.commandServices(contacts, messages);
    this.router = this.routerPort();
    this.provisioning = this.provisioningPort();
    this.health = {
      connector: this.connector,
      failedLogins: () => this.logins.failedCount(),
      loginFailure: (user) => this.logins.failure(user),
    };
  }

  /** The commands' port: the tables and managers as the commands use them, the core's methods. */
  private commandServices(contacts: ContactsTable, messages: MessagesTable): CommandServices {
    const deadLetters = () => this.deadLetters;
    return {
      users: this.users,
      portalRows: this.portalRows,
      contacts,
      messages,
      ghosts: this.ghosts,
      logins: this.logins,
      commands: this.commands,
      network: this.network,
      shownSafetyNumbers: new Map(),
      // Read at the command's run: the wiring attaches the queue after the core is built.
      get deadLetters() {
        return deadLetters();
      },
      loginStateOf: (user) => this.loginStateOf(user),
      permissionOf: (user) => this.permissionOf(user),
      logoutUser: (user, options) => this.logoutUser(user, options),
      cleanUpPortals: (user) => this.cleanUpPortals(user),
      openChat: (user, address) => this.openChat(user, address),
      requireLogin: (user) => this.requireLogin(user),
      createGroup: (user, subject, addresses) => this.createGroup(user, subject, addresses),
      contactFor: (login, address) => this.contactFor(login, address),
    };
  }

  private routerPort(): RouterPort {
    return {
      network: this.network,
      botUserId: this.matrix.botUserId,
      isOwnUser: (user) => this.isOwnUser(user),
      isGhost: (user) => this.ghosts.isGhost(user),
      permissionOf: (user) => this.permissionOf(user),
      notice: async (room, text, replyTo) => {
        await this.matrix.sendNotice(room, text, replyTo);
      },
      portalRows: this.portalRows,
      groupPortals: this.groups.table,
      users: this.users,
      portals: this.portals,
      groups: this.groups,
      fromMatrix: this.fromMatrix,
      onBotInvited: (user, room) => this.onBotInvited(user, room),
      onGhostInvited: (user, room, ghost, isDirect) =>
        this.onGhostInvited(user, room, ghost, isDirect),
      handleManagementMessage: (user, room, text) => this.handleManagementMessage(user, room, text),
      handlePortalCommand: (user, portal, text) => this.handlePortalCommand(user, portal, text),
      handleGroupPortalCommand: (user, room, text) =>
        this.handleGroupPortalCommand(user, room, text),
      createGroupHere: (user, room, text) => this.createGroupHere(user, room, text),
    };
  }

  private provisioningPort(): ProvisioningPort {
    return {
      network: this.network,
      botUserId: this.matrix.botUserId,
      homeserverDomain: this.config.homeserver.domain,
      loginFlows: () => this.connector.loginFlows(),
      logins: this.logins,
      users: this.users,
      portalRows: this.portalRows,
      ghosts: this.ghosts,
      isOwnUser: (user) => this.isOwnUser(user),
      permissionOf: (user) => this.permissionOf(user),
      loginStateOf: (user) => this.loginStateOf(user),
      logoutUser: (user, options) => this.logoutUser(user, options),
      openChat: (user, address) => this.openChat(user, address),
      createGroup: (user, subject, addresses) => this.createGroup(user, subject, addresses),
    };
  }

  /** The Matrix ingress's dead letters, for the admin `dead-letters` command (set by the wiring). */
  attachDeadLetters(queue: DeadLetterQueue): void {
    this.deadLetters = queue;
  }

  /** Starts the connector and loads the stored logins. */
  async start(): Promise<void> {
    await this.connector.start();
    await this.logins.loadAll();
  }

  async stop(): Promise<void> {
    this.logins.stop();
    await this.connector.stop();
  }

  report(login: MatrixUserId, event: RemoteEvent): Promise<void> {
    return this.remote.handle(login, event);
  }

  loginStateOf(user: MatrixUserId) {
    return this.remote.stateOf(user) ?? this.logins.get(user)?.state();
  }

  permissionOf(user: MatrixUserId): PermissionLevel {
    return permissionOf(this.config.permissions, user);
  }

  /** Whether a sender is the bridge itself (bot or ghost): its events are never bridged back. */
  isOwnUser(user: string): boolean {
    return user === this.matrix.botUserId || this.ghosts.isGhost(user);
  }

  /** The user invited a ghost to a room of theirs: start or link that chat there (ghost-invites.ts). */
  onGhostInvited(
    user: MatrixUserId,
    room: RoomId,
    ghost: MatrixUserId,
    isDirect: boolean,
  ): Promise<void> {
    return answerGhostInvite(
      {
        matrix: this.matrix,
        ghosts: this.ghosts,
        portals: this.portals,
        log: this.log,
        permissionOf: (u) => this.permissionOf(u),
        login: (u) => this.logins.get(u),
        takeNewChat: (u) => this.limits.takeNewChat(u),
      },
      { user, room, ghost, isDirect },
    );
  }

  /** The bot was invited to a direct room by a permitted user: it joins, greets, manages there. */
  async onBotInvited(user: MatrixUserId, room: RoomId): Promise<void> {
    if (this.permissionOf(user) === "none") {
      // Said in the room before leaving: a silent leave looks like a broken bridge to the user,
      // and the admin needs the line to see whom the permissions keep out.
      this.log.info({ user, room }, "invite refused: the user has no permission to use the bridge");
      try {
        await this.matrix.join(this.matrix.botUserId, room);
        await this.matrix.sendNotice(
          room,
          `Sorry, ${user} may not use this bridge: the bridge's admin decides who may ` +
            "(permissions in its config). I am leaving this room.",
        );
      } catch (err) {
        // The refusal stands without the notice (a room the bot cannot join): still leave.
        this.log.warn({ room, err: describeError(err) }, "could not explain a refused invite");
      }
      await this.matrix.leave(this.matrix.botUserId, room);
      return;
    }
    await this.matrix.join(this.matrix.botUserId, room);
    await this.users.ensure(user);
    await this.users.update(user, { managementRoom: room });
    await this.matrix.sendNotice(room, welcome(this.network));
  }

  /** A text message in a room the bot manages for the user. */
  async handleManagementMessage(user: MatrixUserId, room: RoomId, text: string): Promise<void> {
    const reply = async (message: string): Promise<void> => {
      await this.matrix.sendNotice(room, message);
    };
    const level = this.permissionOf(user);
    if (level === "none") return;
    const parsed = text.trim().toLowerCase();
    const isCommand = this.commands.find(parsed.split(/\s+/)[0] ?? "") !== undefined;
    // A login flow's id answers the login even when a command has the same name (a network may
    // call its flow `name`, as loopback does): the warning asked for exactly that reply.
    const isFlowChoice = this.connector.loginFlows().some((f) => f.id === parsed);
    if (
      (await this.logins.isConversing(user)) &&
      (!isCommand || isFlowChoice || parsed === "cancel")
    ) {
      await reply(await this.logins.answer(user, text));
      return;
    }
    const prefix = this.network.commandPrefix;
    const line = text.trim().startsWith(prefix + " ") ? text.trim().slice(prefix.length + 1) : text;
    await this.commands.dispatch({ user, level, room, services: this.services, reply }, line);
  }

  /** A command in a portal (`<prefix> ...`): the portal's contact is the default address. */
  async handlePortalCommand(user: MatrixUserId, portal: PortalRow, text: string): Promise<void> {
    const room = portal.roomId as RoomId;
    const level = this.permissionOf(user);
    if (level === "none") return;
    const ghost = await this.ghosts.ensure(portal.contact);
    const ctx: CommandContext<CommandServices> = {
      user,
      level,
      room,
      services: this.services,
      reply: async (message) => {
        await this.matrix.sendNotice(room, message);
      },
    };
    const line = text.trim().slice(this.network.commandPrefix.length).trim();
    const [name, ...rest] = line.split(/\s+/);
    const command = this.commands.find(name ?? "");
    const takesContact = command?.args.startsWith("<{contact}>") === true;
    const withContact =
      takesContact &&
      (rest[0] === undefined || this.network.identifier.parse(rest[0]) === undefined)
        ? [name, ghost.address, ...rest].join(" ")
        : line;
    await this.commands.dispatch(ctx, withContact);
  }

  /**
   * A command in a group portal (`<prefix> ...`). Other users of the bridge read that room, so
   * only commands whose answer is nobody's private business run there; the others (login codes,
   * contacts, verification, the account) are not run and the user is pointed to the management
   * room. Nor does a login conversation take answers there.
   */
  async handleGroupPortalCommand(user: MatrixUserId, room: RoomId, text: string): Promise<void> {
    const level = this.permissionOf(user);
    if (level === "none") return;
    const line = text.trim().slice(this.network.commandPrefix.length).trim();
    const name = (line.split(/\s+/)[0] ?? "").toLowerCase();
    const command = this.commands.find(name);
    if (command === undefined || !GROUP_SAFE_COMMANDS.has(command.name)) {
      await this.matrix.sendNotice(room, groupCommandRefused(echoed(name), this.matrix.botUserId));
      return;
    }
    const reply = async (message: string): Promise<void> => {
      await this.matrix.sendNotice(room, message);
    };
    await this.commands.dispatch({ user, level, room, services: this.services, reply }, line);
  }

  /**
   * Logs the user out at the network (deleting their keys). The portals are kept (they go on after
   * a new login with the same address) unless `leavePortals`; `kept` counts them, for the offer to
   * clean up (`cleanUpPortals`). The `logout` command and the provisioning API both end here.
   */
  async logoutUser(
    user: MatrixUserId,
    options: { leavePortals?: boolean } = {},
  ): Promise<{ outcome: "done" | "local-only" | "not-logged-in"; left: number; kept: number }> {
    const outcome = await this.logins.logout(user);
    if (outcome === "not-logged-in") return { outcome, left: 0, kept: 0 };
    if (options.leavePortals === true) {
      return { outcome, left: await this.cleanUpPortals(user), kept: 0 };
    }
    const chats = (await this.portalRows.listByUser(user)).filter((p) => p.roomId !== null).length;
    const groups = await this.groups.portalCountOf(user);
    return { outcome, left: 0, kept: chats + groups };
  }

  /**
   * The bridge leaves the user's portals and takes them off the space, and takes the user out of
   * their group portals, which stay the other members' (`clean-up`).
   */
  async cleanUpPortals(user: MatrixUserId): Promise<number> {
    return (await this.portals.leaveAll(user)) + (await this.groups.removeUserFromAll(user));
  }

  /**
   * Opens (or reopens) the user's chat with an address: `start-chat` and the provisioning API's
   * create_dm. An address without a chat yet counts against `limits.new_chats_per_hour` before
   * it is looked up (lookups count against the network's quota and could enumerate addresses);
   * over the limit this throws a UserLimitError for the user.
   */
  async openChat(
    user: MatrixUserId,
    address: ContactAddress,
  ): Promise<{ reachable: false } | { reachable: true; open: OpenPortal }> {
    const login = this.requireLogin(user);
    const known = isContactDirectory(this.connector)
      ? this.connector.contactForAddress(address)
      : await this.ghosts.byAddress(address);
    const existing = known === undefined ? undefined : await this.portalRows.get(user, known);
    if (existing?.roomId === null || existing === undefined) this.limits.takeNewChat(user);
    const resolution = await login.resolveAddress(address);
    if (!resolution.reachable) return { reachable: false };
    return { reachable: true, open: await this.portals.openOutgoing(user, resolution.contact) };
  }

  /**
   * Creates a group with the contacts at the network, and its portal (`create-group` and the
   * provisioning API's create_group). Addresses are named through the connector or a lookup, as
   * in `start-chat`; an unreachable one fails the whole creation with a BridgeError for the user.
   */
  async createGroup(
    user: MatrixUserId,
    subject: string,
    addresses: readonly ContactAddress[],
  ): Promise<{ room: RoomId; group: RemoteGroupId; rejected: readonly string[] }> {
    const login = this.requireLogin(user);
    const members: RemoteUserId[] = [];
    for (const address of addresses) members.push(await this.contactFor(login, address));
    const created = await this.groups.create(user, subject, members);
    const byContact = new Map(members.map((m, i) => [m as string, addresses[i]]));
    return {
      room: created.room,
      group: created.group,
      rejected: created.rejected.map((r) => {
        const address = byContact.get(r.id);
        return address === undefined ? r.id : this.network.identifier.format(address);
      }),
    };
  }

  /**
   * `<prefix> create-group <name>` in a room of the user's that is neither a portal nor a management
   * room (bridgev2's create-group): a group with the members whose ghosts are in the room, and
   * the room becomes its portal. Answered in the room.
   */
  async createGroupHere(user: MatrixUserId, room: RoomId, text: string): Promise<void> {
    if (this.permissionOf(user) === "none") return;
    const subject = text
      .trim()
      .replace(/^\S+\s+\S+/, "")
      .trim();
    const reply = async (message: string) => {
      await this.matrix.sendNotice(room, message);
    };
    if (subject === "") {
      await reply(groupCreateHereUsage(this.network.commandPrefix));
      return;
    }
    try {
      const login = this.requireLogin(user);
      const members: RemoteUserId[] = [];
      for (const mxid of await this.matrix.roomMembers(this.matrix.botUserId, room)) {
        if (!this.ghosts.isGhost(mxid)) continue;
        const known = await this.ghosts.contactOfGhost(mxid);
        const address = this.ghosts.addressOfGhost(mxid);
        if (known !== undefined) members.push(known);
        else if (address !== undefined) members.push(await this.contactFor(login, address));
      }
      if (members.length === 0) {
        await reply(groupCreateHereUsage(this.network.commandPrefix));
        return;
      }
      await this.groups.createInRoom(user, room, subject, members);
      await reply(groupCreatedHere(subject));
    } catch (err) {
      if (!(err instanceof BridgeError)) throw err;
      await reply(err.message);
    }
  }

  // Helpers for commands.

  requireLogin(user: MatrixUserId): NetworkLogin {
    const login = this.logins.get(user);
    if (login === undefined) throw new BridgeError("not-logged-in", notLoggedIn);
    return login;
  }

  /**
   * The contact id of an address, without a lookup when the connector can name it or the bridge
   * has seen it; otherwise through the network's reachability check.
   */
  async contactFor(login: NetworkLogin, address: ContactAddress): Promise<RemoteUserId> {
    if (isContactDirectory(this.connector)) return this.connector.contactForAddress(address);
    const known = await this.ghosts.byAddress(address);
    if (known !== undefined) return known;
    const resolution = await login.resolveAddress(address);
    if (!resolution.reachable) {
      throw new BridgeError(
        "not-reachable",
        notReachable(this.network.identifier.format(address), this.network),
      );
    }
    return resolution.contact;
  }
}
