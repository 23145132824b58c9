import {
  buildAccepted,
  encodeChatState,
  encodeDisplayed,
  encodeEncrypted,
  encodeMessage,
  encodeReceived,
  encodeRetryRequest,
  encodeGroupSender,
  type ChatState,
  type Encrypted,
  type KeyGroup,
  type MessageRef,
  type RetryRequest,
  type XmlChild,
} from "../../src/interop/codec/index.js";
import type { QueryTarget } from "../../src/db/sql.js";
import type { BareJid, DeviceId, MessageId } from "../../src/util/ids.js";
import { domainOf, type GatekeeperContext } from "../context.js";
import { checkRates } from "../delivery/limits.js";
import type { LocalDelivery } from "../delivery/local.js";
import type { PendingDeliveries } from "../delivery/pending.js";
import { acceptedOf, type AcceptedRecord, type AcceptedRecords } from "../delivery/records.js";
import { refuse, refuseStandard } from "../errors.js";
import type { Services } from "../services.js";
import { newStanzaId } from "../state/ulid.js";
import { GroupOutbox } from "./outbox.js";
import type { GroupStore } from "./store.js";

/** A stanza a member sent to a group, from a provider or from a simulated gatekeeper user. */
export interface FromMember {
  group: BareJid;
  sender: BareJid;
  device: DeviceId;
  /** Absent only for chat states. */
  originId: MessageId | undefined;
  /** Where `<accepted>` goes (the sending full JID); undefined for the gatekeeper's own users. */
  replyTo: string | undefined;
  /** Whether the sender's identity is verified (§9.1), for the rate limits of §16.3. */
  verified: boolean;
}

export type GroupPayload =
  | { kind: "encrypted"; encrypted: Encrypted }
  | { kind: "receipt"; receipts: MessageRef[] }
  | { kind: "displayed"; marker: MessageRef }
  | { kind: "retry"; retry: RetryRequest }
  | { kind: "chat-state"; state: ChatState };

export interface GroupAccepted {
  record: AcceptedRecord;
  duplicate: boolean;
}

/** One delivery of an accepted group stanza: to a provider user's JID or to a gatekeeper user. */
interface Target {
  to: BareJid;
  toDevice: DeviceId | undefined;
  payload: GroupPayload;
}

/**
 * Group traffic (§15.1 for groups, §15.7, §15.8, §17.4, §17.6, E29, E30): membership checks,
 * de-duplication, one seq per accepted message across all senders, and fan-out, one stanza per
 * member from the group JID with `<sender>` and only that member's `<keys>` group. What is
 * accepted is durably held: the de-duplication record, the queued deliveries to providers and the
 * hand-overs to gatekeeper users commit in one transaction before `<accepted>` goes out.
 */
export class GroupMessages {
  constructor(
    private readonly ctx: GatekeeperContext,
    private readonly s: Services,
    private readonly store: GroupStore,
    private readonly records: AcceptedRecords,
    private readonly pending: PendingDeliveries,
    private readonly deliverLocal: (d: LocalDelivery) => void,
  ) {}

  /**
   * Checks, accepts and fans out one group stanza. Throws a Refusal for a bounce; returns the
   * acceptance (a duplicate repeats the first one), or undefined for chat states.
   */
  async handle(m: FromMember, p: GroupPayload): Promise<GroupAccepted | undefined> {
    if (p.kind === "chat-state") {
      await this.typing(m, p.state);
      return undefined;
    }
    const originId = m.originId as MessageId;
    const retry = p.kind === "encrypted" ? p.encrypted.retry : undefined;
    if (p.kind === "encrypted") checkShape(p.encrypted);
    if (p.kind === "retry" && p.retry.author === undefined) {
      throw refuseStandard("bad-request", "modify", "group retry without author and device");
    }
    const only = p.kind === "encrypted" && retry !== undefined ? onlyKey(p.encrypted) : undefined;
    const dedupKey =
      only === undefined ? originId : `${originId}|${only.jid}|${only.rid}|${String(retry)}`;
    const previous = await this.records.find(m.sender, dedupKey);
    if (previous !== undefined) {
      this.sendAccepted(m, previous);
      return { record: previous, duplicate: true };
    }
    let targets: Target[];
    let seq: number | undefined;
    let fresh = false;
    const window = this.ctx.limits["retry-window-seconds"] * 1000;
    if (p.kind === "retry" || only !== undefined) {
      // E30: retries and their re-sends are judged by §17.6 alone, not by current membership.
      const author =
        p.kind === "retry"
          ? (p.retry.author as { jid: BareJid; device: DeviceId })
          : { jid: m.sender, device: m.device };
      const original = await this.store.message(
        m.group,
        author.jid,
        p.kind === "retry" ? p.retry.id : originId,
      );
      const known =
        original !== undefined &&
        original.senderDevice === author.device &&
        original.at > this.ctx.now() - window;
      if (!known && only !== undefined) {
        throw refuseStandard("bad-request", "modify", `re-send of ${originId} never accepted`);
      }
      // A request comes from the requesting device; a re-send names it in its single key.
      const requester =
        only === undefined
          ? { jid: m.sender, device: m.device }
          : { jid: only.jid, device: only.rid };
      const allowed =
        known &&
        (await this.store.wasMemberAt(m.group, requester.jid, original.seq)) &&
        (await this.s.keys.devicesOf(requester.jid)).includes(requester.device);
      if (!allowed) {
        throw refuseStandard("forbidden", "cancel", `retry of ${originId} not from a then-member`);
      }
      seq = p.kind === "retry" ? undefined : original.seq;
      targets =
        p.kind === "retry"
          ? [{ to: author.jid, toDevice: author.device, payload: p }]
          : [{ to: requester.jid, toDevice: requester.device, payload: p }];
    } else {
      const members = await this.store.members(m.group);
      if (!members.some((x) => x.jid === m.sender)) {
        throw refuse({ name: "not-member" }, `${m.sender} is not a member of ${m.group}`);
      }
      if (p.kind === "encrypted") {
        fresh = p.encrypted.group !== undefined;
        if (fresh) await checkRates(this.ctx, m.sender, false, m.verified);
        targets = await this.fanOut(
          m,
          p.encrypted,
          members.map((x) => x.jid),
        );
      } else {
        targets = await this.transportTargets(m, p);
      }
    }
    const group = await this.store.get(m.group);
    if (group === undefined) throw refuse({ name: "not-member" }, `${m.group} does not exist`);
    const at = this.ctx.now();
    const record: AcceptedRecord = {
      sender: m.sender,
      senderDevice: m.device,
      originId,
      recipient: m.group,
      stanzaId: newStanzaId(at),
      seq,
      conversation: m.group,
      service: this.ctx.settings.groupDomain,
      encrypted: p.kind === "encrypted",
      at,
    };
    const outbox = new GroupOutbox(this.ctx, this.s.queue);
    const locals: LocalDelivery[] = [];
    await this.ctx.knex.transaction(async (trx) => {
      if (p.kind === "encrypted" && only === undefined) {
        record.seq = await this.store.nextSeq(trx, group);
        await this.store.addMessage(trx, {
          group: m.group,
          sender: m.sender,
          originId,
          senderDevice: m.device,
          seq: record.seq,
          hasGroup: p.encrypted.group !== undefined,
          at,
        });
      }
      await this.records.add(dedupKey, record, trx);
      for (const t of targets) {
        const local = await this.deliver(trx, outbox, m, t, record);
        if (local !== undefined) locals.push(local);
      }
    });
    if (fresh) await this.ctx.counters.record("messages", m.sender);
    this.sendAccepted(m, record);
    await outbox.flush();
    for (const d of locals) this.deliverLocal(d);
    return { record, duplicate: false };
  }

  /**
   * §17.4: every member but the sender gets the `<group>` with only its own `<keys>` group (keys
   * of non-members, of the sender and for devices not in a member's list are dropped); a stanza
   * without `<group>` only reaches members with keys in it.
   */
  private async fanOut(m: FromMember, e: Encrypted, members: BareJid[]): Promise<Target[]> {
    const targets: Target[] = [];
    for (const jid of members) {
      if (jid === m.sender) continue;
      const devices = await this.s.keys.devicesOf(jid);
      const found = e.keyGroups.find((g) => g.jid === jid);
      const keys = (found?.keys ?? []).filter((k) => devices.includes(k.rid));
      const keyGroups: KeyGroup[] = keys.length > 0 ? [{ jid, keys }] : [];
      if (e.group === undefined && keyGroups.length === 0) continue;
      targets.push({
        to: jid,
        toDevice: undefined,
        payload: { kind: "encrypted", encrypted: { ...e, keyGroups } },
      });
    }
    return targets;
  }

  /**
   * §15.7 in groups: receipts and markers go only to the author of a message accepted in this
   * group, and markers not to an author who disabled them. Refs of unknown messages are dropped
   * (accepted, not forwarded): a receipt may legitimately outlive the message record.
   */
  private async transportTargets(
    m: FromMember,
    p: Extract<GroupPayload, { kind: "receipt" | "displayed" }>,
  ): Promise<Target[]> {
    const refs = p.kind === "receipt" ? p.receipts : [p.marker];
    const author = refs[0]?.author as BareJid;
    if (refs.some((r) => r.author !== author)) {
      throw refuseStandard("bad-request", "modify", "receipts for several authors in one stanza");
    }
    if (author === m.sender) return [];
    const known: MessageRef[] = [];
    for (const ref of refs) {
      if ((await this.store.message(m.group, author, ref.id)) !== undefined) known.push(ref);
    }
    if (known.length === 0) return [];
    if (p.kind === "displayed" && domainOf(author) === this.ctx.settings.domain) {
      const row = (await this.ctx.knex("gk_users").where({ jid: author }).first()) as
        { read_markers: number | boolean } | undefined;
      if (row === undefined || !row.read_markers) return [];
    }
    const payload: GroupPayload = p.kind === "receipt" ? { kind: "receipt", receipts: known } : p;
    return [{ to: author, toDevice: undefined, payload }];
  }

  /** Typing: to every other member now, never queued; dropped for non-members (§15.8). */
  private async typing(m: FromMember, state: ChatState): Promise<void> {
    const members = await this.store.members(m.group);
    if (!members.some((x) => x.jid === m.sender)) return;
    for (const { jid } of members) {
      if (jid === m.sender) continue;
      if (domainOf(jid) === this.ctx.settings.domain) {
        this.deliverLocal({
          ...this.localBase(m, { to: jid, toDevice: undefined }, undefined, undefined),
          kind: "chat-state",
          state,
        });
        continue;
      }
      if (!this.s.hello.isOnline(domainOf(jid))) continue;
      try {
        this.ctx.send(
          encodeMessage(
            { type: "groupchat", from: m.group, to: jid },
            encodeGroupSender({ jid: m.sender, device: m.device }),
            encodeChatState(state),
          ),
        );
      } catch (err) {
        this.ctx.log.debug({ err: String(err) }, "typing not sent");
      }
    }
  }

  private async deliver(
    db: QueryTarget,
    outbox: GroupOutbox,
    m: FromMember,
    t: Target,
    record: AcceptedRecord,
  ): Promise<LocalDelivery | undefined> {
    const stamp = new Date(record.at);
    if (domainOf(t.to) === this.ctx.settings.domain) {
      const base = this.localBase(m, t, record, stamp);
      const d = localOf(base, t.payload);
      d.pendingId = await this.pending.add(db as never, d, record.at);
      return d;
    }
    await outbox.add(db, {
      group: m.group,
      to: t.toDevice === undefined ? t.to : `${t.to}/${t.toDevice}`,
      payload: payloadElement(t.payload),
      originId: m.originId,
      sender: { jid: m.sender, device: m.device },
      stamp,
      seq: t.payload.kind === "encrypted" ? record.seq : undefined,
    });
    return undefined;
  }

  private localBase(
    m: FromMember,
    t: { to: BareJid; toDevice: DeviceId | undefined },
    record: AcceptedRecord | undefined,
    stamp: Date | undefined,
  ) {
    return {
      from: m.sender,
      fromDevice: m.device,
      to: t.to,
      toDevice: t.toDevice,
      originId: m.originId,
      stanzaId: record === undefined ? undefined : newStanzaId(record.at),
      stamp: stamp ?? new Date(this.ctx.now()),
      seq: record?.seq,
      group: m.group,
    };
  }

  private sendAccepted(m: FromMember, record: AcceptedRecord): void {
    if (m.replyTo === undefined) return;
    try {
      this.ctx.send(
        buildAccepted({
          id: `a-${record.stanzaId}`,
          from: this.ctx.settings.groupDomain,
          to: m.replyTo,
          accepted: acceptedOf(record),
        }),
      );
    } catch (err) {
      this.ctx.log.debug({ err: String(err) }, "answer not sent");
    }
  }
}

/**
 * Well-formed group `<encrypted>`: a message has `<group>`, a distribution stanza has keys, and a
 * retry re-send has no `<group>` and exactly one key (§17.4, §17.6).
 */
function checkShape(e: Encrypted): void {
  if (e.retry !== undefined) {
    onlyKey(e);
    if (e.group !== undefined) {
      throw refuseStandard("bad-request", "modify", "a group re-send carries no <group>");
    }
    return;
  }
  if (e.group === undefined && e.keyGroups.length === 0) {
    throw refuseStandard("bad-request", "modify", "group stanza with neither <group> nor keys");
  }
}

function onlyKey(e: Encrypted): { jid: BareJid; rid: DeviceId } {
  const [group, ...rest] = e.keyGroups;
  const key = group?.keys[0];
  if (group === undefined || key === undefined || rest.length > 0 || group.keys.length !== 1) {
    throw refuseStandard("bad-request", "modify", "a re-send carries one key for one device");
  }
  return { jid: group.jid, rid: key.rid };
}

function payloadElement(p: GroupPayload): XmlChild {
  switch (p.kind) {
    case "encrypted":
      return encodeEncrypted(p.encrypted);
    case "receipt":
      return p.receipts.map(encodeReceived);
    case "displayed":
      return encodeDisplayed(p.marker);
    case "retry":
      return encodeRetryRequest(p.retry);
    case "chat-state":
      return encodeChatState(p.state);
  }
}

function localOf(base: Omit<LocalDelivery, "kind">, p: GroupPayload): LocalDelivery {
  switch (p.kind) {
    case "encrypted":
      return { ...base, kind: "encrypted", encrypted: p.encrypted } as LocalDelivery;
    case "receipt":
      return { ...base, kind: "receipt", receipts: p.receipts } as LocalDelivery;
    case "displayed":
      return { ...base, kind: "displayed", marker: p.marker } as LocalDelivery;
    case "retry":
      return { ...base, kind: "retry", retry: p.retry } as LocalDelivery;
    case "chat-state":
      return { ...base, kind: "chat-state", state: p.state } as LocalDelivery;
  }
}
