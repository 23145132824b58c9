import {
  buildDelivery,
  encodeChatState,
  encodeDisplayed,
  encodeEncrypted,
  encodeReceived,
  encodeRequestAccepted,
  encodeRetryRequest,
  encodeMessage,
  type ChatState,
  type Encrypted,
  type MessageRef,
  type RetryRequest,
  type XmlChild,
} from "../../src/interop/codec/index.js";
import { BridgeError } from "../../src/util/errors.js";
import type { BareJid, DeviceId, MessageId, StanzaId } from "../../src/util/ids.js";
import { domainOf, providerByDomain, type GatekeeperContext } from "../context.js";
import type { Services } from "../services.js";
import { newStanzaId } from "../state/ulid.js";
import type { Conversation, Conversations } from "./conversations.js";
import { notify } from "./notify.js";
import type { AcceptedRecords } from "./records.js";

export interface Sent {
  stanzaId: StanzaId;
  seq: number | undefined;
  stamp: Date;
  /** False when the recipient blocked the sender: accepted, never delivered (E19). */
  delivered: boolean;
}

/**
 * Traffic from gatekeeper users to provider users: accepted with stanza-id and seq like provider
 * traffic (§15.6) and queued for the provider (§15.5). A reply accepts a pending message request,
 * which first sends `<request-accepted>` (§10.3).
 */
export class OutboundMessages {
  constructor(
    private readonly ctx: GatekeeperContext,
    private readonly s: Services,
    private readonly conversations: Conversations,
    private readonly records: AcceptedRecords,
  ) {}

  async sendEncrypted(m: {
    from: BareJid;
    device: DeviceId;
    to: BareJid;
    originId: MessageId;
    encrypted: Encrypted;
    /** Retry re-sends go to one device (§12.5). */
    toDevice?: DeviceId;
  }): Promise<Sent> {
    this.providerOf(m.to);
    const conv = await this.conversations.ensure(m.to, m.from, "accepted");
    if (conv.state !== "accepted") await this.accept(conv);
    const retry = m.encrypted.retry;
    let seq: number | undefined;
    if (retry === undefined) {
      seq = await this.conversations.nextSeq(conv, false);
    } else {
      const window = this.ctx.limits["retry-window-seconds"] * 1000;
      seq = (await this.records.original(m.from, m.originId, window))?.seq;
    }
    const stanzaId = newStanzaId(this.ctx.now());
    const at = this.ctx.now();
    const dedupKey =
      retry === undefined ? m.originId : `${m.originId}|${m.to}|${m.toDevice ?? 0}|${retry}`;
    await this.records.add(dedupKey, {
      sender: m.from,
      senderDevice: m.device,
      originId: m.originId,
      recipient: m.to,
      stanzaId,
      seq,
      conversation: m.to,
      service: this.ctx.settings.domain,
      encrypted: true,
      at,
    });
    await this.s.keys.watch(m.to, m.from);
    const blocked = await this.s.abuse.isBlocked(m.to, m.from);
    if (!blocked) {
      const to = m.toDevice === undefined ? m.to : `${m.to}/${m.toDevice}`;
      await this.deliver(m.from, m.device, to, m.originId, encodeEncrypted(m.encrypted), {
        stanzaId,
        at,
        seq,
      });
    }
    return { stanzaId, seq, stamp: new Date(at), delivered: !blocked };
  }

  async sendReceipt(from: BareJid, device: DeviceId, to: BareJid, refs: readonly MessageRef[]) {
    return this.sendTransport(from, device, to, refs.map(encodeReceived), false);
  }

  async sendDisplayed(from: BareJid, device: DeviceId, to: BareJid, ref: MessageRef) {
    return this.sendTransport(from, device, to, encodeDisplayed(ref), true);
  }

  /** Retry request to a provider device; only for a message that device sent to `from` (§12.5). */
  async sendRetry(
    from: BareJid,
    device: DeviceId,
    to: BareJid,
    toDevice: DeviceId,
    r: RetryRequest,
  ) {
    const window = this.ctx.limits["retry-window-seconds"] * 1000;
    const original = await this.records.original(to, r.id, window);
    if (
      original === undefined ||
      original.recipient !== from ||
      original.senderDevice !== toDevice
    ) {
      throw new BridgeError("forbidden", `no message ${r.id} from ${to}/${toDevice} to ${from}`);
    }
    if (await this.s.abuse.isBlocked(to, from)) return false;
    const originId = newStanzaId(this.ctx.now()) as string as MessageId;
    const stanzaId = newStanzaId(this.ctx.now());
    await this.deliver(from, device, `${to}/${toDevice}`, originId, encodeRetryRequest(r), {
      stanzaId,
      at: this.ctx.now(),
      seq: undefined,
    });
    return true;
  }

  /** Typing goes out at once or not at all (§15.8). */
  async sendChatState(from: BareJid, device: DeviceId, to: BareJid, state: ChatState) {
    const provider = this.providerOf(to);
    const conv = await this.conversations.get(to, from);
    if (conv?.state !== "accepted" || (await this.s.abuse.isBlocked(to, from))) return false;
    if (!this.s.hello.isOnline(provider.domain)) return false;
    this.ctx.send(
      encodeMessage({ type: "chat", from: `${from}/${device}`, to }, encodeChatState(state)),
    );
    return true;
  }

  /** The gatekeeper user accepts a pending request: `<request-accepted>` goes first (§10.3). */
  async acceptRequest(gk: BareJid, provider: BareJid): Promise<boolean> {
    const conv = await this.conversations.get(provider, gk);
    if (conv === undefined || conv.state === "accepted") return false;
    await this.accept(conv);
    return true;
  }

  /** A decline is not notified; the sender's next message is `refused` (§10.3). */
  async declineRequest(gk: BareJid, provider: BareJid): Promise<boolean> {
    const conv = await this.conversations.get(provider, gk);
    if (conv === undefined || conv.state !== "pending") return false;
    await this.conversations.setState(conv, "declined");
    return true;
  }

  private async accept(conv: Conversation): Promise<void> {
    await this.conversations.setState(conv, "accepted");
    await notify(this.ctx, this.s.queue, conv.providerJid, encodeRequestAccepted(conv.gkJid));
  }

  private async sendTransport(
    from: BareJid,
    device: DeviceId,
    to: BareJid,
    payload: XmlChild,
    marker: boolean,
  ): Promise<boolean> {
    this.providerOf(to);
    const conv = await this.conversations.get(to, from);
    if (await this.s.abuse.isBlocked(to, from)) return false;
    if (marker && conv?.state !== "accepted") return false;
    const originId = newStanzaId(this.ctx.now()) as string as MessageId;
    const stanzaId = newStanzaId(this.ctx.now());
    await this.deliver(from, device, to, originId, payload, {
      stanzaId,
      at: this.ctx.now(),
      seq: undefined,
    });
    return true;
  }

  private async deliver(
    from: BareJid,
    device: DeviceId,
    to: string,
    originId: MessageId,
    payload: XmlChild,
    meta: { stanzaId: StanzaId; at: number; seq: number | undefined },
  ): Promise<void> {
    const by = this.ctx.settings.domain as BareJid;
    await this.s.queue.enqueueWithId(domainOf(to), by, meta.stanzaId, () =>
      buildDelivery({
        id: originId,
        type: "chat",
        from: `${from}/${device}`,
        to,
        payload,
        originId,
        stanzaId: { id: meta.stanzaId, by },
        meta: { stamp: new Date(meta.at), seq: meta.seq },
      }),
    );
  }

  private providerOf(jid: BareJid) {
    const provider = providerByDomain(this.ctx, domainOf(jid));
    if (provider === undefined) {
      throw new BridgeError("not-a-provider-user", `${jid} is not at an enlisted provider`);
    }
    return provider;
  }
}
