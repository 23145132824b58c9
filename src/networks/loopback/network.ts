import type {
  BlockCapable,
  CoreCallbacks,
  EditCapable,
  GroupCapable,
  GroupInfo,
  GroupMember,
  GroupRejection,
  LoginFlow,
  LoginProcess,
  LoginState,
  LoginStep,
  MessageContent,
  MessageReference,
  NetworkConnector,
  NetworkDescription,
  NetworkLogin,
  ReactionCapable,
  ReceiptCapable,
  RemoteChatId,
  RemoteEvent,
  RemoteGroupId,
  RemoteMessageId,
  RemoteUserId,
  Resolution,
  SelfIdentified,
  TypingCapable,
} from "../../core/network.js";
import { BridgeError } from "../../util/errors.js";
import type { ContactAddress, MatrixUserId } from "../../util/ids.js";
import { LOOPBACK_DESCRIPTION, loopbackIdentifier } from "./description.js";
import {
  LoopbackGroups,
  MAX_GROUP_SIZE,
  infoOf,
  type GroupNetwork,
  type LoopbackGroup,
} from "./groups.js";

/** A message a Matrix user sent into the loopback network. */
interface LoopbackMessage {
  from: MatrixUserId;
  to: RemoteChatId;
  content: MessageContent;
  replyTo?: MessageReference;
  id: RemoteMessageId;
}

const LOGIN_FLOWS: readonly LoginFlow[] = [
  {
    id: "name",
    name: "a loopback name",
    description: "Pick a name; loopback users reach you as <name>@loop.",
  },
];

/** Ten minutes: loopback's own edit window, unlike WhatsApp's fifteen. */
const EDIT_WINDOW_MS = 600_000;

/**
 * An in-memory network: its users are names such as `alice@loop` (no phone numbers), a contact's
 * id is its address, and it offers edits, reactions, read receipts, typing, blocking and groups
 * (groups.ts), but no retractions, no reports and no safety numbers. Nothing leaves the process.
 *
 * It exists to prove that the core needs no particular network (its tests run against it and
 * against a phone-numbered fake) and for tests that want a network without the interop protocol.
 * Tests act as remote users through `remote(address)`; what Matrix users sent is in `sent` and
 * every other request of the core is a line in `actions`, in order.
 */
export class LoopbackNetwork implements NetworkConnector, GroupNetwork {
  /** Addresses of the network's users: only these are reachable. */
  readonly users = new Set<string>();
  /** Users who let nobody add them to a group: adding them is refused (`refused`). */
  readonly refusesGroups = new Set<string>();
  /** Groups by id, changed by the logins' group calls (tests may also edit them directly). */
  readonly groups = new Map<RemoteGroupId, LoopbackGroup>();
  /** The most members a group may have, its creator included; tests may lower it. */
  maxGroupSize = MAX_GROUP_SIZE;
  /** Events the network reported on its own whose `report` rejected, for `settled` to throw. */
  readonly undelivered: { user: MatrixUserId; event: RemoteEvent; err: unknown }[] = [];
  private deliveries: Promise<void> = Promise.resolve();
  private nextGroup = 1;
  readonly sent: LoopbackMessage[] = [];
  /** What the core asked the network besides messages, one line each (`read bob@loop m1`). */
  readonly actions: string[] = [];
  readonly logins = new Map<MatrixUserId, LoopbackLogin>();
  /** The edit window the logins report; tests may shorten it. */
  editWindowMs = EDIT_WINDOW_MS;
  /** Remote users a Matrix user blocked, as `user\naddress`. */
  private readonly blocked = new Set<string>();
  /** Conversations that exist (either side wrote), as `user\naddress`: the rest are requests. */
  private readonly conversations = new Set<string>();
  private nextId = 1;

  constructor(private readonly callbacks: CoreCallbacks) {}

  describe(): NetworkDescription {
    return LOOPBACK_DESCRIPTION;
  }

  loginFlows(): readonly LoginFlow[] {
    return LOGIN_FLOWS;
  }

  createLogin(user: MatrixUserId, flowId: string): LoginProcess {
    if (flowId !== "name") {
      throw new BridgeError("login-flow-unknown", `loopback has no login flow "${flowId}"`);
    }
    return new NameLoginProcess(this, user);
  }

  async start(): Promise<void> {}

  async stop(): Promise<void> {}

  /** In memory: a login not created since the start is loaded under its Matrix localpart. */
  async loadLogin(user: MatrixUserId): Promise<NetworkLogin> {
    return this.logins.get(user) ?? this.register(user, user.slice(1, user.indexOf(":")));
  }

  /** Acts as the remote user `address` (who is added to the network's users). */
  remote(address: string): LoopbackRemoteUser {
    const parsed = loopbackIdentifier.parse(address);
    if (parsed === undefined) throw new Error(`${address} is not a loopback address`);
    this.users.add(parsed);
    return new LoopbackRemoteUser(this, parsed as string as RemoteUserId);
  }

  /**
   * Hands an event to the core as the network would; resolves once the core handled it. Its
   * sender is a user of the network from then on (who writes, exists).
   */
  report(user: MatrixUserId, event: RemoteEvent): Promise<void> {
    if ("from" in event) this.users.add(event.from);
    return this.callbacks.report(user, event);
  }

  register(user: MatrixUserId, name: string): LoopbackLogin {
    const login = new LoopbackLogin(this, user, `${name}@loop` as RemoteUserId);
    // A logged-in user is a user of the network: others reach them and may add them to groups.
    this.users.add(login.self);
    this.logins.set(user, login);
    return login;
  }

  newId(): RemoteMessageId {
    return `loop-${this.nextId++}` as RemoteMessageId;
  }

  newGroupId(): RemoteGroupId {
    return `group-${this.nextGroup++}@groups.loop` as RemoteGroupId;
  }

  /**
   * Makes a group that a remote user created (its first member is its admin when none is named);
   * the bridge learns of it when a member login is told (`announceGroup`) or writes in it.
   */
  newGroup(subject: string, members: GroupMember[]): RemoteGroupId {
    const id = this.newGroupId();
    for (const m of members) this.users.add(m.id);
    this.groups.set(id, { subject, version: 1, members });
    return id;
  }

  /** A group's info as the network would report it. */
  groupInfo(id: RemoteGroupId): GroupInfo {
    const group = this.groups.get(id);
    if (group === undefined) throw new BridgeError("group-not-member", "No such group.");
    return infoOf(id, group);
  }

  /** The login of this bridge whose own id is `member`, if any. */
  loginOf(member: RemoteUserId): LoopbackLogin | undefined {
    for (const login of this.logins.values()) if (login.self === member) return login;
    return undefined;
  }

  /**
   * Reports an event the network sends on its own (a group change, a member's message) to the
   * login of `member`, if it is one of this bridge's. Delivered after the call that caused it
   * returned, one at a time in order, as a network's pushes arrive: a login's own group call
   * never waits for the core to handle its echo (which would wait for the call: a deadlock).
   */
  deliverTo(member: RemoteUserId, event: RemoteEvent): void {
    const login = this.loginOf(member);
    if (login === undefined) return;
    const user = login.user;
    this.deliveries = this.deliveries
      .then(() => new Promise<void>((resolve) => setImmediate(resolve)))
      .then(() => this.callbacks.report(user, event))
      .catch((err: unknown) => {
        this.undelivered.push({ user, event, err });
      });
  }

  /**
   * Resolves once every event the network sent on its own was handled by the core; rejects with
   * the first failure (kept in `undelivered`) so a test cannot miss one.
   */
  async settled(): Promise<void> {
    let last: Promise<void> | undefined;
    while (last !== this.deliveries) {
      last = this.deliveries;
      await last;
    }
    const failed = this.undelivered[0];
    if (failed !== undefined) {
      throw new Error(`the core refused ${failed.event.kind} for ${failed.user}`, {
        cause: failed.err,
      });
    }
  }

  isBlocked(user: MatrixUserId, contact: RemoteUserId): boolean {
    return this.blocked.has(`${user}\n${contact}`);
  }

  setBlocked(user: MatrixUserId, contact: RemoteUserId, blocked: boolean): void {
    if (blocked) this.blocked.add(`${user}\n${contact}`);
    else this.blocked.delete(`${user}\n${contact}`);
  }

  /** Records that `user` and `contact` talk; true when they did not before (a request). */
  converse(user: MatrixUserId, contact: RemoteUserId): boolean {
    const key = `${user}\n${contact}`;
    const first = !this.conversations.has(key);
    this.conversations.add(key);
    return first;
  }
}

/** A Matrix user's login at the loopback network. */
class LoopbackLogin
  implements
    NetworkLogin,
    SelfIdentified,
    EditCapable,
    ReactionCapable,
    ReceiptCapable,
    TypingCapable,
    BlockCapable,
    GroupCapable
{
  private loggedOut = false;
  private readonly groupCalls: LoopbackGroups;
  /** Ids of messages sent per idempotency key, so a repeated send queues nothing. */
  private readonly byKey = new Map<string, RemoteMessageId>();

  constructor(
    private readonly network: LoopbackNetwork,
    readonly user: MatrixUserId,
    readonly self: RemoteUserId,
  ) {
    this.groupCalls = new LoopbackGroups(network, self);
  }

  state(): LoginState {
    return this.loggedOut
      ? { code: "logged-out", message: "You logged out of loopback." }
      : { code: "connected", message: "Connected to loopback." };
  }

  async resolveAddress(address: ContactAddress): Promise<Resolution> {
    this.network.actions.push(`resolve ${address}`);
    return this.network.users.has(address)
      ? { reachable: true, contact: address as string as RemoteUserId }
      : { reachable: false };
  }

  async sendMessage(
    to: RemoteChatId,
    content: MessageContent,
    replyTo?: MessageReference,
    idempotencyKey?: string,
  ): Promise<RemoteMessageId> {
    this.checkIn();
    const earlier = idempotencyKey === undefined ? undefined : this.byKey.get(idempotencyKey);
    if (earlier !== undefined) return earlier;
    const group = this.network.groups.get(to as RemoteGroupId);
    if (group !== undefined) return this.sendToGroup(to as RemoteGroupId, group, content, replyTo);
    if (!this.network.users.has(to)) {
      throw new BridgeError("not-reachable", `${to} is not a loopback user`);
    }
    const id = this.network.newId();
    if (idempotencyKey !== undefined) this.byKey.set(idempotencyKey, id);
    this.network.converse(this.user, to as RemoteUserId);
    this.network.sent.push({ from: this.user, to, content, id, ...(replyTo ? { replyTo } : {}) });
    return id;
  }

  /** A group message reaches every other member; the bridge's own members through their logins. */
  private sendToGroup(
    to: RemoteGroupId,
    group: LoopbackGroup,
    content: MessageContent,
    replyTo?: MessageReference,
  ): RemoteMessageId {
    if (!group.members.some((m) => m.id === this.self)) {
      throw new BridgeError("group-not-member", "You are not a member of this group.");
    }
    const id = this.network.newId();
    this.network.sent.push({ from: this.user, to, content, id, ...(replyTo ? { replyTo } : {}) });
    const event: RemoteEvent = {
      kind: "message",
      group: to,
      from: this.self,
      id,
      sentAt: new Date(),
      order: Number(id.slice("loop-".length)),
      content,
      ...(replyTo === undefined ? {} : { replyTo }),
      isRequest: false,
    };
    for (const m of group.members) if (m.id !== this.self) this.network.deliverTo(m.id, event);
    return id;
  }

  selfId(): RemoteUserId {
    return this.self;
  }

  maxGroupSize(): number {
    return this.network.maxGroupSize;
  }

  async createGroup(
    subject: string,
    members: readonly RemoteUserId[],
  ): Promise<{ info: GroupInfo; rejected: readonly GroupRejection[] }> {
    this.checkIn();
    const created = this.groupCalls.createGroup(subject, members);
    this.network.actions.push(`create-group ${subject} [${members.join(",")}]`);
    return created;
  }

  async groupInfo(group: RemoteGroupId): Promise<GroupInfo> {
    this.checkIn();
    return this.groupCalls.groupInfo(group);
  }

  async addGroupMembers(
    group: RemoteGroupId,
    members: readonly RemoteUserId[],
  ): Promise<{ info: GroupInfo; rejected: readonly GroupRejection[] }> {
    this.checkIn();
    const added = this.groupCalls.addGroupMembers(group, members);
    this.network.actions.push(`add ${members.join(",")} ${group}`);
    return added;
  }

  async removeGroupMembers(
    group: RemoteGroupId,
    members: readonly RemoteUserId[],
  ): Promise<GroupInfo> {
    this.checkIn();
    const info = this.groupCalls.removeGroupMembers(group, members);
    this.network.actions.push(`remove ${members.join(",")} ${group}`);
    return info;
  }

  async setGroupAdmins(
    group: RemoteGroupId,
    members: readonly RemoteUserId[],
    admin: boolean,
  ): Promise<GroupInfo> {
    this.checkIn();
    const info = this.groupCalls.setGroupAdmins(group, members, admin);
    this.network.actions.push(`${admin ? "promote" : "demote"} ${members.join(",")} ${group}`);
    return info;
  }

  async setGroupSubject(group: RemoteGroupId, subject: string): Promise<GroupInfo> {
    this.checkIn();
    const info = this.groupCalls.setGroupSubject(group, subject);
    this.network.actions.push(`subject "${subject}" ${group}`);
    return info;
  }

  async leaveGroup(group: RemoteGroupId): Promise<void> {
    this.checkIn();
    this.groupCalls.leaveGroup(group);
    this.network.actions.push(`leave ${group}`);
  }

  async sendEdit(to: RemoteChatId, target: RemoteMessageId): Promise<RemoteMessageId> {
    this.checkIn();
    this.network.actions.push(`edit ${to} ${target}`);
    return this.network.newId();
  }

  editWindowMs(): number {
    return this.network.editWindowMs;
  }

  async sendReactions(
    to: RemoteChatId,
    target: MessageReference,
    emojis: readonly string[],
  ): Promise<void> {
    this.checkIn();
    this.network.actions.push(`reactions ${to} ${target.id} [${emojis.join("")}]`);
  }

  async sendRead(to: RemoteChatId, upTo: MessageReference): Promise<void> {
    this.network.actions.push(`read ${to} ${upTo.id}`);
  }

  async sendTyping(to: RemoteChatId, typing: boolean): Promise<void> {
    this.network.actions.push(`typing ${to} ${typing}`);
  }

  async block(contact: RemoteUserId): Promise<void> {
    this.network.setBlocked(this.user, contact, true);
    this.network.actions.push(`block ${contact}`);
  }

  async unblock(contact: RemoteUserId): Promise<void> {
    this.network.setBlocked(this.user, contact, false);
    this.network.actions.push(`unblock ${contact}`);
  }

  async logout(): Promise<void> {
    this.loggedOut = true;
    this.network.actions.push(`logout ${this.user}`);
    this.network.logins.delete(this.user);
  }

  private checkIn(): void {
    if (this.loggedOut) throw new BridgeError("logged-out", "You are logged out of loopback.");
  }
}

/** A loopback user as tests drive it: everything it does is reported to the core at once. */
class LoopbackRemoteUser {
  constructor(
    private readonly network: LoopbackNetwork,
    readonly id: RemoteUserId,
  ) {}

  /**
   * Writes to a Matrix user; the first message of a conversation neither side started is a
   * message request. Dropped, as the network drops it, when the user blocked this sender.
   */
  async send(
    to: MatrixUserId,
    text: string,
    options: { replyTo?: MessageReference; sentAt?: Date } = {},
  ): Promise<RemoteMessageId> {
    const id = this.network.newId();
    if (this.network.isBlocked(to, this.id)) return id;
    const isRequest = this.network.converse(to, this.id);
    await this.network.report(to, {
      kind: "message",
      from: this.id,
      id,
      sentAt: options.sentAt ?? new Date(),
      order: Number(id.slice("loop-".length)),
      content: { type: "text", text: { text, spans: [] } },
      ...(options.replyTo === undefined ? {} : { replyTo: options.replyTo }),
      isRequest,
    });
    return id;
  }

  /**
   * Writes in a group this user is a member of: every member login of the bridge receives it (the
   * same message once per login, as the network delivers it per member).
   */
  async sendToGroup(group: RemoteGroupId, text: string): Promise<RemoteMessageId> {
    const members = this.network.groups.get(group)?.members ?? [];
    if (!members.some((m) => m.id === this.id)) {
      throw new BridgeError("group-not-member", `${this.id} is not a member of ${group}`);
    }
    const id = this.network.newId();
    const event: RemoteEvent = {
      kind: "message",
      group,
      from: this.id,
      id,
      sentAt: new Date(),
      order: Number(id.slice("loop-".length)),
      content: { type: "text", text: { text, spans: [] } },
      isRequest: false,
    };
    for (const m of members) this.network.deliverTo(m.id, event);
    await this.network.settled();
    return id;
  }

  async edit(to: MatrixUserId, target: RemoteMessageId, text: string): Promise<void> {
    await this.network.report(to, {
      kind: "edit",
      from: this.id,
      target: { author: this.id, id: target },
      content: { type: "text", text: { text, spans: [] } },
      order: Number(this.network.newId().slice("loop-".length)),
      serverTime: new Date(),
    });
  }

  async react(
    to: MatrixUserId,
    target: MessageReference,
    emojis: readonly string[],
  ): Promise<void> {
    await this.network.report(to, { kind: "reactions", from: this.id, target, emojis });
  }

  async read(to: MatrixUserId, upTo: MessageReference): Promise<void> {
    await this.network.report(to, { kind: "read", from: this.id, upTo });
  }

  async typing(to: MatrixUserId, typing: boolean): Promise<void> {
    await this.network.report(to, { kind: "typing", from: this.id, typing });
  }
}

/** Logging in picks a name; the login is complete at once. */
class NameLoginProcess implements LoginProcess {
  constructor(
    private readonly network: LoopbackNetwork,
    private readonly user: MatrixUserId,
  ) {}

  async start(): Promise<LoginStep> {
    return {
      type: "input",
      stepId: "name",
      instructions: "Pick your loopback name.",
      fields: [
        {
          id: "handle",
          role: "handle",
          name: "name",
          description: "1-32 of a-z, 0-9, `.`, `_` and `-`",
          pattern: "^[a-z0-9._-]{1,32}$",
        },
      ],
    };
  }

  async submit(stepId: string, input: Readonly<Record<string, string>>): Promise<LoginStep> {
    const name = input["handle"] ?? "";
    if (stepId !== "name" || !/^[a-z0-9._-]{1,32}$/.test(name)) {
      throw new BridgeError("login-invalid", "That is not a loopback name.");
    }
    const login = this.network.register(this.user, name);
    return { type: "complete", instructions: `Logged in to loopback as ${login.self}.`, login };
  }

  async cancel(): Promise<void> {}
}
