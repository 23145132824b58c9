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
  NetworkLogin,
  ReactionCapable,
  ReceiptCapable,
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

export interface SentMessage {
  from: MatrixUserId;
  to: RemoteUserId;
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
  private nextId = 1;

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
    SafetyNumberCapable
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

  async resolvePhone(phone: PhoneNumber): Promise<Resolution> {
    this.network.actions.push(`resolve ${phone}`);
    return this.network.reachable.has(phone)
      ? { reachable: true, contact: contactId(phone) }
      : { reachable: false };
  }

  async sendMessage(
    to: RemoteUserId,
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

  async sendEdit(to: RemoteUserId, target: RemoteMessageId): Promise<RemoteMessageId> {
    this.network.actions.push(`edit ${to} ${target}`);
    return this.network.newId();
  }

  async sendRetract(to: RemoteUserId, target: RemoteMessageId): Promise<RemoteMessageId> {
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
    to: RemoteUserId,
    target: MessageReference,
    emojis: readonly string[],
  ): Promise<void> {
    const refused = emojis.find((e) => this.network.refuseReaction?.(e) === true);
    if (refused !== undefined) {
      throw new BridgeError("invalid-reactions", `"${refused.slice(0, 40)}" is not a single emoji`);
    }
    this.network.actions.push(`reactions ${to} ${target.id} [${emojis.join("")}]`);
  }

  async sendRead(to: RemoteUserId, upTo: MessageReference): Promise<void> {
    this.network.actions.push(`read ${to} ${upTo.id}`);
  }

  async sendTyping(to: RemoteUserId, typing: boolean): Promise<void> {
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
    return { digits: "1234567890".repeat(6), scannable: new Uint8Array([1]), verified: false };
  }

  async markVerified(contact: RemoteUserId): Promise<void> {
    this.network.actions.push(`verified ${contact}`);
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
          id: "phone",
          name: "phone number",
          description: "in international format, e.g. +491701234567",
          pattern: "^\\+[0-9]+$",
        },
      ],
    };
  }

  async submit(stepId: string, input: Readonly<Record<string, string>>): Promise<LoginStep> {
    if (stepId === "phone") {
      this.network.actions.push(`request-code ${input["phone"] ?? ""}`);
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
      login: this.network.login(this.user),
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
      fields: [{ id: "handle", name: "username", description: "up to 64 characters" }],
    };
  }

  async submit(): Promise<LoginStep> {
    return {
      type: "complete",
      instructions: "Logged in as an unverified user.",
      login: this.network.login(this.user),
    };
  }

  async cancel(): Promise<void> {
    this.network.actions.push("cancel-login");
  }
}
