import type { Knex } from "knex";
import { SqlRunner } from "../../db/sql.js";
import { describeError, isTransientError } from "../../util/errors.js";
import type { BareJid, DeviceId, MessageId } from "../../util/ids.js";
import type { Logger } from "../../util/log.js";
import { CodecError, tryDecode } from "../codec/codec-error.js";
import { decodeStanzaIdElement, type StanzaIdElement } from "../codec/delivery.js";
import { keyFor, type Encrypted, type RetryReason, type RetryRequest } from "../codec/e2ee.js";
import { checkEnvelopeBinding, decodeEnvelope } from "../codec/envelope.js";
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
import type { AckBatcher, InboxStore, PendingEntry, PendingRecord } from "./inbox.js";
import type { Outbox } from "./outbox.js";
import { RetryAnswerer, retryRequestRow } from "./retries.js";
import { receiptRow } from "./sender.js";
import { SerialQueue } from "./serial.js";
import type { HelloSession } from "./session.js";
import { isDeferral } from "../../core/network.js";
import { pendingToEvent } from "./events.js";
import { applyNotification } from "./notifications.js";
import type { ProviderEventHandler } from "./types.js";

export interface ReceiverOptions {
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
  readonly now: () => number;
  readonly logger: Logger;
}

type Delivery = InboundMessage & { stanzaId: StanzaIdElement };

/** How long one delivery is retried in place on transient errors before it is left unacked. */
const TRANSIENT_RETRY_MS = 120_000;

/**
 * The receiving side (§12.4, §15.4, §15.5, P10, P13-P16, P26, P29). Only stanzas from gatekeeper
 * JIDs are honoured. Queued deliveries are processed one at a time: de-duplicated by stanza-id
 * and, for messages, per device by (sender, origin-id) before decryption; decrypted inside
 * crypto's transaction, which also records the de-duplication and the event for the core; then
 * handed over, and only after the hand-over resolved are the `<received>` queued and the
 * delivery acked. A crash anywhere before the ack means redelivery; an event committed but not
 * handed over is handed over again from `inbound_pending`.
 */
export class Receiver {
  private readonly queue = new SerialQueue();
  private readonly handingOver = new Map<string, Promise<void>>();
  /**
   * Committed events not yet handed over, per conversation, oldest first: what `inbound_pending`
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
            from: msg.from.bare,
            state: payload.state,
          }),
        );
      default: {
        const stanzaId = msg.stanzaId;
        if (stanzaId === undefined) {
          this.log.warn({ from, kind: payload.kind }, "delivery without stanza-id ignored");
          return Promise.resolve();
        }
        return this.guard(
          this.queue.run(() => this.untilDone(() => this.process({ ...msg, stanzaId }))),
        );
      }
    }
  }

  /** Hands over what a previous run committed but did not finish (after a crash). */
  replayPending(): Promise<void> {
    return this.guard(
      this.queue.run(async () => {
        await this.untilDone(async () => {
          const entries = await this.options.inbox.allPending();
          for (const entry of entries) this.remember(entry);
          for (const entry of entries) await this.handOver(entry);
        });
      }),
    );
  }

  /** Resolves once every delivery queued so far is processed and its hand-over settled. */
  async idle(): Promise<void> {
    await this.queue.idle();
    while (this.chains.size > 0) await Promise.all(this.chains.values());
  }

  /**
   * Runs `work` again while it fails with a transient error (the database connection lost or
   * busy), with backoff, for at most TRANSIENT_RETRY_MS. Deliveries are processed one at a time,
   * so retrying in place holds the later ones back: failing instead would let them be handed over
   * first and the failed one only after its redelivery, out of order (§15.6). A stanza that still
   * fails is left unacked, as any other failure.
   */
  private async untilDone(work: () => Promise<void>): Promise<void> {
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
        delay = Math.min(delay * 2, 5000);
      }
    }
  }

  private async process(msg: Delivery): Promise<void> {
    const { inbox } = this.options;
    const sid = msg.stanzaId;
    if (!this.options.session.isGatekeeperAddress(sid.by) || sid.by.includes("@")) {
      this.log.warn({ by: sid.by }, "stanza-id of a non-gatekeeper domain ignored");
      return;
    }
    if (await inbox.seen(sid.id)) {
      const pending = await inbox.pending(sid.id);
      if (pending !== undefined) this.chainHandOver(pending);
      else this.options.acks.add(sid.by, sid.id);
      return;
    }
    const { payload } = msg;
    const local = msg.to?.bare;
    const from = msg.from?.bare;
    if (local === undefined || from === undefined) return this.recordOnly(sid);
    switch (payload.kind) {
      case "encrypted":
        return this.processEncrypted(msg, payload.encrypted, local, from);
      case "receipt":
        this.deliverReceipt(sid, { kind: "delivered", local, from, refs: payload.receipts });
        return;
      case "displayed":
        return this.commit(sid, { kind: "displayed", local, from, ref: payload.marker });
      case "retry":
        return this.processRetry(msg, payload.retry, local);
      case "notification": {
        const record = await applyNotification(this.options, payload.notification, local, this.log);
        return record === undefined ? this.recordOnly(sid) : this.commit(sid, record);
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
    if (await inbox.decrypted(local, ownDevice, from, originId)) return this.recordOnly(sid);
    const device = await crypto.device(local, ownDevice);
    const sender: DeviceAddress = { jid: from, device: encrypted.sid };
    const cached = await crypto.deviceLists.get(from);
    const unknownSender = cached === null || !cached.devices.some((d) => d.id === encrypted.sid);
    const key = keyFor(encrypted, local, ownDevice);
    const stamp = msg.meta?.stamp;
    try {
      if (key === undefined) {
        await this.requestRetry(device, sender, originId, "no-key", sid, stamp);
        return;
      }
      const entry = await device.sessions.decrypt(
        { senderJid: from, senderDevice: encrypted.sid, kex: key.kex, ciphertext: key.ciphertext },
        async (plaintext, trx) => {
          const at = now();
          await inbox.recordDecrypted(
            trx,
            { local, device: ownDevice, sender: from, originId },
            at,
          );
          await inbox.record(trx, sid.id, sid.by, at);
          try {
            const envelope = decodeEnvelope(plaintext, {
              maxEnvelopeBytes: session.limits["max-envelope-bytes"],
            });
            checkEnvelopeBinding(envelope, { from, to: local, originId });
          } catch (err) {
            if (!(err instanceof CodecError)) throw err;
            // §12.2: discarded, no receipt; the ratchet step and the de-dup record are kept.
            this.log.warn({ from, originId, err: err.message }, "envelope discarded");
            return undefined;
          }
          const pending: PendingEntry = {
            stanzaId: sid.id,
            by: sid.by,
            record: {
              kind: "message",
              local,
              from,
              device: encrypted.sid,
              originId,
              stanzaId: sid.id,
              seq: msg.meta?.seq ?? null,
              stamp: stamp?.toISOString() ?? null,
              envelopeXml: Buffer.from(plaintext).toString("utf8"),
            },
            receipt: { from: deviceJid(local, ownDevice), to: from, id: originId },
          };
          await inbox.addPending(trx, pending, at);
          return pending;
        },
      );
      if (entry === undefined) this.options.acks.add(sid.by, sid.id);
      else this.chainHandOver(entry);
    } catch (err) {
      if (err instanceof DuplicateMessageError) {
        await this.recordOnly(sid);
      } else if (isCryptoFailure(err)) {
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

  /** §12.5: at most 2 retry requests per (message, device), then "could not be decrypted". */
  private async requestRetry(
    device: DeviceCrypto,
    sender: DeviceAddress,
    originId: MessageId,
    reason: RetryReason,
    sid: StanzaIdElement,
    stamp: Date | undefined,
  ): Promise<void> {
    const count = await device.retries.nextRequestCount(sender, originId);
    if (count === null) {
      await this.commit(sid, {
        kind: "undecryptable",
        local: device.jid,
        from: sender.jid,
        originId,
        stamp: stamp?.toISOString() ?? null,
      });
      return;
    }
    const row = retryRequestRow(
      { jid: device.jid, device: device.deviceId, registration: device.registrationId },
      sender,
      { id: originId, count, reason },
    );
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

  private async recordOnly(sid: StanzaIdElement): Promise<void> {
    await SqlRunner.of(this.options.knex).connection((tx) =>
      this.options.inbox.record(tx, sid.id, sid.by, this.options.now()),
    );
    this.options.acks.add(sid.by, sid.id);
  }

  /** Records the stanza-id and the event in one transaction, then hands the event over. */
  private async commit(sid: StanzaIdElement, record: PendingRecord): Promise<void> {
    const entry: PendingEntry = { stanzaId: sid.id, by: sid.by, record, receipt: undefined };
    await SqlRunner.of(this.options.knex).transaction(async (tx) => {
      await this.options.inbox.record(tx, sid.id, sid.by, this.options.now());
      await this.options.inbox.addPending(tx, entry, this.options.now());
    });
    this.chainHandOver(entry);
  }

  /**
   * Queues the hand-over of a committed event behind the earlier ones of its conversation and
   * returns at once: the next delivery is decrypted while this one is posted to Matrix. A failed
   * hand-over is retried by retryHandOverLater (the event stays pending and unacked).
   */
  private chainHandOver(entry: PendingEntry): void {
    this.remember(entry);
    this.chain(conversationOf(entry.record) ?? `stanza\n${entry.stanzaId}`, entry.stanzaId, () =>
      this.handOverInOrder(entry),
    );
  }

  /**
   * A `<received>` (§15.7): nothing to decrypt and nothing lost if it is handed over twice, so it
   * is handed over first (behind the earlier events of its conversation) and only then recorded
   * in `inbox` and acked: no sealed `inbound_pending` row and no transaction of its own (issue
   * #15). A crash before the record means a redelivery and a second, harmless hand-over; a failed
   * hand-over leaves it unacked for the gatekeeper's redelivery. Held by the core (a deferral), it
   * is stored as pending like any other event.
   */
  private deliverReceipt(
    sid: StanzaIdElement,
    record: Extract<PendingRecord, { kind: "delivered" }>,
  ): void {
    const key = conversationOf(record) ?? `stanza\n${sid.id}`;
    this.chain(key, sid.id, async () => {
      for (const older of [...(this.waiting.get(key) ?? [])]) await this.handOver(older);
      const event = tryDecode(() =>
        pendingToEvent(record, this.options.session.limits["max-envelope-bytes"]),
      );
      if (event.ok) {
        try {
          await this.options.emit(event.value);
        } catch (err) {
          if (!isDeferral(err)) throw err;
          await this.commit(sid, record);
          return;
        }
      } else this.log.warn({ err: event.error.message }, "receipt unusable; dropped");
      await this.recordOnly(sid);
    });
  }

  /** Runs `job` after the earlier jobs of conversation `key`; a failure is logged and left unacked. */
  private chain(key: string, stanzaId: string, job: () => Promise<void>): void {
    const previous = this.chains.get(key) ?? Promise.resolve();
    const next = previous
      .then(job)
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

  /** Adds a committed event to its conversation's waiting list (once). */
  private remember(entry: PendingEntry): void {
    const conversation = conversationOf(entry.record);
    if (conversation === undefined || this.handedOver.has(entry.stanzaId)) return;
    let list = this.waiting.get(conversation);
    if (list === undefined) {
      list = [];
      this.waiting.set(conversation, list);
    }
    if (!list.some((e) => e.stanzaId === entry.stanzaId)) list.push(entry);
  }

  /**
   * Whether `entry` still waits for its hand-over: in its conversation's list (every committed
   * event is, from its commit or replayPending until its pending row is deleted), or, for events
   * of no conversation, still in `inbound_pending`.
   */
  private async stillPending(entry: PendingEntry): Promise<boolean> {
    const conversation = conversationOf(entry.record);
    if (conversation === undefined) {
      return (await this.options.inbox.pending(entry.stanzaId)) !== undefined;
    }
    return this.waiting.get(conversation)?.some((e) => e.stanzaId === entry.stanzaId) ?? false;
  }

  /** Drops an event handed over (its pending row deleted) from its conversation's list. */
  private forget(entry: PendingEntry): void {
    this.handedOver.add(entry.stanzaId);
    if (this.handedOver.size > HANDED_OVER_REMEMBERED) {
      this.handedOver.delete(this.handedOver.values().next().value as string);
    }
    const conversation = conversationOf(entry.record);
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
    const conversation = conversationOf(entry.record);
    if (conversation !== undefined) {
      for (const older of [...(this.waiting.get(conversation) ?? [])]) {
        if (older.stanzaId === entry.stanzaId) break;
        await this.handOver(older);
      }
    }
    await this.handOver(entry);
  }

  /** One hand-over per stanza-id at a time; resolved only after the core took the event. */
  private handOver(entry: PendingEntry): Promise<void> {
    const running = this.handingOver.get(entry.stanzaId);
    if (running !== undefined) return running;
    const job = (async () => {
      if (!(await this.stillPending(entry))) {
        // Handed over meanwhile: a redelivery read the row before that hand-over removed it and
        // queued it behind it on the conversation's chain. Acked, not posted a second time.
        this.options.acks.add(entry.by, entry.stanzaId);
        return;
      }
      const event = tryDecode(() =>
        pendingToEvent(entry.record, this.options.session.limits["max-envelope-bytes"]),
      );
      if (event.ok) {
        try {
          await this.options.emit(event.value);
        } catch (err) {
          if (!isDeferral(err)) throw err;
          // The core holds it for later (core/network.ts): it stays in inbound_pending, sealed,
          // and is handed over again by replayPending. The gatekeeper's copy is acked so that a
          // held event never occupies its window of unacked deliveries.
          this.options.acks.add(entry.by, entry.stanzaId);
          this.log.info({ stanzaId: entry.stanzaId }, "delivery held by the core; kept for later");
          return;
        }
      } else this.log.error({ err: event.error.message }, "stored event unusable; dropped");
      const { knex, inbox, outbox } = this.options;
      const receipt = await SqlRunner.of(knex).transaction(async (tx) => {
        const removed = await inbox.completePending(tx, entry.stanzaId);
        const wanted = entry.receipt;
        if (!removed || wanted === undefined) return undefined;
        // §15.7: once per message, after hand-over, in the commit that ends the hand-over.
        const ref = { id: wanted.id as MessageId, author: wanted.to as BareJid };
        const row = receiptRow(wanted.from, wanted.to as BareJid, [ref]);
        return { id: await outbox.insertSent(tx, row), row };
      });
      this.forget(entry);
      if (receipt !== undefined) outbox.sendCommitted(receipt.id, receipt.row);
      this.options.acks.add(entry.by, entry.stanzaId);
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
      void this.guard(
        this.queue.run(async () => {
          const entries = await this.options.inbox.allPending();
          for (const entry of entries) this.remember(entry);
          for (const entry of entries) await this.handOver(entry);
        }),
      );
    }, delay);
    this.retryTimer.unref();
  }

  /**
   * Engine halt: no more retries of failed hand-overs, and retries of transient failures in
   * progress end; their stanzas stay unacked for redelivery.
   */
  stop(): void {
    this.stopped = true;
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
    return this.guard(this.queue.run(() => this.recordOnly(stanzaId)));
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

/** The (local user, contact) pair an event belongs to, for ordering; undefined for others. */
function conversationOf(record: PendingRecord): string | undefined {
  switch (record.kind) {
    case "message":
    case "delivered":
    case "displayed":
    case "undecryptable":
      return `${record.local}\n${record.from}`;
    case "request-accepted":
      return `${record.local}\n${record.contact}`;
    default:
      return undefined;
  }
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
