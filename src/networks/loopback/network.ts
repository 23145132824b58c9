import type {
  BlockCapable,
  CoreCallbacks,
  EditCapable,
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
  RemoteMessageId,
  RemoteUserId,
  Resolution,
  SelfIdentified,
  TypingCapable,
} from "../../core/network.js";
import { BridgeError } from "../../util/errors.js";
import type { ContactAddress, MatrixUserId } from "../../util/ids.js";
import { LOOPBACK_DESCRIPTION, loopbackIdentifier } from "./description.js";

/** A message a Matrix user sent into the loopback network. */
export interface LoopbackMessage {
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
 * id is its address, and it offers edits, reactions, read receipts, typing and blocking, but no
 * retractions, no reports and no safety numbers. Nothing leaves the process.
 *
 * It exists to prove that the core needs no particular network (its tests run against it and
 * against a phone-numbered fake) and for tests that want a network without the interop protocol.
 * Tests act as remote users through `remote(address)`; what Matrix users sent is in `sent` and
 * every other request of the core is a line in `actions`, in order.
 */
export class LoopbackNetwork implements NetworkConnector {
  /** Addresses of the network's users: only these are reachable. */
  readonly users = new Set<string>();
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
    this.logins.set(user, login);
    return login;
  }

  newId(): RemoteMessageId {
    return `loop-${this.nextId++}` as RemoteMessageId;
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
export class LoopbackLogin
  implements
    NetworkLogin,
    SelfIdentified,
    EditCapable,
    ReactionCapable,
    ReceiptCapable,
    TypingCapable,
    BlockCapable
{
  private loggedOut = false;
  /** Ids of messages sent per idempotency key, so a repeated send queues nothing. */
  private readonly byKey = new Map<string, RemoteMessageId>();

  constructor(
    private readonly network: LoopbackNetwork,
    readonly user: MatrixUserId,
    readonly self: RemoteUserId,
  ) {}

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
    if (!this.network.users.has(to)) {
      throw new BridgeError("not-reachable", `${to} is not a loopback user`);
    }
    const id = this.network.newId();
    if (idempotencyKey !== undefined) this.byKey.set(idempotencyKey, id);
    this.network.converse(this.user, to as RemoteUserId);
    this.network.sent.push({ from: this.user, to, content, id, ...(replyTo ? { replyTo } : {}) });
    return id;
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
export class LoopbackRemoteUser {
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
