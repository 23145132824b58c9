import type { Knex } from "knex";
import { SqlRunner, type Tx } from "../../db/sql.js";
import { describeError, isTransientError } from "../../util/errors.js";
import type { BareJid, DeviceId, MessageId } from "../../util/ids.js";
import type { Logger } from "../../util/log.js";
import { CodecError, tryDecode } from "../codec/codec-error.js";
import { decodeStanzaIdElement, type StanzaIdElement } from "../codec/delivery.js";
import { keyFor, type Encrypted, type RetryReason, type RetryRequest } from "../codec/e2ee.js";
import { checkEnvelopeBinding, decodeEnvelope, type Envelope } from "../codec/envelope.js";
import { deviceJid } from "../codec/jid.js";
import { classifyMessage, type InboundMessage } from "../codec/message.js";
import { NS } from "../codec/namespaces.js";
import { optionalChild } from "../codec/read.js";
import type { XmlElement } from "../codec/xml.js";
import { DuplicateMessageError, NoSessionError } from "../crypto/errors.js";
import type { DeviceCrypto, SignalCrypto } from "../crypto/signal-crypto.js";
import type { DeviceAddress } from "../crypto/types.js";
import type { KeyDirectory } from "./directory.js";
import { ProviderError } from "./errors.js";
import { isLocalEntry, type AckBatcher, type InboxStore, type PendingEntry } from "./inbox.js";
import type { Outbox } from "./outbox.js";
import type { NewOutboxRow } from "../store/outbox.js";
import { RetryAnswerer, retryRequestRow } from "./retries.js";
import { originIdForReceipt, receiptRow } from "./sender.js";
import { KeyedQueue } from "./serial.js";
import type { HelloSession } from "./session.js";
import { isDeferral } from "../../core/network.js";
import { eventOf } from "./events.js";
import { applyNotification } from "./notifications.js";
import type { ProviderEventHandler, StoredEvent } from "./types.js";
import { conversationKey, type ReorderBuffer } from "./reorder.js";
import { DuplicateMessageError as DuplicateError, NoSenderKeyError } from "../crypto/errors.js";
import type { GroupSender } from "../codec/group-sender.js";
import type { GroupEvent } from "../codec/groups.js";
import { snapshotOf, type GroupManagement, type GroupStore } from "./groups.js";
import { answerGroupRetry, groupRetryRequestRow } from "./retries.js";
import { GatekeeperError } from "./errors.js";

/** Thrown in a decrypt transaction whose stanza-id was recorded before: rolls it back. */
class StanzaSeenBefore extends Error {
  constructor() {
    super("stanza-id recorded before");
    this.name = "StanzaSeenBefore";
  }
}

/** What a decrypt transaction returns for a message decrypted before (its record kept). */
const DECRYPTED_BEFORE = Symbol("decrypted before");

interface ReceiverOptions {
  readonly knex: Knex;
  readonly crypto: SignalCrypto;
  readonly inbox: InboxStore;
  readonly acks: AckBatcher;
  readonly outbox: Outbox;
  readonly retries: RetryAnswerer;
  readonly directory: KeyDirectory;
  readonly session: HelloSession;
  readonly gatekeeperDomain: string;
  readonly emit: ProviderEventHandler;
  /** P15/E23: asked before each message's hand-over; none means deliveries go as they come. */
  readonly reorder?: ReorderBuffer;
  readonly now: () => number;
  readonly logger: Logger;
  /** Groups (§17): the stored versions and members, and `info` for version gaps. */
  readonly groups?: { store: GroupStore; management: GroupManagement };
  /** §17.4: how long a group message without its sender key waits for a distribution. */
  readonly senderKeyWaitMs?: number;
}

type Delivery = InboundMessage & { stanzaId: StanzaIdElement };

/**
 * Whether a gatekeeper refusal may go away by itself (type "wait", rate limits, a session not
 * ready, server trouble): then a stanza waiting for it stays unacked and comes again.
 */
const retryLater = (err: GatekeeperError): boolean =>
  err.errorType === "wait" ||
  ["rate-limited", "locked", "hello-required", "not-enlisted"].includes(err.app?.name ?? "") ||
  [
    "internal-server-error",
    "service-unavailable",
    "remote-server-timeout",
    "resource-constraint",
  ].includes(err.condition);

/** How long one delivery is retried in place on transient errors before it is left unacked. */
const TRANSIENT_RETRY_MS = 120_000;

/**
 * The receiving side (§12.4, §15.4, §15.5, P10, P13-P16, P26, P29). Only stanzas from gatekeeper
 * JIDs are honoured. Queued deliveries are processed one at a time per conversation, conversations
 * in parallel (deliveryKey): de-duplicated by stanza-id and, for messages, per device by (sender,
 * origin-id) before decryption; decrypted inside crypto's transaction, which also records the
 * de-duplication and the event for the core; then handed over, and only after the hand-over
 * resolved are the `<received>` queued and the delivery acked. A crash anywhere before the ack
 * means redelivery; an event committed but not handed over is handed over again from `inbox`.
 */
export class Receiver {
  /**
   * Deliveries in order per conversation and in parallel across conversations (deliveryKey), so
   * that the decrypt transactions of different conversations commit together (issue #15).
   */
  private readonly queue = new KeyedQueue();
  private readonly handingOver = new Map<string, Promise<void>>();
  /**
   * Committed events not yet handed over, per conversation, oldest first: what `inbox`
   * holds, kept in memory so that ordering a hand-over costs no table scan (issue #15). Filled
   * when an event is committed and, after a restart, once by replayPending.
   */
  private readonly waiting = new Map<string, PendingEntry[]>();
  /**
   * Stanza-ids handed over lately: a redelivery that read the pending row just before its
   * hand-over deleted it must not put it back on the waiting list (bounded: a redelivery comes
   * within seconds).
   */
  private readonly handedOver = new Set<string>();
  /**
   * Stanza-ids of committed messages the reorder buffer holds for a gap before them (acked,
   * waiting for releaseHeld). A redelivery of one is acked again and nothing more: chaining it
   * again would re-check every older held message of its conversation once per redelivery, and
   * after a restart the gatekeeper resends hundreds of them every few seconds (kill -9 fault test).
   */
  private readonly heldIds = new Set<string>();
  /** Fresh messages not yet offered to the core: their hand-over is a first one (types.ts). */
  private readonly firstHandOvers = new WeakSet<PendingEntry>();
  /** The hand-over chain of each conversation: ordered within it, parallel across them. */
  private readonly chains = new Map<string, Promise<void>>();
  private readonly log: Logger;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelayMs = HAND_OVER_RETRY_INITIAL_MS;
  private stopped = false;

  constructor(private readonly options: ReceiverOptions) {
    this.log = options.logger.child({ component: "receiver" });
  }

  /** Every inbound `<message>`. Never rejects: failures are logged and leave the stanza unacked. */
  handle(el: XmlElement): Promise<void> {
    const { session } = this.options;
    const from = typeof el.attrs.from === "string" ? el.attrs.from : "";
    if (!session.isGatekeeperAddress(from)) {
      // §15.9: gatekeeper-only elements count only from gatekeeper JIDs, and nothing else in
      // this protocol comes from anywhere else.
      this.log.warn({ from, id: el.attrs.id }, "stanza from a non-gatekeeper JID ignored");
      return Promise.resolve();
    }
    const limits = session.limits;
    const decoded = tryDecode(() =>
      classifyMessage(el, {
        maxReceiptItems: limits["max-receipt-items"],
        maxAckItems: limits["max-ack-items"],
      }),
    );
    if (!decoded.ok) return this.malformed(el, decoded.error);
    const msg = decoded.value;
    const { payload } = msg;
    switch (payload.kind) {
      case "accepted":
        if (msg.to === undefined) return Promise.resolve();
        return this.guard(this.options.outbox.onAccepted(msg.to.jid, payload.accepted));
      case "bounce":
        if (msg.to === undefined) return Promise.resolve();
        return this.guard(
          this.options.outbox.onBounce(from, msg.to.jid, msg.id ?? "", payload.error),
        );
      case "hello-request":
        if (from === this.options.gatekeeperDomain) session.requestHello("hello-request received");
        return Promise.resolve();
      case "ack":
        return Promise.resolve();
      case "chat-state":
        if (msg.from === undefined || msg.to === undefined) return Promise.resolve();
        return this.guard(
          this.options.emit({
            kind: "typing",
            local: msg.to.bare,
            // A group's typing comes from the group JID on behalf of <sender> (§17.4).
            ...(msg.sender === undefined
              ? { from: msg.from.bare }
              : { from: msg.sender.jid, group: msg.from.bare }),
            state: payload.state,
          }),
        );
      default: {
        const stanzaId = msg.stanzaId;
        if (stanzaId === undefined) {
          this.log.warn({ from, kind: payload.kind }, "delivery without stanza-id ignored");
          return Promise.resolve();
        }
        const delivery: Delivery = { ...msg, stanzaId };
        return this.guard(
          this.run(deliveryKey(delivery), () => this.untilDone(() => this.process(delivery))),
        );
      }
    }
  }

  /**
   * Hands over what a previous run committed but did not finish (after a crash), and what the
   * core deferred. Reads all pending `inbox` rows: at hello and on the engine's slow timer only,
   * never per message or per release of held ones (that is releaseHeld).
   */
  replayPending(): Promise<void> {
    return this.guard(this.run(ALONE, () => this.untilDone(() => this.handOverAllPending())));
  }

  /**
   * At start, before any delivery: what a previous run committed and did not hand over joins its
   * conversation's waiting list. A delivery the gatekeeper sends right after hello, ahead of
   * replayPending, is then handed over after them, in seq order, rather than taken by a fresh
   * reorder buffer as the start of its conversation.
   */
  loadPending(): Promise<void> {
    return this.guard(
      this.run(ALONE, () =>
        this.untilDone(async () => {
          for (const entry of await this.options.inbox.allPending()) this.remember(entry);
        }),
      ),
    );
  }

  /**
   * An entry committed by another part of the bridge rather than a delivery (an identity change,
   * recorded by the crypto layer's transaction): handed over like a delivery's, behind the
   * earlier events of its conversation and ahead of later ones, and kept pending in `inbox`,
   * retried, until the core took it. Called after its commit.
   */
  handOverCommitted(entry: PendingEntry): void {
    if (this.stopped) return;
    this.chainHandOver(entry);
  }

  /**
   * The reorder buffer's call: held messages of `conversation` may go now. Offers that
   * conversation's waiting events again, messages in seq order, behind its earlier hand-overs;
   * reads no table.
   */
  releaseHeld(conversation: string): void {
    if (this.stopped || !this.waiting.has(conversation)) return;
    this.chain(conversation, "held", async () => {
      for (const entry of inSeqOrder(this.waiting.get(conversation) ?? [])) {
        await this.handOver(entry);
      }
    });
  }

  /**
   * Every pending row, each conversation's messages in seq order: rows are stored in arrival
   * order, and a buffer fresh after a start takes the first seq it is offered as the start, so
   * 6-then-5 held before a crash must be offered 5, 6.
   */
  private async handOverAllPending(): Promise<void> {
    const entries = (await this.options.inbox.allPending()).map((entry) => this.remember(entry));
    const groups = new Map<string, PendingEntry[]>();
    for (const entry of entries) {
      const key = conversationOf(entry.event) ?? `stanza\n${entry.stanzaId}`;
      const group = groups.get(key);
      if (group === undefined) groups.set(key, [entry]);
      else group.push(entry);
    }
    for (const group of groups.values()) {
      for (const entry of inSeqOrder(group)) await this.handOver(entry);
    }
  }

  /** Resolves once every delivery queued so far is processed and its hand-over settled. */
  async idle(): Promise<void> {
    await this.queue.idle();
    while (this.chains.size > 0) await Promise.all(this.chains.values());
  }

  /**
   * Runs `work` again while it fails with a transient error (the database connection lost or
   * busy), with backoff, for at most TRANSIENT_RETRY_MS. Deliveries of a conversation are
   * processed one at a time, so retrying in place holds its later ones back: failing instead
   * would let them be handed over first and the failed one only after its redelivery, out of
   * order (§15.6). Other conversations go on meanwhile. A stanza that still fails is left unacked,
   * as any other failure.
   */
  private async untilDone<T = void>(work: () => Promise<T>): Promise<T> {
    const started = Date.now();
    let delay = 200;
    for (;;) {
      try {
        return await work();
      } catch (err) {
        if (!isTransientError(err) || this.stopped) throw err;
        if (Date.now() - started + delay > TRANSIENT_RETRY_MS) throw err;
        this.log.warn(
          { err: describeError(err), retryInMs: delay },
          "inbound stanza failed on a transient error; retrying",
        );
        await new Promise((resolve) => setTimeout(resolve, delay));
        // Halted meanwhile: a retry now would write after the halt, racing a next run (cd42301).
        if (this.stopped) throw err;
        delay = Math.min(delay * 2, 5000);
      }
    }
  }

  private async process(msg: Delivery, wait = true): Promise<void> {
    const sid = msg.stanzaId;
    if (!this.options.session.isGatekeeperAddress(sid.by) || sid.by.includes("@")) {
      this.log.warn({ by: sid.by }, "stanza-id of a non-gatekeeper domain ignored");
      return;
    }
    // A 1:1 message finds out whether its stanza-id was seen in its decrypt transaction (one
    // statement instead of a check before the insert; processEncrypted). A 1:1 `<received>` needs
    // no check either: handing it over twice is harmless (deliverReceipt), and its record is an
    // insert that ignores a stanza-id seen before; the check was a statement per receipt.
    const direct =
      (msg.payload.kind === "encrypted" && msg.type === "chat") ||
      (msg.payload.kind === "receipt" &&
        msg.from !== undefined &&
        !this.options.session.isGroupAddress(msg.from.bare));
    if (!direct && (await this.seenBefore(sid))) return;
    const { payload } = msg;
    const local = msg.to?.bare;
    const from = msg.from?.bare;
    if (local === undefined || from === undefined) return this.recordOnly(sid);
    // Stanzas a group JID delivers on behalf of a member carry <sender> (§17.4); from anyone
    // else it is ignored, or a contact could attribute receipts and retries to another user.
    const sender = this.options.session.isGroupAddress(from) ? msg.sender : undefined;
    const inGroup = sender === undefined ? {} : { from: sender.jid, group: from };
    switch (payload.kind) {
      case "encrypted":
        if (msg.type === "groupchat" && sender !== undefined) {
          return this.processGroupEncrypted(msg, payload.encrypted, local, from, sender, wait);
        }
        return this.processEncrypted(msg, payload.encrypted, local, from);
      case "receipt":
        this.deliverReceipt(sid, {
          kind: "delivered",
          local,
          from,
          refs: payload.receipts,
          ...inGroup,
        });
        return;
      case "displayed":
        return this.commit(sid, {
          kind: "displayed",
          local,
          from,
          ref: payload.marker,
          ...inGroup,
        });
      case "retry":
        if (sender !== undefined) return this.processGroupRetry(msg, payload.retry, local, from);
        return this.processRetry(msg, payload.retry, local);
      case "notification": {
        if (payload.notification.type === "group-event") {
          return this.processGroupEvent(sid, payload.notification.event, local, from);
        }
        const event = await applyNotification(this.options, payload.notification, local, this.log);
        return event === undefined ? this.recordOnly(sid) : this.commit(sid, event);
      }
      default:
        return this.recordOnly(sid);
    }
  }

  private async processEncrypted(
    msg: Delivery,
    encrypted: Encrypted,
    local: BareJid,
    from: BareJid,
  ): Promise<void> {
    const { crypto, inbox, session, now } = this.options;
    const sid = msg.stanzaId;
    const originId = msg.originId;
    // Groups are phase 2 and not served by this engine; acked like an unknown stanza (§7.3).
    if (msg.type !== "chat" || encrypted.group !== undefined || originId === undefined) {
      return this.recordOnly(sid);
    }
    const [ownDevice] = await crypto.localDevices(local);
    if (ownDevice === undefined) {
      this.log.warn({ local }, "message for a user without keys dropped");
      return this.recordOnly(sid);
    }
    const device = await crypto.device(local, ownDevice);
    const sender: DeviceAddress = { jid: from, device: encrypted.sid };
    const cached = await crypto.deviceLists.get(from);
    const unknownSender = cached === null || !cached.devices.some((d) => d.id === encrypted.sid);
    const key = keyFor(encrypted, local, ownDevice);
    const stamp = msg.meta?.stamp;
    try {
      if (key === undefined) {
        if (await this.seenBefore(sid)) return;
        await this.requestRetry(device, sender, originId, "no-key", sid, stamp);
        return;
      }
      const entry = await device.sessions.decrypt(
        { senderJid: from, senderDevice: encrypted.sid, kex: key.kex, ciphertext: key.ciphertext },
        async (plaintext, trx) => {
          const at = now();
          // Database work and pure work only: under group commit this function may run twice.
          // The one decode of the message on the normal path: the envelope travels in the entry
          // to the hand-over (eventOf). Decoded before the record, so that a good one is
          // recorded with its pending event in one statement (issue #15).
          let envelope: Envelope | CodecError;
          try {
            envelope = decodeEnvelope(plaintext, {
              maxEnvelopeBytes: session.limits["max-envelope-bytes"],
            });
            checkEnvelopeBinding(envelope, { from, to: local, originId });
          } catch (err) {
            if (!(err instanceof CodecError)) throw err;
            envelope = err;
          }
          const pending: PendingEntry | undefined =
            envelope instanceof CodecError
              ? undefined
              : {
                  stanzaId: sid.id,
                  by: sid.by,
                  event: {
                    kind: "message",
                    local,
                    from,
                    device: encrypted.sid,
                    originId,
                    stanzaId: sid.id,
                    seq: msg.meta?.seq,
                    stamp,
                    envelopeXml: Buffer.from(plaintext).toString("utf8"),
                  },
                  receipt: { from: deviceJid(local, ownDevice), to: from, id: originId },
                  envelope,
                };
          // Seen before (a redelivery): rolled back, the session step included.
          const recorded =
            pending === undefined
              ? await inbox.recordNew(trx, sid.id, sid.by, at)
              : await inbox.recordNewPending(trx, pending, at);
          if (!recorded) throw new StanzaSeenBefore();
          if (
            !(await inbox.recordDecrypted(
              trx,
              { local, device: ownDevice, sender: from, originId },
              at,
            ))
          ) {
            // A copy of a message handed over before (a retry re-send of it, decrypted anew):
            // the ratchet step and the stanza-id are kept, nothing is handed over (and nothing
            // left pending: a rare path, one statement more).
            if (pending !== undefined) await inbox.completePending(trx, sid.id);
            return DECRYPTED_BEFORE;
          }
          // §12.2: discarded, no receipt; the ratchet step and the de-dup record are kept.
          if (pending === undefined) return envelope as CodecError;
          return pending;
        },
      );
      if (entry === DECRYPTED_BEFORE) {
        // Its seq is never shown, so none waits for it.
        this.settleSeq(local, from, msg.meta?.seq);
        this.options.acks.add(sid.by, sid.id);
      } else if (entry instanceof CodecError) {
        this.log.warn({ from, originId, err: entry.message }, "envelope discarded");
        // Its seq is never shown: the next message must not wait the deadline for it.
        this.settleSeq(local, from, msg.meta?.seq);
        this.options.acks.add(sid.by, sid.id);
      } else {
        // New by stanza-id (recordNew) and by (sender, origin-id) for this device
        // (recordDecrypted, kept for the de-dup window, after which no copy comes: §15.3, §15.4)
        // in the commit above: never handed over before, by this run or an earlier one.
        this.firstHandOvers.add(entry);
        this.chainHandOver(entry);
      }
    } catch (err) {
      if (err instanceof StanzaSeenBefore) {
        await this.seenBefore(sid);
      } else if (err instanceof DuplicateMessageError) {
        if (await this.seenBefore(sid)) return;
        this.settleSeq(local, from, msg.meta?.seq);
        await this.recordOnly(sid);
      } else if (isCryptoFailure(err)) {
        if (await this.seenBefore(sid)) return;
        this.log.info({ from, originId, err: describeError(err) }, "message failed to decrypt");
        const reason: RetryReason = err instanceof NoSessionError ? "no-session" : "decrypt-failed";
        await this.requestRetry(device, sender, originId, reason, sid, stamp);
      } else {
        throw err;
      }
    } finally {
      // §12.4: an unknown sending device is still decrypted, and its user's list refreshed.
      if (unknownSender) {
        this.options.directory
          .deviceIds(local, from, { refresh: true })
          .catch((err: unknown) =>
            this.log.debug({ err: describeError(err), from }, "device-list refresh failed"),
          );
      }
    }
  }

  /**
   * §12.5: at most 2 retry requests per (message, device), then "could not be decrypted". In a
   * group (§17.6) the request goes to the group JID, naming the author's device.
   */
  private async requestRetry(
    device: DeviceCrypto,
    sender: DeviceAddress,
    originId: MessageId,
    reason: RetryReason,
    sid: StanzaIdElement,
    stamp: Date | undefined,
    group?: BareJid,
  ): Promise<void> {
    const count = await device.retries.nextRequestCount(sender, originId);
    if (count === null) {
      await this.commit(sid, {
        kind: "undecryptable",
        local: device.jid,
        from: sender.jid,
        originId,
        stamp,
        ...(group === undefined ? {} : { group }),
      });
      return;
    }
    const own = { jid: device.jid, device: device.deviceId, registration: device.registrationId };
    const request = { id: originId, count, reason };
    const row =
      group === undefined
        ? retryRequestRow(own, sender, request)
        : groupRetryRequestRow(own, group, sender, request);
    await SqlRunner.of(this.options.knex).transaction(async (tx) => {
      await this.options.outbox.insert(tx, row);
      await this.options.inbox.record(tx, sid.id, sid.by, this.options.now());
    });
    this.options.outbox.kick();
    this.options.acks.add(sid.by, sid.id);
  }

  private async processRetry(msg: Delivery, retry: RetryRequest, local: BareJid): Promise<void> {
    const requester = deviceAddress(msg.from?.bare, msg.from?.resource);
    const ownDevice = msg.to?.resource === undefined ? undefined : Number(msg.to.resource);
    if (requester !== undefined && ownDevice !== undefined && retry.author === undefined) {
      try {
        const outcome = await this.options.retries.answer(
          { jid: local, device: ownDevice as DeviceId },
          requester,
          { originId: retry.id, count: retry.count },
        );
        this.log.info({ originId: retry.id, requester, outcome }, "retry request handled");
      } catch (err) {
        // Without the gatekeeper no answer can be built: leave it unacked for redelivery.
        if (err instanceof ProviderError && err.code === "not-ready") throw err;
        this.log.warn(
          { err: describeError(err), originId: retry.id },
          "retry request not answered",
        );
      }
    }
    await this.recordOnly(msg.stanzaId);
  }

  // --- groups (§17) ---------------------------------------------------------------------------

  /**
   * A membership notification (§17.2) for `local`. One that follows the stored version is
   * reported as it is; a gap (or a group not known here) means `info` is fetched and the group
   * reported whole (`group-info`, with `addedBy` when someone else added the login's user). The
   * store is updated in the transaction that records the event for the core.
   */
  private async processGroupEvent(
    sid: StanzaIdElement,
    event: GroupEvent,
    local: BareJid,
    group: BareJid,
  ): Promise<void> {
    const groups = this.options.groups;
    if (groups === undefined) return this.recordOnly(sid);
    const stored = await groups.store.get(local, group);
    const self = event.participants.some((p) => p.jid === local);
    const { inbox, now } = this.options;
    if (event.type === "created" && event.group !== undefined) {
      // The snapshot is stored and reported under the notifying group JID: one naming another
      // group would overwrite that group's state.
      if (event.group.jid !== group) {
        this.log.warn({ group, named: event.group.jid }, "created notification for another group");
        return this.recordOnly(sid);
      }
      const info = snapshotOf(event.group);
      return this.commitWith(
        sid,
        {
          kind: "group-info",
          local,
          group,
          info,
          addedBy: event.by === local ? undefined : event.by,
        },
        (tx) => groups.store.save(tx, local, info),
      );
    }
    const gone =
      self && (event.type === "participants-removed" || event.type === "participant-left");
    const gap =
      !gone &&
      (event.type === "unknown" || stored === undefined || event.version > stored.version + 1);
    if (gap) {
      let fetched;
      try {
        fetched = await groups.management.fetchInfo(local, group);
      } catch (err) {
        if (err instanceof GatekeeperError && err.app?.name === "not-member") {
          this.log.info({ group, local }, "group event for a group we are no member of");
          return this.recordOnly(sid);
        }
        // A refusal that will not change on redelivery would leave the stanza unacked for good,
        // one IQ per redelivery: record it. Only "later" answers keep it unacked.
        if (err instanceof GatekeeperError && !retryLater(err)) {
          this.log.warn(
            { group, local, err: describeError(err) },
            "group info refused for good; the group event is dropped",
          );
          return this.recordOnly(sid);
        }
        throw err;
      }
      const addedBy =
        stored === undefined && event.type === "participants-added" && self && event.by !== local
          ? event.by
          : undefined;
      const info = snapshotOf(fetched);
      return this.commitWith(sid, { kind: "group-info", local, group, info, addedBy }, (tx) =>
        groups.store.save(tx, local, info),
      );
    }
    if (event.type === "unknown" || event.type === "created") return this.recordOnly(sid);
    const record: StoredEvent = {
      kind: "group-event",
      local,
      group,
      type: event.type,
      version: event.version,
      by: event.by,
      participants: event.participants.map((p) => ({ jid: p.jid, role: p.role ?? "member" })),
      subject: event.subject,
    };
    void inbox;
    void now;
    return this.commitWith(sid, record, (tx) =>
      gone
        ? groups.store.forget(tx, local, group)
        : groups.store.applyEvent(tx, local, group, event),
    );
  }

  /**
   * A group message (§17.4): the own header key first (1:1 decrypt, envelope bound to the group,
   * the sender and the origin-id; its SKDM processed), then `groupDecrypt` of `<group>`, checked
   * likewise. A header that holds other content is a retry re-send (§17.6) and is the message.
   * Without the sender key the stanza waits (unacked) for a distribution, then asks for a retry.
   */
  private async processGroupEncrypted(
    msg: Delivery,
    encrypted: Encrypted,
    local: BareJid,
    group: BareJid,
    sender: GroupSender,
    wait: boolean,
  ): Promise<void> {
    const { crypto, inbox, session, now } = this.options;
    const sid = msg.stanzaId;
    const originId = msg.originId;
    if (originId === undefined) return this.recordOnly(sid);
    const author = sender.jid;
    const address: DeviceAddress = { jid: author, device: sender.device ?? encrypted.sid };
    const [ownDevice] = await crypto.localDevices(local);
    if (ownDevice === undefined) return this.recordOnly(sid);
    const seq = msg.meta?.seq;
    if (await inbox.decrypted(local, ownDevice, author, originId)) {
      this.settleSeq(local, group, seq);
      return this.recordOnly(sid);
    }
    const device = await crypto.device(local, ownDevice);
    const stamp = msg.meta?.stamp;
    const limits = { maxEnvelopeBytes: session.limits["max-envelope-bytes"] };
    const entryOf = (plaintext: Uint8Array, envelope: Envelope): PendingEntry => ({
      stanzaId: sid.id,
      by: sid.by,
      event: {
        kind: "message",
        local,
        from: author,
        device: address.device,
        originId,
        stanzaId: sid.id,
        seq,
        stamp,
        envelopeXml: Buffer.from(plaintext).toString("utf8"),
        group,
      },
      receipt: { from: deviceJid(local, ownDevice), to: group, id: originId, author },
      envelope,
    });
    const key = keyFor(encrypted, local, ownDevice);
    // Visible header content is the message only as the answer to our own group retry request
    // (§17.6); otherwise a member could show text "in the group" to our devices alone.
    const resend =
      encrypted.group === undefined &&
      encrypted.retry !== undefined &&
      (await device.retries.requested(address, originId));
    try {
      if (key !== undefined) {
        let header: { skdm: Uint8Array | undefined; entry: PendingEntry | undefined } | CodecError;
        try {
          header = await device.sessions.decrypt(
            {
              senderJid: author,
              senderDevice: address.device,
              kex: key.kex,
              ciphertext: key.ciphertext,
            },
            async (plaintext, trx) => {
              let envelope;
              try {
                envelope = decodeEnvelope(plaintext, limits);
                checkEnvelopeBinding(envelope, { from: author, to: group, originId });
              } catch (err) {
                if (!(err instanceof CodecError)) throw err;
                return err;
              }
              const skdm = envelope.content.find(
                (c) => c.kind === "sender-key" && c.group === group,
              );
              const visible = envelope.content.some((c) => c.kind !== "sender-key");
              const result = {
                skdm: skdm?.kind === "sender-key" ? skdm.skdm : undefined,
                entry: undefined as PendingEntry | undefined,
              };
              if (visible && !resend && encrypted.group === undefined) {
                this.log.warn(
                  { author, originId, group },
                  "header content without a retry request of ours dropped (only its sender key kept)",
                );
              }
              if (resend && visible) {
                // A retry re-send (§17.6): the header envelope is the message.
                const at = now();
                await inbox.recordDecrypted(
                  trx,
                  { local, device: ownDevice, sender: author, originId },
                  at,
                );
                result.entry = entryOf(plaintext, envelope);
                // The record and the pending event: one statement.
                await inbox.addPending(trx, result.entry, at);
              }
              return result;
            },
          );
        } catch (err) {
          // A header step consumed before (a crash after it): the group part may still work.
          if (!(err instanceof DuplicateError) || encrypted.group === undefined) throw err;
          header = { skdm: undefined, entry: undefined };
        }
        if (header instanceof CodecError) {
          this.log.warn({ author, originId, err: header.message }, "group header discarded");
        } else {
          if (header.skdm !== undefined) {
            await device.groups.processDistribution(group, address, header.skdm);
            this.releaseParked(parkKey(local, group, address));
          }
          if (header.entry !== undefined) {
            this.chainHandOver(header.entry);
            return;
          }
        }
      }
      if (encrypted.group === undefined) {
        // A distribution stanza: nothing to show (§17.4).
        this.settleSeq(local, group, seq);
        return this.recordOnly(sid);
      }
      const entry = await device.groups.decrypt(
        group,
        address,
        encrypted.group,
        async (plaintext, trx) => {
          const at = now();
          await inbox.recordDecrypted(
            trx,
            { local, device: ownDevice, sender: author, originId },
            at,
          );
          let envelope: Envelope;
          try {
            envelope = decodeEnvelope(plaintext, limits);
            checkEnvelopeBinding(envelope, { from: author, to: group, originId });
          } catch (err) {
            if (!(err instanceof CodecError)) throw err;
            await inbox.record(trx, sid.id, sid.by, at);
            return err;
          }
          const pending = entryOf(plaintext, envelope);
          // The record and the pending event: one statement.
          await inbox.addPending(trx, pending, at);
          return pending;
        },
      );
      if (entry instanceof CodecError) {
        this.log.warn({ author, originId, err: entry.message }, "group envelope discarded");
        this.settleSeq(local, group, seq);
        this.options.acks.add(sid.by, sid.id);
      } else this.chainHandOver(entry);
    } catch (err) {
      if (err instanceof DuplicateError) {
        this.settleSeq(local, group, seq);
        await this.recordOnly(sid);
      } else if (err instanceof NoSenderKeyError && wait) {
        this.park(msg, parkKey(local, group, address));
      } else if (err instanceof NoSenderKeyError || isCryptoFailure(err)) {
        this.log.info({ author, originId, err: describeError(err) }, "group message not decrypted");
        const reason: RetryReason =
          err instanceof NoSenderKeyError
            ? "no-sender-key"
            : err instanceof NoSessionError
              ? "no-session"
              : "decrypt-failed";
        await this.requestRetry(device, address, originId, reason, sid, stamp, group);
      } else {
        throw err;
      }
    }
  }

  /** Parked group messages waiting for their sender key, by stanza-id. */
  private readonly parked = new Map<
    string,
    { key: string; msg: Delivery; timer: NodeJS.Timeout }
  >();

  /**
   * §17.4: the message waits, unacked, for a distribution stanza of its sender; after
   * `senderKeyWaitMs` it is processed again without waiting, which asks for a group retry.
   */
  private park(msg: Delivery, key: string): void {
    const id = msg.stanzaId.id;
    if (this.parked.has(id) || this.stopped) return;
    const timer = setTimeout(() => {
      this.parked.delete(id);
      if (this.stopped) return;
      void this.guard(
        this.run(deliveryKey(msg), () => this.untilDone(() => this.process(msg, false))),
      );
    }, this.options.senderKeyWaitMs ?? 60_000);
    timer.unref();
    this.parked.set(id, { key, msg, timer });
    this.log.debug({ stanzaId: id }, "group message waits for its sender key");
  }

  /** A sender key arrived: the messages that waited for it are processed again now. */
  private releaseParked(key: string): void {
    for (const [id, p] of this.parked) {
      if (p.key !== key) continue;
      clearTimeout(p.timer);
      this.parked.delete(id);
      void this.guard(
        this.run(deliveryKey(p.msg), () => this.untilDone(() => this.process(p.msg))),
      );
    }
  }

  /** A group retry request for one of our messages (§17.6), answered under §12.5's limits. */
  private async processGroupRetry(
    msg: Delivery,
    retry: RetryRequest,
    local: BareJid,
    group: BareJid,
  ): Promise<void> {
    const sender = msg.sender;
    const ownDevice = msg.to?.resource === undefined ? undefined : Number(msg.to.resource);
    if (
      sender?.device !== undefined &&
      ownDevice !== undefined &&
      retry.author !== undefined &&
      retry.author.jid === local &&
      retry.author.device === ownDevice
    ) {
      try {
        const stored = await this.options.groups?.store.get(local, group);
        const stillMember = stored?.participants.some((p) => p.jid === sender.jid) ?? false;
        const outcome = await answerGroupRetry(
          this.options.retries.options,
          { jid: local, device: ownDevice as DeviceId },
          group,
          { jid: sender.jid, device: sender.device },
          { originId: retry.id, count: retry.count },
          stillMember,
        );
        this.log.info({ originId: retry.id, outcome }, "group retry request handled");
      } catch (err) {
        if (err instanceof ProviderError && err.code === "not-ready") throw err;
        this.log.warn({ err: describeError(err), originId: retry.id }, "group retry not answered");
      }
    }
    await this.recordOnly(msg.stanzaId);
  }

  /** As commit, with more writes of the caller in the same transaction (may run twice). */
  private async commitWith(
    sid: StanzaIdElement,
    event: StoredEvent,
    extra?: (tx: Tx) => Promise<void>,
  ): Promise<void> {
    const entry: PendingEntry = { stanzaId: sid.id, by: sid.by, event, receipt: undefined };
    await SqlRunner.of(this.options.knex).transaction(async (tx) => {
      // The record and the pending event: one statement.
      await this.options.inbox.addPending(tx, entry, this.options.now());
      if (extra !== undefined) await extra(tx);
    });
    this.chainHandOver(entry);
  }

  /** Tells the reorder buffer that `seq` of this conversation will not be handed over. */
  private settleSeq(local: BareJid, from: BareJid, seq: number | undefined): void {
    if (seq !== undefined) this.options.reorder?.observe(conversationKey(local, from), seq);
  }

  /**
   * A stanza-id recorded before (a redelivery): its event, if not handed over yet, is chained
   * again; otherwise it is acked again. False for a new stanza-id.
   */
  private async seenBefore(sid: StanzaIdElement): Promise<boolean> {
    const { inbox } = this.options;
    if (this.heldIds.has(sid.id)) {
      this.options.acks.add(sid.by, sid.id);
      return true;
    }
    if (!(await inbox.seen(sid.id))) return false;
    const pending = await inbox.pending(sid.id);
    if (pending !== undefined) this.chainHandOver(pending);
    else this.options.acks.add(sid.by, sid.id);
    return true;
  }

  private async recordOnly(sid: StanzaIdElement): Promise<void> {
    await SqlRunner.of(this.options.knex).connection((tx) =>
      this.options.inbox.record(tx, sid.id, sid.by, this.options.now()),
    );
    this.options.acks.add(sid.by, sid.id);
  }

  /** Records the stanza-id and the event in one transaction, then hands the event over. */
  private commit(sid: StanzaIdElement, event: StoredEvent): Promise<void> {
    return this.commitWith(sid, event);
  }

  /**
   * Queues the hand-over of a committed event behind the earlier ones of its conversation and
   * returns at once: the conversation's next delivery is decrypted while this one is posted to
   * Matrix. A failed hand-over is retried by retryHandOverLater (the event stays pending and
   * unacked).
   */
  private chainHandOver(committed: PendingEntry): void {
    const entry = this.remember(committed);
    this.chain(conversationOf(entry.event) ?? `stanza\n${entry.stanzaId}`, entry.stanzaId, () =>
      this.handOverInOrder(entry),
    );
  }

  /**
   * A `<received>` (§15.7): nothing to decrypt and nothing lost if it is handed over twice, so it
   * is handed over first (behind the earlier events of its conversation) and only then recorded
   * in `inbox` and acked: no sealed pending event and no transaction of its own (issue
   * #15). A crash before the record means a redelivery and a second, harmless hand-over; a failed
   * hand-over leaves it unacked for the gatekeeper's redelivery. Held by the core (a deferral), it
   * is stored as pending like any other event.
   */
  private deliverReceipt(
    sid: StanzaIdElement,
    event: Extract<StoredEvent, { kind: "delivered" }>,
  ): void {
    const key = conversationOf(event) ?? `stanza\n${sid.id}`;
    this.chain(key, sid.id, async () => {
      for (const older of [...(this.waiting.get(key) ?? [])]) await this.handOver(older);
      try {
        await this.options.emit(event);
      } catch (err) {
        if (!isDeferral(err)) throw err;
        await this.commit(sid, event);
        return;
      }
      await this.recordOnly(sid);
    });
  }

  /**
   * Runs `job` after the jobs queued before it under the same key (ALONE: after every job queued
   * before it, and ahead of every later one), unless the engine halted meanwhile: after a halt (a
   * crash, as the fault tests make one) nothing more is decrypted, stored or handed over, so a
   * next run on the same database finds every unfinished delivery as the crash left it, rather
   * than racing this one for it (a halted engine took a new run's pending event, acked it into
   * its closed session, and the gatekeeper's copy stayed unacked).
   */
  private run(key: string | typeof ALONE, job: () => Promise<void>): Promise<void> {
    const gated = (): Promise<void> => (this.stopped ? Promise.resolve() : job());
    return key === ALONE ? this.queue.runExclusive(gated) : this.queue.run(key, gated);
  }

  /** Runs `job` after the earlier jobs of conversation `key`; a failure is logged and left unacked. */
  private chain(key: string, stanzaId: string, job: () => Promise<void>): void {
    const previous = this.chains.get(key) ?? Promise.resolve();
    const next = previous
      .then(() => (this.stopped ? undefined : job()))
      .catch((err: unknown) => {
        this.log.error(
          { err: describeError(err), stanzaId },
          "hand-over failed; left unacked and retried",
        );
      })
      .finally(() => {
        if (this.chains.get(key) === next) this.chains.delete(key);
      });
    this.chains.set(key, next);
  }

  /**
   * Adds a committed event to its conversation's waiting list (once), and returns the entry to
   * hand over: the one already waiting when there is one, since an entry of this run carries the
   * envelope decoded at decrypt time and one read back from `inbox` does not.
   */
  private remember(entry: PendingEntry): PendingEntry {
    const conversation = conversationOf(entry.event);
    if (conversation === undefined || this.handedOver.has(entry.stanzaId)) return entry;
    let list = this.waiting.get(conversation);
    if (list === undefined) {
      list = [];
      this.waiting.set(conversation, list);
    }
    const waiting = list.find((e) => e.stanzaId === entry.stanzaId);
    if (waiting !== undefined) return waiting;
    list.push(entry);
    return entry;
  }

  /**
   * Whether `entry` still waits for its hand-over: in its conversation's list (every committed
   * event is, from its commit or replayPending until its pending row is deleted), or, for events
   * of no conversation, still pending in `inbox`.
   */
  private async stillPending(entry: PendingEntry): Promise<boolean> {
    const conversation = conversationOf(entry.event);
    if (conversation === undefined) {
      return (await this.options.inbox.pending(entry.stanzaId)) !== undefined;
    }
    return this.waiting.get(conversation)?.some((e) => e.stanzaId === entry.stanzaId) ?? false;
  }

  /** Drops an event handed over (its pending row deleted) from its conversation's list. */
  private forget(entry: PendingEntry): void {
    this.handedOver.add(entry.stanzaId);
    this.heldIds.delete(entry.stanzaId);
    if (this.handedOver.size > HANDED_OVER_REMEMBERED) {
      this.handedOver.delete(this.handedOver.values().next().value as string);
    }
    const conversation = conversationOf(entry.event);
    if (conversation === undefined) return;
    const list = this.waiting.get(conversation);
    if (list === undefined) return;
    const at = list.findIndex((e) => e.stanzaId === entry.stanzaId);
    if (at >= 0) list.splice(at, 1);
    if (list.length === 0) this.waiting.delete(conversation);
  }

  /**
   * Hands `entry` over after the older pending events of the same conversation (§15.6): one whose
   * hand-over failed (the homeserver was down, say) waits for its redelivery, and a newer message
   * arriving first must not overtake it. If an older one fails again, this one waits too (it stays
   * pending and unacked, so it is redelivered).
   */
  private async handOverInOrder(entry: PendingEntry): Promise<void> {
    const conversation = conversationOf(entry.event);
    if (conversation !== undefined) {
      let sawHeld = false;
      for (const older of inSeqOrder(this.waiting.get(conversation) ?? [])) {
        if (older.stanzaId === entry.stanzaId) break;
        await this.handOver(older);
        sawHeld ||= this.heldIds.has(older.stanzaId);
      }
      // Offering held messages again waits on nothing (no table, no network): without a turn of
      // the event loop here, a long chain of such links would keep every timer from running,
      // the hold timer that releases the gap and the ack timer included.
      if (sawHeld) await new Promise<void>((resolve) => setImmediate(resolve));
    }
    await this.handOver(entry);
  }

  /** One hand-over per stanza-id at a time; resolved only after the core took the event. */
  private handOver(entry: PendingEntry): Promise<void> {
    const running = this.handingOver.get(entry.stanzaId);
    if (running !== undefined) return running;
    const job = (async () => {
      if (this.stopped) return; // left pending and unacked, as a crash leaves it
      if (!(await this.stillPending(entry))) {
        // Handed over meanwhile: a redelivery read the row before that hand-over removed it and
        // queued it behind it on the conversation's chain. Acked, not posted a second time.
        this.ackEntry(entry);
        return;
      }
      if (this.heldForOrder(entry)) {
        // P15/E23: a later seq waits for the gap before it (bounded): it stays pending and in
        // its conversation's waiting list, and releaseHeld offers it again. Acked now, so that a
        // held one never occupies the gatekeeper's window of unacked deliveries.
        this.heldIds.add(entry.stanzaId);
        this.ackEntry(entry);
        this.log.debug({ stanzaId: entry.stanzaId }, "delivery held for the gap before it");
        return;
      }
      this.heldIds.delete(entry.stanzaId);
      const event = tryDecode(() =>
        // Taken at the first offer to the core: a retry, a replay or a redelivery is no first.
        eventOf(
          entry,
          this.options.session.limits["max-envelope-bytes"],
          this.firstHandOvers.delete(entry),
        ),
      );
      if (event.ok) {
        try {
          await this.options.emit(event.value);
        } catch (err) {
          if (!isDeferral(err)) throw err;
          // The core holds it for later (core/network.ts): it stays pending in inbox, sealed,
          // and is handed over again by replayPending. The gatekeeper's copy is acked so that a
          // held event never occupies its window of unacked deliveries.
          this.ackEntry(entry);
          this.log.info({ stanzaId: entry.stanzaId }, "delivery held by the core; kept for later");
          return;
        }
      } else this.log.error({ err: event.error.message }, "stored event unusable; dropped");
      const { knex, inbox, outbox } = this.options;
      // §15.7: once per message, after hand-over. The receipt's row is written first and its
      // origin-id is derived from the message, so the two statements need no transaction (#15:
      // BEGIN and COMMIT were two of a message's statements): a crash between them leaves the
      // event pending, its hand-over is repeated (the core knows it was posted) and the same row
      // is kept once by its unique key; the row committed before the crash is retransmitted after
      // the next hello. The stanza still leaves only once its row is committed.
      const complete = async (tx: Tx) => {
        const wanted = entry.receipt;
        let written: { id: number; row: NewOutboxRow } | undefined;
        if (wanted !== undefined) {
          const author = (wanted.author ?? wanted.to) as BareJid;
          const ref = { id: wanted.id as MessageId, author };
          const row = receiptRow(
            wanted.from,
            wanted.to as BareJid,
            [ref],
            wanted.author === undefined ? "chat" : "groupchat",
            originIdForReceipt(wanted.from, ref),
          );
          const id = await outbox.insertSentOnce(tx, row);
          if (id !== undefined) written = { id, row };
          else {
            // Written by an attempt that failed after it (or crashed): it may never have left;
            // sent again (the same bytes: the gatekeeper keeps one) unless it was answered.
            const earlier = await outbox.unresolvedOf(tx, row.senderJid, row.originId);
            if (earlier !== undefined) written = { id: earlier.id, row };
          }
        }
        await inbox.completePending(tx, entry.stanzaId);
        return written;
      };
      // Retried in place on a lost connection: failing, it would be handed over again.
      const receipt = await this.untilDone(() => SqlRunner.of(knex).connection(complete));
      this.forget(entry);
      if (receipt !== undefined) outbox.sendCommitted(receipt.id, receipt.row);
      this.ackEntry(entry);
    })().finally(() => this.handingOver.delete(entry.stanzaId));
    this.handingOver.set(entry.stanzaId, job);
    job.then(
      () => {
        this.retryDelayMs = HAND_OVER_RETRY_INITIAL_MS;
      },
      () => this.retryHandOverLater(),
    );
    return job;
  }

  /** Acks the delivery an entry came from; an entry of no delivery (isLocalEntry) has none. */
  private ackEntry(entry: PendingEntry): void {
    if (!isLocalEntry(entry)) this.options.acks.add(entry.by, entry.stanzaId);
  }

  /** Whether the reorder buffer holds this message back for a gap before its seq. */
  private heldForOrder(entry: PendingEntry): boolean {
    const { event } = entry;
    if (event.kind !== "message" || event.seq === undefined || this.options.reorder === undefined) {
      return false;
    }
    return (
      this.options.reorder.admit(
        conversationKey(event.local, event.group ?? event.from),
        event.seq,
      ) === "hold"
    );
  }

  /**
   * A hand-over failed (the core could not store or post the event: the homeserver is down, say).
   * The pending events are tried again with backoff, so that they show soon after the outage
   * rather than only at the gatekeeper's redelivery, `ack-timeout-seconds` later.
   */
  private retryHandOverLater(): void {
    if (this.retryTimer !== undefined || this.stopped) return;
    const delay = this.retryDelayMs;
    this.retryDelayMs = Math.min(delay * 2, HAND_OVER_RETRY_MAX_MS);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.stopped) return;
      void this.guard(this.run(ALONE, () => this.handOverAllPending()));
    }, delay);
    this.retryTimer.unref();
  }

  /**
   * Engine halt: no more retries of failed hand-overs, and retries of transient failures in
   * progress end; their stanzas stay unacked for redelivery.
   */
  stop(): void {
    this.stopped = true;
    for (const p of this.parked.values()) clearTimeout(p.timer);
    this.parked.clear();
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  /** A stanza the codec refuses: acked if it carries a usable stanza-id (§7.3, P13, P24). */
  private malformed(el: XmlElement, err: CodecError): Promise<void> {
    this.log.warn({ id: el.attrs.id, err: err.message }, "malformed stanza");
    const sidEl = optionalChild(el, "stanza-id", NS.sid);
    if (sidEl === undefined) return Promise.resolve();
    const sid = tryDecode(() => decodeStanzaIdElement(sidEl));
    if (!sid.ok || !this.options.session.isGatekeeperAddress(sid.value.by))
      return Promise.resolve();
    const stanzaId = sid.value;
    return this.guard(this.run(ALONE, () => this.recordOnly(stanzaId)));
  }

  private guard(work: Promise<void>): Promise<void> {
    return work.catch((err: unknown) => {
      this.log.error({ err: describeError(err) }, "inbound stanza not processed; left unacked");
    });
  }
}

/** How many handed-over stanza-ids the receiver remembers against a late redelivery. */
const HANDED_OVER_REMEMBERED = 10_000;

/** First and largest delay between attempts to hand failed events over again. */
const HAND_OVER_RETRY_INITIAL_MS = 500;
const HAND_OVER_RETRY_MAX_MS = 30_000;

/** The queue key of work that runs alone (KeyedQueue.runExclusive). */
const ALONE: unique symbol = Symbol("alone");

/**
 * The queue key of a delivery. Messages, receipts and read markers of one conversation (the local
 * user and the contact or group the stanza comes from, the key conversationOf gives their events)
 * are processed in order; those of different conversations at the same time, so that their
 * transactions commit together (issue #15). The Signal state they share is locked where it is
 * shared (a session or identity per contact, the one-time prekeys per device: crypto/). Anything
 * else runs alone, in its place among all deliveries, as every delivery did before: a
 * devices-changed notice drops sessions any conversation may be using, a retry request archives
 * and rebuilds a session a group's messages use too, a group event fetches the group's state;
 * they are rare.
 */
function deliveryKey(msg: Delivery): string | typeof ALONE {
  const local = msg.to?.bare;
  const from = msg.from?.bare;
  if (local === undefined || from === undefined) return ALONE;
  switch (msg.payload.kind) {
    case "encrypted":
    case "receipt":
    case "displayed":
      return `${local}\n${from}`;
    default:
      return ALONE;
  }
}

/** The (local user, contact) pair an event belongs to, for ordering; undefined for others. */
function conversationOf(event: StoredEvent): string | undefined {
  switch (event.kind) {
    case "message":
    case "delivered":
    case "displayed":
    case "undecryptable":
      // A group is one conversation, whoever of its members wrote (P15 per group).
      return `${event.local}\n${event.group ?? event.from}`;
    case "group-info":
    case "group-event":
      return `${event.local}\n${event.group}`;
    case "request-accepted":
    case "identity-changed":
      return `${event.local}\n${event.contact}`;
    default:
      return undefined;
  }
}

/**
 * A conversation's waiting events with its messages in seq order, each other event in its place:
 * messages are offered lowest seq first, so that the buffer admits them in turn.
 */
function inSeqOrder(entries: readonly PendingEntry[]): PendingEntry[] {
  const seqOf = (e: PendingEntry): number | null =>
    e.event.kind === "message" ? (e.event.seq ?? null) : null;
  const slots: number[] = [];
  entries.forEach((e, i) => {
    if (seqOf(e) !== null) slots.push(i);
  });
  const sorted = slots.map((i) => entries[i]!).sort((a, b) => seqOf(a)! - seqOf(b)!);
  const out = [...entries];
  slots.forEach((slot, i) => {
    out[slot] = sorted[i]!;
  });
  return out;
}

function isCryptoFailure(err: unknown): err is Error {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  return (
    typeof code === "string" &&
    [
      "no-session",
      "invalid-message",
      "legacy-message",
      "untrusted-identity",
      "invalid-bundle",
    ].includes(code)
  );
}

function deviceAddress(
  bare: BareJid | undefined,
  resource: string | undefined,
): DeviceAddress | undefined {
  if (bare === undefined || resource === undefined || !/^[1-9][0-9]{0,2}$/.test(resource)) {
    return undefined;
  }
  const device = Number(resource);
  return device <= 127 ? { jid: bare, device: device as DeviceId } : undefined;
}

const parkKey = (local: BareJid, group: BareJid, author: DeviceAddress): string =>
  `${local}\n${group}\n${author.jid}/${author.device}`;
