import type {
  BlockCapable,
  EditCapable,
  GroupCapable,
  GroupInfo,
  GroupRejection,
  LoginState,
  MessageContent,
  MessageReference,
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
} from "../../core/network.js";
import { BridgeError } from "../../util/errors.js";
import type { BareJid, DeviceId, MatrixUserId, MessageId, PhoneNumber } from "../../util/ids.js";
import type { Logger } from "../../util/log.js";
import type { ContentElement } from "../codec/content.js";
import { parseMessageId } from "../codec/primitives.js";
import {
  ConvertError,
  editElements,
  interopReference,
  messageElements,
  outboundMediaKind,
  reactionElements,
  retractElements,
} from "../convert/index.js";
import { loginStateOf } from "./events.js";
import { asSendRefusal } from "./failures.js";
import { ProviderError } from "../provider/errors.js";
import { groupError, rejectionsOf, wireGroupInfoOf } from "./groups.js";
import { contactJid, outboundContext, type ConnectorContext } from "./context.js";
import type { RecentEnvelopes } from "./recent-envelopes.js";

/** The only device of a logged-in user (§5.1). */
export const DEVICE = 1 as DeviceId;

/**
 * One logged-in Matrix user as a provider user `<localpart>@<component domain>` with device 1
 * (§5.1). Sends go through the engine's outbox: a send resolves once the stanza is stored, and
 * the outcome arrives later as an `accepted` or `send-failed` event. A refusal before that (the
 * content cannot be expressed, the file cannot be uploaded) rejects with SendRefusedError.
 */
export class InteropLogin
  implements
    NetworkLogin,
    EditCapable,
    RetractCapable,
    ReactionCapable,
    ReceiptCapable,
    TypingCapable,
    BlockCapable,
    ReportCapable,
    SafetyNumberCapable,
    GroupCapable
{
  /** The user's own id on the network, for references to their own messages. */
  readonly self: RemoteUserId;
  private logger: Logger | undefined;
  private loggedOut: LoginState | undefined;

  constructor(
    readonly user: MatrixUserId,
    readonly jid: BareJid,
    private readonly ctx: ConnectorContext,
    private readonly recent: RecentEnvelopes,
  ) {
    this.self = jid as string as RemoteUserId;
  }

  /** Made on first use: 10,000 idle logins need no child logger each at start-up. */
  private get log(): Logger {
    this.logger ??= this.ctx.log.child({ login: this.jid });
    return this.logger;
  }

  state(): LoginState {
    return this.loggedOut ?? loginStateOf(this.ctx.engine.state);
  }

  /** The gatekeeper unbound the user (§9.1): logged out until a new login. */
  markLoggedOut(state: LoginState): void {
    this.loggedOut = state;
  }

  async resolveAddress(phone: PhoneNumber): Promise<Resolution> {
    const [result] = await this.ctx.engine.account.lookup(this.jid, [phone]);
    return result?.status === "reachable" && result.jid !== undefined
      ? { reachable: true, contact: result.jid as string as RemoteUserId }
      : { reachable: false };
  }

  async sendMessage(
    to: RemoteChatId,
    content: MessageContent,
    replyTo?: MessageReference & { quote?: string },
    idempotencyKey?: string,
  ): Promise<RemoteMessageId> {
    return this.send(
      to,
      async (ctx) => {
        const reply =
          replyTo === undefined
            ? undefined
            : {
                ...interopReference(this.ownAuthor(replyTo)),
                ...(replyTo.quote === undefined ? {} : { quote: replyTo.quote }),
              };
        const media = content.type === "media" ? await this.upload(content.media) : undefined;
        return messageElements(content, ctx, {
          ...(reply === undefined ? {} : { replyTo: reply }),
          ...(media === undefined ? {} : { media }),
        });
      },
      idempotencyKey,
    );
  }

  sendEdit(
    to: RemoteChatId,
    target: RemoteMessageId,
    content: MessageContent,
  ): Promise<RemoteMessageId> {
    return this.send(to, async (ctx) => editElements(messageIdOf(target), content, ctx));
  }

  sendRetract(to: RemoteChatId, target: RemoteMessageId): Promise<RemoteMessageId> {
    return this.send(to, async (ctx) => retractElements(messageIdOf(target), ctx));
  }

  editWindowMs(): number {
    return this.ctx.engine.session.limits["edit-window-seconds"] * 1000;
  }

  retractWindowMs(): number {
    return this.ctx.engine.session.limits["retract-window-seconds"] * 1000;
  }

  async sendReactions(
    to: RemoteChatId,
    target: MessageReference,
    emojis: readonly string[],
  ): Promise<void> {
    await this.send(to, async (ctx) =>
      reactionElements(interopReference(this.ownAuthor(target)), emojis, ctx),
    );
  }

  async sendRead(to: RemoteChatId, upTo: MessageReference): Promise<void> {
    await this.ctx.engine.sendDisplayed(
      this.jid,
      this.chatJid(to),
      interopReference(this.ownAuthor(upTo)),
    );
  }

  async sendTyping(to: RemoteChatId, typing: boolean): Promise<void> {
    await this.ctx.engine.sendTyping(this.jid, this.chatJid(to), typing ? "composing" : "paused");
  }

  // --- groups (§17) -----------------------------------------------------------------------------

  selfId(): RemoteUserId {
    return this.self;
  }

  maxGroupSize(): number {
    return this.ctx.engine.session.limits["max-group-size"];
  }

  async createGroup(
    subject: string,
    members: readonly RemoteUserId[],
  ): Promise<{ info: GroupInfo; rejected: readonly GroupRejection[] }> {
    const jids = members.map(contactJid);
    const info = await this.group(() => this.ctx.engine.groups.create(this.jid, subject, jids));
    return { info: wireGroupInfoOf(info), rejected: rejectionsOf(info) };
  }

  async groupInfo(group: RemoteGroupId): Promise<GroupInfo> {
    const jid = this.groupJid(group);
    return wireGroupInfoOf(await this.group(() => this.ctx.engine.groups.info(this.jid, jid)));
  }

  async addGroupMembers(
    group: RemoteGroupId,
    members: readonly RemoteUserId[],
  ): Promise<{ info: GroupInfo; rejected: readonly GroupRejection[] }> {
    const jid = this.groupJid(group);
    const info = await this.group(() =>
      this.ctx.engine.groups.change(this.jid, jid, "add", members.map(contactJid)),
    );
    return { info: wireGroupInfoOf(info), rejected: rejectionsOf(info) };
  }

  async removeGroupMembers(
    group: RemoteGroupId,
    members: readonly RemoteUserId[],
  ): Promise<GroupInfo> {
    const jid = this.groupJid(group);
    return wireGroupInfoOf(
      await this.group(() =>
        this.ctx.engine.groups.change(this.jid, jid, "remove", members.map(contactJid)),
      ),
    );
  }

  async setGroupAdmins(
    group: RemoteGroupId,
    members: readonly RemoteUserId[],
    admin: boolean,
  ): Promise<GroupInfo> {
    const jid = this.groupJid(group);
    return wireGroupInfoOf(
      await this.group(() =>
        this.ctx.engine.groups.change(
          this.jid,
          jid,
          admin ? "promote" : "demote",
          members.map(contactJid),
        ),
      ),
    );
  }

  async setGroupSubject(group: RemoteGroupId, subject: string): Promise<GroupInfo> {
    const jid = this.groupJid(group);
    return wireGroupInfoOf(
      await this.group(() => this.ctx.engine.groups.subject(this.jid, jid, subject)),
    );
  }

  async leaveGroup(group: RemoteGroupId): Promise<void> {
    const jid = this.groupJid(group);
    await this.group(() => this.ctx.engine.groups.leave(this.jid, jid));
  }

  private async group<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      throw groupError(err);
    }
  }

  private groupJid(group: RemoteGroupId): BareJid {
    if (!this.ctx.engine.isGroup(group)) {
      throw new BridgeError("invalid-reference", `${group} is not a WhatsApp group`);
    }
    return group as string as BareJid;
  }

  /** A contact's or a group's JID. */
  private chatJid(to: RemoteChatId): BareJid {
    return this.ctx.engine.isGroup(to) ? (to as string as BareJid) : contactJid(to as RemoteUserId);
  }

  async block(contact: RemoteUserId): Promise<void> {
    await this.ctx.engine.account.block(this.jid, [contactJid(contact)]);
  }

  async unblock(contact: RemoteUserId): Promise<void> {
    await this.ctx.engine.account.unblock(this.jid, [contactJid(contact)]);
  }

  /**
   * Reports a contact (§16.2). Disclosed messages are sent only while their decrypted envelopes
   * are still held in memory (the last few hundred received); older ids are left out.
   */
  async report(
    contact: RemoteUserId,
    reason: "spam" | "phishing" | "abuse" | "impersonation" | "other",
    disclose: readonly RemoteMessageId[],
    block: boolean,
  ): Promise<void> {
    const jid = contactJid(contact);
    const messages = this.recent.take(this.jid, jid, disclose);
    if (messages.length < disclose.length) {
      this.log.info(
        { asked: disclose.length, disclosed: messages.length },
        "some reported messages are no longer held and were not disclosed",
      );
    }
    await this.ctx.engine.account.report(this.jid, {
      jid,
      reason,
      block,
      text: undefined,
      messages,
    });
  }

  async safetyNumber(
    contact: RemoteUserId,
  ): Promise<{ digits: string; scannable: Uint8Array; verified: boolean }> {
    const jid = contactJid(contact);
    const device = await this.ctx.crypto.device(this.jid, DEVICE);
    const number = await device.identities.safetyNumber(jid);
    const status = await device.identities.status(jid);
    if (number === null || status === null) {
      throw new BridgeError(
        "identity-unknown",
        "no security code yet: exchange a message with this contact first",
      );
    }
    return {
      digits: number.digits,
      scannable: number.scannable,
      verified: status.verifiedAt !== null,
    };
  }

  async markVerified(contact: RemoteUserId, compared: string): Promise<void> {
    const jid = contactJid(contact);
    const device = await this.ctx.crypto.device(this.jid, DEVICE);
    if (!(await device.identities.markVerifiedIfShown(jid, compared))) {
      throw new BridgeError(
        "identity-changed",
        "the contact's security code is unknown or changed since it was shown: send `verify` again and compare the new one",
      );
    }
  }

  async verifiedContacts(): Promise<ReadonlySet<RemoteUserId>> {
    const device = await this.ctx.crypto.device(this.jid, DEVICE);
    const jids = await device.identities.verifiedContacts();
    return new Set(jids.map((jid) => jid as string as RemoteUserId));
  }

  /** Unbinds the number, publishes an empty device list and deletes every key (§5.1, P3). */
  async logout(): Promise<void> {
    await this.ctx.engine.deleteUser(this.jid);
    this.markLoggedOut({ code: "logged-out", message: "Logged out." });
  }

  private async send(
    to: RemoteChatId,
    build: (ctx: ReturnType<typeof outboundContext>) => Promise<ContentElement[]>,
    eventId?: string,
  ): Promise<RemoteMessageId> {
    try {
      const recipient = this.chatJid(to);
      const content = await build(outboundContext(this.ctx));
      const id = this.ctx.engine.isGroup(recipient)
        ? await this.ctx.engine.sendGroupMessage({
            from: this.jid,
            group: recipient,
            content,
            ...(eventId === undefined ? {} : { eventId }),
          })
        : await this.ctx.engine.sendMessage({
            from: this.jid,
            to: recipient,
            content,
            ...(eventId === undefined ? {} : { eventId }),
          });
      return id as string as RemoteMessageId;
    } catch (err) {
      if (err instanceof ProviderError && err.code === "not-member") throw groupError(err);
      throw asSendRefusal(err);
    }
  }

  private async upload(media: Extract<MessageContent, { type: "media" }>["media"]) {
    const kind = outboundMediaKind(media);
    return this.ctx.engine.media.upload(this.jid, await media.open(), {
      kind,
      workDir: this.ctx.workDir,
      knownSize: media.size,
    });
  }

  /** The core may name the user's own messages by their Matrix id: the network knows the JID. */
  private ownAuthor<R extends MessageReference>(ref: R): R {
    return (ref.author as string) === this.user ? { ...ref, author: this.self } : ref;
  }
}

function messageIdOf(id: RemoteMessageId): MessageId {
  try {
    return parseMessageId(id, "target");
  } catch (err) {
    throw new ConvertError("invalid-reference", `cannot reference message ${id}`, { cause: err });
  }
}
