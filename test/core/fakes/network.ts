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
  NetworkLogin,
  ReactionCapable,
  ReceiptCapable,
  RemoteChatId,
  RemoteGroupId,
  RemoteMessageId,
  RemoteUserId,
  ReportCapable,
  Resolution,
  RetractCapable,
  SafetyNumberCapable,
  TypingCapable,
} from "../../../src/core/network.js";
import type { NetworkDescription } from "../../../src/core/network.js";
import {
  DEFAULT_INTEROP_SETTINGS,
  interopDescription,
} from "../../../src/interop/connector/description.js";
import { BridgeError } from "../../../src/util/errors.js";
import { isPhoneNumber, type MatrixUserId, type PhoneNumber } from "../../../src/util/ids.js";

export const FAKE_CODE = "123456";

export function contactId(phone: string): RemoteUserId {
  return `${phone.replace("+", "")}@wa.example` as RemoteUserId;
}

/** The network id of a fake login's user, as it appears in group member lists and `from`. */
export function selfIdOf(user: MatrixUserId): RemoteUserId {
  return `${user.slice(1).split(":")[0] ?? ""}@bridge.example` as RemoteUserId;
}

/** A group as the fake network keeps it. */
export interface FakeGroup {
  subject: string;
  version: number;
  members: GroupMember[];
}

export interface SentMessage {
  from: MatrixUserId;
  to: RemoteChatId;
  content: MessageContent;
  replyTo?: MessageReference;
  id: RemoteMessageId;
}

/**
 * A network for the core's tests, used only through the public contract of src/core/network.ts:
 * two login flows (phone with a 6-digit code, unverified username), a set of reachable numbers,
 * and a record of everything the core asked the network to do.
 */
export class FakeNetwork implements NetworkConnector {
  /**
   * The id of the phone flow's address field: the core must go by its role, not its id (a
   * network may call it anything).
   */
  addressFieldId = "phone";
  /** The safety number every contact has; a test changes it to play a new identity key. */
  safetyDigits = "1234567890".repeat(6);

  callbacks: CoreCallbacks | undefined;
  /** A login's state as the network would report it; connected unless set. */
  readonly loginStates = new Map<MatrixUserId, LoginState>();
  readonly reachable = new Set<string>();
  readonly sent: SentMessage[] = [];
  readonly actions: string[] = [];
  readonly logins = new Map<MatrixUserId, FakeLogin>();
  started = false;
  /** When set, sendMessage rejects with it. */
  sendError: Error | undefined;
  /** When set, sendReactions refuses a set with a key it matches, as the connector does. */
  refuseReaction: ((key: string) => boolean) | undefined;
  /** When true, sendMessage reads a media attachment through, as the real connector does. */
  readsMedia = false;
  /** When true, loadLogin rejects (keys unreadable, say). */
  failLoad = false;
  /** The network's edit and retraction windows (WhatsApp's defaults). */
  editWindowMs = 900_000;
  retractWindowMs = 172_800_000;
  /** Groups by id, changed by the logins' group calls (tests may also edit them directly). */
  readonly groups = new Map<RemoteGroupId, FakeGroup>();
  /** When set, every group management call rejects with it. */
  groupError: Error | undefined;
  /** Members the network refuses to add (createGroup and addGroupMembers report them). */
  readonly refusedMembers = new Set<string>();
  private nextId = 1;
  private nextGroup = 1;

  /** A group's info as the network would report it. */
  groupInfo(id: RemoteGroupId): GroupInfo {
    const group = this.groups.get(id);
    if (group === undefined) throw new BridgeError("group-not-member", "No such group.");
    return { id, subject: group.subject, version: group.version, members: [...group.members] };
  }

  newGroup(subject: string, members: GroupMember[]): RemoteGroupId {
    const id = `group-${this.nextGroup++}@g.example` as RemoteGroupId;
    this.groups.set(id, { subject, version: 1, members });
    return id;
  }

  loginFlows(): readonly LoginFlow[] {
    return [
      { id: "phone", name: "verify a phone number", description: "Verified identity" },
      { id: "username", name: "an unverified username", description: "Unverified identity" },
    ];
  }

  createLogin(user: MatrixUserId, flowId: string): LoginProcess {
    return flowId === "phone" ? new PhoneProcess(this, user) : new UsernameProcess(this, user);
  }

  async start(): Promise<void> {
    this.started = true;
  }

  async stop(): Promise<void> {
    this.started = false;
  }

  async loadLogin(user: MatrixUserId): Promise<NetworkLogin> {
    if (this.failLoad) throw new Error("stored keys unreadable");
    return this.login(user);
  }

  /** A login that just completed: the state the network gave the one before is gone with it. */
  completedLogin(user: MatrixUserId): FakeLogin {
    this.loginStates.delete(user);
    return this.login(user);
  }

  login(user: MatrixUserId): FakeLogin {
    let login = this.logins.get(user);
    if (login === undefined) {
      login = new FakeLogin(this, user);
      this.logins.set(user, login);
    }
    return login;
  }

  newId(): RemoteMessageId {
    return `out-${this.nextId++}` as RemoteMessageId;
  }

  /** Described as the interop connector describes WhatsApp with a default config. */
  describe(): NetworkDescription {
    return interopDescription(DEFAULT_INTEROP_SETTINGS);
  }

  /** Contacts are `<digits>@wa.example`, as at the gatekeeper: their address is the number. */
  addressOf(contact: RemoteUserId): PhoneNumber | undefined {
    const phone = `+${/^([0-9]+)@wa\.example$/.exec(contact)?.[1] ?? ""}`;
    return isPhoneNumber(phone) ? phone : undefined;
  }

  /** The fake reports nothing on its own (tests report every event): always settled. */
  async settled(): Promise<void> {}

  /** Reports an event as the connector would, through the callbacks the core handed over. */
  async report(user: MatrixUserId, event: Parameters<CoreCallbacks["report"]>[1]): Promise<void> {
    if (this.callbacks === undefined) throw new Error("the core did not create the connector");
    await this.callbacks.report(user, event);
  }
}

export class FakeLogin
  implements
    NetworkLogin,
    EditCapable,
    RetractCapable,
    ReceiptCapable,
    ReactionCapable,
    TypingCapable,
    BlockCapable,
    ReportCapable,
    SafetyNumberCapable,
    GroupCapable
{
  constructor(
    private readonly network: FakeNetwork,
    readonly user: MatrixUserId,
  ) {}

  state(): LoginState {
    return (
      this.network.loginStates.get(this.user) ?? {
        code: "connected",
        message: "Connected to the gatekeeper.",
      }
    );
  }

  async resolveAddress(phone: PhoneNumber): Promise<Resolution> {
    this.network.actions.push(`resolve ${phone}`);
    return this.network.reachable.has(phone)
      ? { reachable: true, contact: contactId(phone) }
      : { reachable: false };
  }

  async sendMessage(
    to: RemoteChatId,
    content: MessageContent,
    replyTo?: MessageReference,
  ): Promise<RemoteMessageId> {
    if (this.network.sendError !== undefined) throw this.network.sendError;
    if (content.type === "media" && this.network.readsMedia) {
      // As the real connector does before it encrypts and uploads: a failure to open rejects.
      for await (const chunk of await content.media.open()) void chunk;
    }
    const id = this.network.newId();
    this.network.sent.push({ from: this.user, to, content, id, ...(replyTo ? { replyTo } : {}) });
    return id;
  }

  async logout(): Promise<void> {
    this.network.actions.push(`logout ${this.user}`);
    this.network.logins.delete(this.user);
  }

  selfId(): RemoteUserId {
    return selfIdOf(this.user);
  }

  maxGroupSize(): number {
    return 8;
  }

  async createGroup(
    subject: string,
    members: readonly RemoteUserId[],
  ): Promise<{ info: GroupInfo; rejected: readonly GroupRejection[] }> {
    if (this.network.groupError !== undefined) throw this.network.groupError;
    const rejected = members
      .filter((m) => this.network.refusedMembers.has(m))
      .map((id) => ({ id, reason: "refused" as const }));
    const id = this.network.newGroup(subject, [
      { id: this.selfId(), admin: true, displayName: this.selfId() },
      ...members
        .filter((m) => !this.network.refusedMembers.has(m))
        .map((m) => ({ id: m, admin: false, displayName: m })),
    ]);
    this.network.actions.push(`create-group ${subject} [${members.join(",")}]`);
    return { info: this.network.groupInfo(id), rejected };
  }

  async groupInfo(group: RemoteGroupId): Promise<GroupInfo> {
    return this.network.groupInfo(group);
  }

  /** A change by this login: refused unless it is an admin (§17.1), then the version moves. */
  private changeGroup(group: RemoteGroupId, action: string, change: (g: FakeGroup) => void) {
    if (this.network.groupError !== undefined) throw this.network.groupError;
    const g = this.network.groups.get(group);
    const me = g?.members.find((m) => m.id === this.selfId());
    if (g === undefined || me === undefined) {
      throw new BridgeError("group-not-member", "You are not a member of this group.");
    }
    if (!me.admin) throw new BridgeError("group-not-admin", "Only the group's admins can do that.");
    change(g);
    g.version += 1;
    this.network.actions.push(`${action} ${group}`);
    return this.network.groupInfo(group);
  }

  async addGroupMembers(group: RemoteGroupId, members: readonly RemoteUserId[]) {
    const rejected = members
      .filter((m) => this.network.refusedMembers.has(m))
      .map((id) => ({ id, reason: "refused" as const }));
    const info = this.changeGroup(group, `add ${members.join(",")}`, (g) => {
      for (const m of members) {
        if (this.network.refusedMembers.has(m) || g.members.some((x) => x.id === m)) continue;
        g.members.push({ id: m, admin: false, displayName: m });
      }
    });
    return { info, rejected };
  }

  async removeGroupMembers(group: RemoteGroupId, members: readonly RemoteUserId[]) {
    return this.changeGroup(group, `remove ${members.join(",")}`, (g) => {
      g.members = g.members.filter((m) => !members.includes(m.id));
    });
  }

  async setGroupAdmins(group: RemoteGroupId, members: readonly RemoteUserId[], admin: boolean) {
    return this.changeGroup(group, `${admin ? "promote" : "demote"} ${members.join(",")}`, (g) => {
      g.members = g.members.map((m) => (members.includes(m.id) ? { ...m, admin } : m));
    });
  }

  async setGroupSubject(group: RemoteGroupId, subject: string) {
    return this.changeGroup(group, `subject "${subject}"`, (g) => {
      g.subject = subject;
    });
  }

  async leaveGroup(group: RemoteGroupId): Promise<void> {
    const g = this.network.groups.get(group);
    if (g !== undefined) {
      g.members = g.members.filter((m) => m.id !== this.selfId());
      g.version += 1;
    }
    this.network.actions.push(`leave ${group}`);
  }

  async sendEdit(to: RemoteChatId, target: RemoteMessageId): Promise<RemoteMessageId> {
    this.network.actions.push(`edit ${to} ${target}`);
    return this.network.newId();
  }

  async sendRetract(to: RemoteChatId, target: RemoteMessageId): Promise<RemoteMessageId> {
    this.network.actions.push(`retract ${to} ${target}`);
    return this.network.newId();
  }

  editWindowMs(): number {
    return this.network.editWindowMs;
  }

  retractWindowMs(): number {
    return this.network.retractWindowMs;
  }

  async sendReactions(
    to: RemoteChatId,
    target: MessageReference,
    emojis: readonly string[],
  ): Promise<void> {
    const refused = emojis.find((e) => this.network.refuseReaction?.(e) === true);
    if (refused !== undefined) {
      throw new BridgeError("invalid-reactions", `"${refused.slice(0, 40)}" is not a single emoji`);
    }
    this.network.actions.push(`reactions ${to} ${target.id} [${emojis.join("")}]`);
  }

  async sendRead(to: RemoteChatId, upTo: MessageReference): Promise<void> {
    this.network.actions.push(`read ${to} ${upTo.id}`);
  }

  async sendTyping(to: RemoteChatId, typing: boolean): Promise<void> {
    this.network.actions.push(`typing ${to} ${typing}`);
  }

  async block(contact: RemoteUserId): Promise<void> {
    this.network.actions.push(`block ${contact}`);
  }

  async unblock(contact: RemoteUserId): Promise<void> {
    this.network.actions.push(`unblock ${contact}`);
  }

  async report(
    contact: RemoteUserId,
    reason: string,
    disclose: readonly RemoteMessageId[],
    block: boolean,
  ): Promise<void> {
    this.network.actions.push(`report ${contact} ${reason} [${disclose.join(",")}] ${block}`);
  }

  async safetyNumber(contact: RemoteUserId) {
    this.network.actions.push(`safety-number ${contact}`);
    return { digits: this.network.safetyDigits, scannable: new Uint8Array([1]), verified: false };
  }

  private readonly verified = new Set<RemoteUserId>();

  async markVerified(contact: RemoteUserId, compared: string): Promise<void> {
    if (compared !== this.network.safetyDigits) {
      throw new BridgeError(
        "identity-changed",
        "the contact's security code changed since it was shown",
      );
    }
    this.network.actions.push(`verified ${contact}`);
    this.verified.add(contact);
  }

  async verifiedContacts(): Promise<ReadonlySet<RemoteUserId>> {
    return new Set(this.verified);
  }
}

class PhoneProcess implements LoginProcess {
  private attempts = 5;

  constructor(
    private readonly network: FakeNetwork,
    private readonly user: MatrixUserId,
  ) {}

  async start(): Promise<LoginStep> {
    return {
      type: "input",
      stepId: "phone",
      instructions: "WhatsApp will send a code to your phone.",
      fields: [
        {
          id: this.network.addressFieldId,
          role: "address",
          name: "phone number",
          description: "in international format, e.g. +491701234567",
          pattern: "^\\+[0-9]+$",
        },
      ],
    };
  }

  async submit(stepId: string, input: Readonly<Record<string, string>>): Promise<LoginStep> {
    if (stepId === "phone") {
      this.network.actions.push(`request-code ${input[this.network.addressFieldId] ?? ""}`);
      return {
        type: "input",
        stepId: "code",
        instructions: "A code was sent.",
        fields: [
          {
            id: "code",
            name: "code",
            description: "the 6 digits you received",
            pattern: "^[0-9]{6}$",
          },
        ],
      };
    }
    if (input["code"] !== FAKE_CODE) {
      this.attempts -= 1;
      throw new BridgeError("code-invalid", `That code is wrong; ${this.attempts} attempts left.`);
    }
    return {
      type: "complete",
      instructions: "Logged in. Your contacts see your number.",
      login: this.network.completedLogin(this.user),
    };
  }

  async cancel(): Promise<void> {
    this.network.actions.push("cancel-login");
  }
}

class UsernameProcess implements LoginProcess {
  constructor(
    private readonly network: FakeNetwork,
    private readonly user: MatrixUserId,
  ) {}

  async start(): Promise<LoginStep> {
    return {
      type: "input",
      stepId: "handle",
      instructions: "Pick the name WhatsApp users will see, marked Unverified.",
      fields: [
        { id: "handle", role: "handle", name: "username", description: "up to 64 characters" },
      ],
    };
  }

  async submit(): Promise<LoginStep> {
    return {
      type: "complete",
      instructions: "Logged in as an unverified user.",
      login: this.network.completedLogin(this.user),
    };
  }

  async cancel(): Promise<void> {
    this.network.actions.push("cancel-login");
  }
}
