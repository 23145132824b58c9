import type { PreparedSend, SendOptions } from "./send.js";
import { KeyVault } from "../../src/vault/key-vault.js";
import { SignalCrypto } from "../../src/interop/crypto/signal-crypto.js";
import type {
  ContentElement,
  ChatState,
  GroupRequest,
  MessageRef,
} from "../../src/interop/codec/index.js";
import { encodeBase64 } from "../../src/interop/codec/index.js";
import { BridgeError } from "../../src/util/errors.js";
import type { BareJid, DeviceId, MessageId, PhoneNumber } from "../../src/util/ids.js";
import type { Gatekeeper } from "../gatekeeper.js";
import type { Account } from "../services/accounts.js";
import type { MediaStore } from "../media/store.js";
import { UserDevices } from "./devices.js";
import { UserLog, type LogEntry } from "./log.js";
import { UserMedia, type MediaToSend } from "./media.js";
import { UserReceiver } from "./receive.js";
import { UserSender } from "./send.js";
import { UserGroups } from "./groups.js";

/** The simulator's key for its users' Signal stores: a test deployment, so a fixed default. */
export const DEFAULT_USERS_VAULT_KEY = Buffer.alloc(32, 0x5a);

export interface NewUser {
  phone: PhoneNumber;
  devices?: number;
  optedIn?: boolean;
  allowedProviders?: string[];
}

/**
 * Simulated WhatsApp users: a phone number with 1..N devices, each a real libsignal endpoint
 * published in the key directory. They decrypt what providers send them, log it, answer with
 * receipts, and send every kind of message back. Every operation runs in the gatekeeper's order.
 */
export class SimulatedUsers {
  readonly devices: UserDevices;
  readonly sender: UserSender;
  readonly log: UserLog;
  readonly groups: UserGroups;
  private readonly crypto: SignalCrypto;
  private readonly media: UserMedia;

  constructor(
    private readonly gatekeeper: Gatekeeper,
    options: { vaultKey?: Uint8Array; media?: MediaStore; workDir?: string } = {},
  ) {
    const { knex, now } = gatekeeper.ctx;
    this.crypto = new SignalCrypto({
      knex,
      vault: KeyVault.fromKey(options.vaultKey ?? DEFAULT_USERS_VAULT_KEY),
      now,
      logger: gatekeeper.ctx.log,
    });
    this.devices = new UserDevices(gatekeeper, this.crypto);
    this.media = new UserMedia(options.media, options.workDir ?? ".", now);
    this.log = new UserLog(knex, now);
    this.sender = new UserSender(gatekeeper, this.crypto, this.devices);
    this.groups = new UserGroups(gatekeeper, this.crypto, this.devices);
    const receiver = new UserReceiver(
      gatekeeper,
      this.crypto,
      this.devices,
      this.log,
      this.sender,
      this.groups,
    );
    gatekeeper.setLocalSink(receiver.receive);
    gatekeeper.services.keys.onLocalPreKeysLow = (jid, device) =>
      this.devices.replenish(jid, device);
  }

  jidOf(phone: PhoneNumber): BareJid {
    return this.devices.jidOf(phone);
  }

  create(user: NewUser): Promise<{ account: Account; devices: DeviceId[] }> {
    return this.gatekeeper.run(async () => {
      const account = await this.gatekeeper.accounts.create(user.phone, {
        optedIn: user.optedIn ?? true,
        allowedProviders: user.allowedProviders,
      });
      const count = user.devices ?? 1;
      for (let i = 0; i < count; i++) await this.devices.add(account.jid, undefined, false);
      const ids = await this.crypto.localDevices(account.jid);
      await this.gatekeeper.services.keys.publishDevices(account.jid, ids);
      return { account, devices: ids };
    });
  }

  addDevice(phone: PhoneNumber): Promise<DeviceId> {
    return this.gatekeeper.run(() => this.devices.add(this.jidOf(phone)));
  }

  removeDevice(phone: PhoneNumber, device: DeviceId): Promise<void> {
    return this.gatekeeper.run(() => this.devices.remove(this.jidOf(phone), device));
  }

  resetIdentity(phone: PhoneNumber): Promise<DeviceId> {
    return this.gatekeeper.run(() => this.devices.resetIdentity(this.jidOf(phone)));
  }

  activeDevices(phone: PhoneNumber): Promise<DeviceId[]> {
    return this.gatekeeper.run(() => this.devices.active(this.jidOf(phone)));
  }

  setOptIn(phone: PhoneNumber, optedIn: boolean, allowedProviders?: string[] | null) {
    return this.gatekeeper.run(() =>
      this.gatekeeper.accounts.update(this.jidOf(phone), {
        optedIn,
        ...(allowedProviders === undefined ? {} : { allowedProviders }),
      }),
    );
  }

  /**
   * Sends content as the user; with `record`, logs it as `sent` (not among what `received`
   * lists), so that the simulator page can show both sides of a chat.
   */
  send(phone: PhoneNumber, to: BareJid, content: ContentElement[], options: SendOptions = {}) {
    return this.gatekeeper.run(async () => {
      const jid = this.jidOf(phone);
      const sent = await this.sender.sendContent(jid, to, content, options);
      if (options.record !== true) return sent;
      await this.log.add(jid, "sent", {
        to,
        originId: sent.originId,
        seq: sent.seq,
        stamp: sent.stamp.toISOString(),
        delivered: sent.delivered,
        content: JSON.parse(JSON.stringify(content, bytesAsBase64)) as unknown,
      });
      return sent;
    });
  }

  /**
   * The Signal work of `send` without sending (the benchmark encrypts a run before timing it);
   * `deliver` sends the result. One sender's prepared messages go out in the order prepared.
   */
  prepare(phone: PhoneNumber, to: BareJid, content: ContentElement[], options: SendOptions = {}) {
    return this.gatekeeper.run(() => this.sender.prepare(this.jidOf(phone), to, content, options));
  }

  deliver(prepared: PreparedSend) {
    return this.gatekeeper.run(() => this.sender.deliver(prepared));
  }

  /** Encrypts and uploads the media, then sends it with an optional caption (§13.2, §14). */
  async sendMedia(
    phone: PhoneNumber,
    to: BareJid,
    media: MediaToSend,
    caption?: string,
    options: SendOptions = {},
  ) {
    const content = await this.media.upload(this.jidOf(phone), media);
    const elements: ContentElement[] = [{ kind: "media", media: content }];
    if (caption !== undefined) elements.push({ kind: "body", text: caption });
    return this.send(phone, to, elements, options);
  }

  sendReceipt(phone: PhoneNumber, to: BareJid, refs: MessageRef[], device?: DeviceId) {
    return this.gatekeeper.run(async () => {
      const jid = this.jidOf(phone);
      const d = device ?? (await this.devices.active(jid))[0];
      if (d === undefined) throw new BridgeError("no-such-device", `${jid} has no device`);
      return this.sender.sendReceipt(jid, d, to, refs);
    });
  }

  sendDisplayed(phone: PhoneNumber, to: BareJid, ref: MessageRef) {
    return this.gatekeeper.run(() => this.sender.sendDisplayed(this.jidOf(phone), to, ref));
  }

  sendTyping(phone: PhoneNumber, to: BareJid, state: ChatState) {
    return this.gatekeeper.run(() => this.sender.sendTyping(this.jidOf(phone), to, state));
  }

  acceptRequest(phone: PhoneNumber, from: BareJid) {
    return this.gatekeeper.run(() =>
      this.gatekeeper.outbound.acceptRequest(this.jidOf(phone), from),
    );
  }

  declineRequest(phone: PhoneNumber, from: BareJid) {
    return this.gatekeeper.run(() =>
      this.gatekeeper.outbound.declineRequest(this.jidOf(phone), from),
    );
  }

  block(phone: PhoneNumber, target: BareJid) {
    return this.gatekeeper.run(() =>
      this.gatekeeper.services.abuse.block(this.jidOf(phone), [target]),
    );
  }

  unblock(phone: PhoneNumber, target: BareJid) {
    return this.gatekeeper.run(() =>
      this.gatekeeper.services.abuse.unblock(this.jidOf(phone), [target]),
    );
  }

  report(
    phone: PhoneNumber,
    target: BareJid,
    reason: "spam" | "phishing" | "abuse" | "impersonation" | "other",
    block = false,
  ) {
    return this.gatekeeper.run(() =>
      this.gatekeeper.services.abuse.report(this.jidOf(phone), {
        jid: target,
        reason,
        block,
        text: undefined,
        messages: [],
      }),
    );
  }

  /** Creates a group with the user as its admin (§17.1). */
  createGroup(phone: PhoneNumber, subject: string | undefined, participants: BareJid[]) {
    return this.gatekeeper.run(() => this.groups.create(this.jidOf(phone), subject, participants));
  }

  /** add, remove, promote, demote, subject, leave or info, as the user (§17.1). */
  changeGroup(phone: PhoneNumber, group: BareJid, request: GroupRequest) {
    return this.gatekeeper.run(() => this.groups.modify(this.jidOf(phone), group, request));
  }

  /** A group message with sender keys (§17.4), from the user's first or a given device. */
  sendToGroup(
    phone: PhoneNumber,
    group: BareJid,
    content: ContentElement[],
    options: { device?: DeviceId; originId?: MessageId } = {},
  ) {
    return this.gatekeeper.run(() => this.groups.send(this.jidOf(phone), group, content, options));
  }

  /** A group receipt, marker or typing notification from the user's first device. */
  sendGroupTransport(
    phone: PhoneNumber,
    group: BareJid,
    payload: Parameters<UserGroups["transport"]>[3],
  ) {
    return this.gatekeeper.run(async () => {
      const jid = this.jidOf(phone);
      const [device] = await this.devices.active(jid);
      if (device === undefined) throw new BridgeError("no-such-device", `${jid} has no device`);
      if (payload.kind === "displayed" && !(await this.gatekeeper.accounts.get(jid))?.readMarkers) {
        return undefined;
      }
      return this.groups.transport(jid, device, group, payload);
    });
  }

  /** What the user received, oldest first; `kind` filters (message, receipt, displayed, ...). */
  async received(phone: PhoneNumber, kind?: string): Promise<LogEntry[]> {
    const entries = await this.log.list(this.jidOf(phone), kind);
    return kind === undefined ? entries.filter((e) => e.kind !== "sent") : entries;
  }

  /** Everything in the user's log, what it sent included, oldest first, after entry `after`. */
  history(phone: PhoneNumber, after = 0): Promise<LogEntry[]> {
    return this.log.list(this.jidOf(phone), undefined, after);
  }
}

function bytesAsBase64(_key: string, value: unknown): unknown {
  return value instanceof Uint8Array ? encodeBase64(value) : value;
}
