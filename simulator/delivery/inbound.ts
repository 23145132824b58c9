import {
  buildAccepted,
  checkProviderMessage,
  classifyMessage,
  findUnencryptedContent,
  parseGatekeeperUserJid,
  parseGroupJid,
  unencryptedContentError,
  type InboundMessage,
  type StanzaError,
  type XmlElement,
} from "../../src/interop/codec/index.js";
import { NS } from "../../src/interop/codec/namespaces.js";
import type { BareJid, DeviceId, StanzaId } from "../../src/util/ids.js";
import type { EnlistedProvider } from "../config.js";
import { domainOf, providerByDomain, type GatekeeperContext } from "../context.js";
import { refuse, refuseStandard } from "../errors.js";
import { attr, toStanzaError } from "../iq-handler.js";
import type { Services } from "../services.js";
import { newStanzaId } from "../state/ulid.js";
import { bounceFor } from "./bounce.js";
import type { Conversations } from "./conversations.js";
import { checkRates, coverage } from "./limits.js";
import type { LocalDelivery } from "./local.js";
import type { PendingDeliveries } from "./pending.js";
import { acceptedOf, type AcceptedRecords } from "./records.js";
import type { GroupMessages, GroupPayload } from "../groups/messages.js";

const USER_KINDS = new Set(["encrypted", "receipt", "displayed", "chat-state", "retry"]);

interface Checked {
  provider: EnlistedProvider;
  message: InboundMessage;
  sender: BareJid;
  device: DeviceId;
  recipient: BareJid;
  toDevice: DeviceId | undefined;
  /** Addressed to a group JID (then `recipient` is the group). */
  group?: boolean;
}

/** What acceptance needs to know beyond the stanza: seq handling and where it goes. */
interface Disposition {
  seq: number | undefined;
  deliver: boolean;
  dedupKey: string;
}

/**
 * Provider messages to gatekeeper users (§12.1, §15.1-§15.8): the checks of §15.1 in their order,
 * de-duplication, acceptance with stanza-id and seq, and hand-over to the gatekeeper user.
 */
export class InboundMessages {
  constructor(
    private readonly ctx: GatekeeperContext,
    private readonly s: Services,
    private readonly conversations: Conversations,
    private readonly records: AcceptedRecords,
    private readonly pending: PendingDeliveries,
    private readonly deliverLocal: (d: LocalDelivery) => void,
    private readonly groups: GroupMessages,
  ) {}

  async handle(stanza: XmlElement): Promise<void> {
    const chatState = isChatState(stanza);
    try {
      await this.process(stanza);
    } catch (err) {
      const error = toStanzaError(err);
      if (error === undefined) throw err;
      if (chatState) return;
      this.bounce(stanza, error);
    }
  }

  private async process(stanza: XmlElement): Promise<void> {
    const checked = await this.check(stanza);
    const { message } = checked;
    const p = message.payload;
    if (checked.group === true) {
      await this.groups.handle(
        {
          group: checked.recipient,
          sender: checked.sender,
          device: checked.device,
          originId: message.originId,
          replyTo: message.from?.jid,
          verified: await this.s.identity.isVerified(checked.provider, checked.sender),
        },
        p as GroupPayload,
      );
      return;
    }
    if (p.kind === "chat-state") {
      await this.chatState(checked);
      return;
    }
    const disposition = await this.decide(checked);
    if (disposition === "duplicate") return;
    const stanzaId = newStanzaId(this.ctx.now());
    const at = this.ctx.now();
    const record = {
      sender: checked.sender,
      senderDevice: checked.device,
      originId: message.originId as NonNullable<typeof message.originId>,
      recipient: checked.recipient,
      stanzaId,
      seq: disposition.seq,
      conversation: checked.recipient,
      service: this.ctx.settings.domain,
      encrypted: p.kind === "encrypted",
      at,
    };
    const delivery = disposition.deliver
      ? localDeliveryOf(checked, stanzaId, at, disposition.seq)
      : undefined;
    // Acceptance promises the provider that the gatekeeper holds the message (§15.3): the
    // de-duplication record and the hand-over to the user commit together, so a crash after the
    // <accepted> cannot turn the provider's retransmission into a silently dropped duplicate.
    await this.ctx.knex.transaction(async (trx) => {
      await this.records.add(disposition.dedupKey, record, trx);
      if (delivery !== undefined) delivery.pendingId = await this.pending.add(trx, delivery, at);
    });
    this.sendAccepted(checked, acceptedOf(record));
    if (delivery !== undefined) this.deliverLocal(delivery);
  }

  /** Steps 1-3 of §15.1. */
  private async check(stanza: XmlElement): Promise<Checked> {
    const from = attr(stanza, "from") ?? "";
    const provider = providerByDomain(this.ctx, domainOf(from));
    if (provider === undefined) {
      throw refuseStandard("not-authorized", "auth", `${domainOf(from)} is not enlisted`);
    }
    if (!this.s.hello.hasState(provider.domain)) {
      throw refuse({ name: "hello-required" }, `no hello state for ${provider.domain}`);
    }
    const slash = from.indexOf("/");
    const bare = (slash >= 0 ? from.slice(0, slash) : from) as BareJid;
    const resource = slash >= 0 ? from.slice(slash + 1) : undefined;
    if (resource === undefined || !/^[1-9][0-9]{0,2}$/.test(resource) || Number(resource) > 127) {
      throw refuseStandard("bad-request", "modify", "not sent from a device JID");
    }
    if (!bare.includes("@")) throw refuseStandard("bad-request", "modify", "no sending user");
    const device = Number(resource) as DeviceId;
    if (!(await this.s.keys.devicesOf(bare)).includes(device)) {
      throw refuse({ name: "unknown-device" }, `${from} is not a published device`);
    }
    const size = Buffer.byteLength(stanza.toString(), "utf8");
    const max = this.ctx.limits["max-stanza-bytes"];
    if (size > max) throw refuse({ name: "too-large", max }, `stanza of ${size} bytes`);
    const message = classifyMessage(stanza, {
      maxReceiptItems: this.ctx.limits["max-receipt-items"],
      maxAckItems: this.ctx.limits["max-ack-items"],
    });
    checkProviderMessage(message, this.ctx.settings.groupDomain);
    const to = message.to;
    if (to === undefined) throw refuseStandard("bad-request", "modify", "message without to");
    const isGroup = to.domain === this.ctx.settings.groupDomain;
    const recipient = isGroup
      ? parseGroupJid(to.bare, "/message/@to", this.ctx.settings.groupDomain)
      : parseGatekeeperUserJid(to.bare, "/message/@to", this.ctx.settings.domain);
    const unencrypted = findUnencryptedContent(stanza);
    if (unencrypted !== undefined) throw unencryptedContentError(unencrypted);
    if (!USER_KINDS.has(message.payload.kind)) {
      throw refuseStandard(
        "bad-request",
        "modify",
        `${message.payload.kind} is not for the gatekeeper`,
      );
    }
    const p = message.payload;
    if (isGroup) {
      // Group stanzas all go to the bare group JID; the retry's author names the device (§17.6).
      if (to.resource !== undefined) {
        throw refuseStandard("bad-request", "modify", "group stanza to a full JID");
      }
      return {
        provider,
        message,
        sender: bare,
        device,
        recipient,
        toDevice: undefined,
        group: true,
      };
    }
    const deviceAddressed =
      p.kind === "retry" || (p.kind === "encrypted" && p.encrypted.retry !== undefined);
    if (deviceAddressed !== (to.resource !== undefined)) {
      throw refuseStandard("bad-request", "modify", "wrong addressing for this message kind");
    }
    if (p.kind === "encrypted" && p.encrypted.group !== undefined) {
      throw refuseStandard("bad-request", "modify", "<group> in a 1:1 message");
    }
    const toDevice = to.resource === undefined ? undefined : (Number(to.resource) as DeviceId);
    if (to.resource !== undefined && !/^[1-9][0-9]{0,2}$/.test(to.resource)) {
      throw refuseStandard("bad-request", "modify", "non-numeric device resource");
    }
    return { provider, message, sender: bare, device, recipient, toDevice };
  }

  /** Steps 4-8 of §15.1, for everything but chat states. */
  private async decide(c: Checked): Promise<Disposition | "duplicate"> {
    const p = c.message.payload;
    const originId = c.message.originId as string;
    const retry = p.kind === "encrypted" ? p.encrypted.retry : undefined;
    const dedupKey =
      p.kind === "encrypted" && retry !== undefined
        ? `${originId}|${c.recipient}|${c.toDevice ?? 0}|${retry}`
        : originId;
    const previous = await this.records.find(c.sender, dedupKey);
    if (previous !== undefined) {
      this.sendAccepted(c, acceptedOf(previous));
      return "duplicate";
    }
    const retryWindow = this.ctx.limits["retry-window-seconds"] * 1000;
    const original =
      retry === undefined
        ? undefined
        : await this.records.original(c.sender, originId, retryWindow);
    if (retry !== undefined && (original === undefined || original.recipient !== c.recipient)) {
      throw refuseStandard("bad-request", "modify", `re-send of ${originId} never accepted`);
    }
    // Step 5: lookup quota, reachability, blocks, retry rights.
    const verified = await this.s.identity.isVerified(c.provider, c.sender);
    const fresh = p.kind === "encrypted" && retry === undefined;
    if (fresh) await this.s.reach.countContact(c.provider, c.sender, verified, c.recipient);
    if (!(await this.s.reach.isReachable(c.provider, c.recipient))) {
      throw refuse({ name: "not-reachable" }, `${c.recipient} not reachable`);
    }
    const conversation = await this.conversations.get(c.sender, c.recipient);
    const refused =
      (await this.s.abuse.isBlocked(c.recipient, c.sender)) || conversation?.state === "declined";
    if (refused) {
      if (p.kind === "encrypted") throw refuse({ name: "refused" }, `${c.recipient} refuses`);
      return { seq: undefined, deliver: false, dedupKey };
    }
    if (p.kind === "retry") {
      await this.authorizeRetry(c, p.retry.id);
      return { seq: undefined, deliver: true, dedupKey };
    }
    const pending = conversation?.state === "pending";
    if (p.kind === "displayed") {
      return { seq: undefined, deliver: !pending && (await this.markersOn(c.recipient)), dedupKey };
    }
    if (p.kind !== "encrypted") return { seq: undefined, deliver: true, dedupKey };
    // Step 6: message request limit (§10.3); re-sends do not count (E20).
    if (fresh && pending && conversation.held >= this.ctx.limits["request-messages"]) {
      throw refuse({ name: "request-pending" }, `request to ${c.recipient} is pending`);
    }
    if (fresh) await checkRates(this.ctx, c.sender, conversation === undefined, verified);
    const keys = coverage(c, p.encrypted, await this.s.keys.devicesOf(c.recipient));
    p.encrypted.keyGroups = keys;
    if (retry !== undefined) return { seq: original?.seq, deliver: true, dedupKey };
    const conv = await this.conversations.ensure(c.sender, c.recipient, "pending");
    const seq = await this.conversations.nextSeq(conv, conv.state === "pending");
    await this.ctx.counters.record("messages", c.sender);
    if (conversation === undefined) await this.ctx.counters.record("new-conversations", c.sender);
    await this.s.keys.watch(c.sender, c.recipient);
    return { seq, deliver: true, dedupKey };
  }

  /**
   * §12.5 routing: the addressed gatekeeper device sent message `id` to the requesting user within
   * `retry-window-seconds`; the requesting device is current (checked in step 1).
   */
  private async authorizeRetry(c: Checked, id: string): Promise<void> {
    const window = this.ctx.limits["retry-window-seconds"] * 1000;
    const sent = await this.records.original(c.recipient, id, window);
    if (sent === undefined || sent.recipient !== c.sender || sent.senderDevice !== c.toDevice) {
      throw refuseStandard("forbidden", "cancel", `retry for ${id} not from a recipient`);
    }
  }

  private async markersOn(jid: BareJid): Promise<boolean> {
    const row = (await this.ctx.knex("gk_users").where({ jid }).first()) as
      { read_markers: number | boolean } | undefined;
    return row === undefined ? false : Boolean(row.read_markers);
  }

  /** Typing is dropped on any failed check, during a request and towards blocking users. */
  private async chatState(c: Checked): Promise<void> {
    if (!(await this.s.reach.isReachable(c.provider, c.recipient))) return;
    if (await this.s.abuse.isBlocked(c.recipient, c.sender)) return;
    const conversation = await this.conversations.get(c.sender, c.recipient);
    if (conversation === undefined || conversation.state !== "accepted") return;
    const delivery = localDeliveryOf(c, undefined, this.ctx.now(), undefined);
    if (delivery !== undefined) this.deliverLocal(delivery);
  }

  private sendAccepted(c: Checked, accepted: ReturnType<typeof acceptedOf>): void {
    const to = c.message.from?.jid ?? "";
    this.send(
      buildAccepted({
        id: `a-${accepted.stanzaId}`,
        from: this.ctx.settings.domain,
        to,
        accepted,
      }),
    );
  }

  private bounce(stanza: XmlElement, error: StanzaError): void {
    if (attr(stanza, "from") === undefined) return;
    this.send(bounceFor(stanza, error));
  }

  private send(stanza: XmlElement): void {
    try {
      this.ctx.send(stanza);
    } catch (err) {
      this.ctx.log.debug({ err: String(err) }, "answer not sent");
    }
  }
}

function isChatState(stanza: XmlElement): boolean {
  return stanza.children.some(
    (c) =>
      typeof c !== "string" &&
      (c.name === "composing" || c.name === "paused") &&
      c.attrs.xmlns === NS.chatstates,
  );
}

/** What the gatekeeper user receives for an accepted (or typing) stanza. */
function localDeliveryOf(
  c: Checked,
  stanzaId: StanzaId | undefined,
  at: number,
  seq: number | undefined,
): LocalDelivery | undefined {
  const base = {
    from: c.sender,
    fromDevice: c.device,
    to: c.recipient,
    toDevice: c.toDevice,
    originId: c.message.originId,
    stanzaId,
    stamp: new Date(at),
    seq,
  };
  const p = c.message.payload;
  switch (p.kind) {
    case "encrypted":
      return { ...base, kind: "encrypted", encrypted: p.encrypted };
    case "receipt":
      return { ...base, kind: "receipt", receipts: p.receipts };
    case "displayed":
      return { ...base, kind: "displayed", marker: p.marker };
    case "chat-state":
      return { ...base, kind: "chat-state", state: p.state };
    case "retry":
      return { ...base, kind: "retry", retry: p.retry };
    default:
      return undefined;
  }
}
