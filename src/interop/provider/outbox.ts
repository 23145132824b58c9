import type { Knex } from "knex";
import { SqlRunner, type Tx } from "../../db/sql.js";
import { describeError } from "../../util/errors.js";
import type { BareJid } from "../../util/ids.js";
import type { Logger } from "../../util/log.js";
import type { Accepted } from "../codec/delivery.js";
import { classifyBounce, type AppCondition, type StanzaError } from "../codec/errors.js";
import { bareOf } from "../codec/jid.js";
import { parseXml, SerializedStanza, type XmlElement } from "../codec/xml.js";
import { TransportError } from "../transport/errors.js";
import * as tables from "../store/index.js";
import {
  acceptanceKey,
  type AnsweredRow,
  type NewOutboxRow,
  type OutboxRow,
} from "../store/outbox.js";
import { SerialQueue } from "./serial.js";
import type { HelloSession } from "./session.js";
import type { EngineTiming, ProviderEvent, SendFailureCode } from "./types.js";

export type StaleDeviceList = Extract<AppCondition, { name: "stale-device-list" }>;

interface OutboxHooks {
  /** Re-encrypts for added devices only and replaces the row's stanza (§12.3). */
  onStaleDeviceList(row: OutboxRow, stale: StaleDeviceList): Promise<void>;
  /** Re-publishes the sending device (§18 `unknown-device`: "Publish device, resend"). */
  onUnknownDevice(row: OutboxRow): Promise<void>;
}

interface OutboxOptions {
  readonly knex: Knex;
  readonly session: HelloSession;
  readonly timing: EngineTiming;
  readonly now: () => number;
  readonly logger: Logger;
  readonly emit: (event: ProviderEvent) => Promise<void>;
}

interface Acceptance {
  readonly senderJid: string;
  readonly accepted: Accepted;
  resolve(): void;
  reject(err: unknown): void;
}

/** A stale-device-list loop (a list changing on every answer) ends after this many rounds. */
const MAX_STALE_ROUNDS = 5;
/** Non-message stanzas awaiting their answer that acceptBatch knows by key (sentNonMessages). */
const SENT_NON_MESSAGES_REMEMBERED = 10_000;
const SCAN_LIMIT = 2000;

/**
 * The text that is stored and retransmitted: ltx's serialisation of the stanza. Every
 * transmission writes these bytes unchanged (`stanzaToSend`), so the same bytes go out on every
 * retransmission (§15.3). (Before issue #15 each transmission parsed and serialised the text again,
 * and the text was made a fixed point of that by one more parse and serialisation here.)
 */
export function exactStanza(stanza: XmlElement): string {
  return stanza.toString();
}

/** The stored text of an outbox row as the stanza to transmit, unparsed when it can be. */
function stanzaToSend(row: { stanza: string; toJid: string }): XmlElement {
  return SerializedStanza.of(row.stanza, row.toJid) ?? parseXml(row.stanza);
}

/**
 * The provider outbox (§15.3, P12): every stanza with an origin-id is stored with its exact bytes
 * before it is sent, retransmitted unchanged after each hello and after 60 s without outcome
 * (doubling to 600 s), held on `wait` bounces, re-encrypted on `stale-device-list`, and given up
 * with a failure event on a final bounce or at the deadline. Messages of one conversation go out
 * in creation order, and a held message holds the later ones back.
 */
export class Outbox {
  private readonly queue = new SerialQueue();
  private readonly log: Logger;
  private hooks: OutboxHooks | undefined;
  private kickScheduled = false;
  private readonly staleRounds = new Map<number, number>();
  /** The hello whose retransmission round (§15.3) was prepared; see `prepareForHello`. */
  private preparedFor: unknown;
  /**
   * Whether rows may be due that no pass has sent yet (a kick, a hello, a release, a tick since
   * the last complete pass). While so, a new stanza is not sent directly: it could overtake them.
   */
  private dueMayExist = true;
  /** `<accepted>` answers waiting for the next batch (see onAccepted). */
  private readonly acceptances: Acceptance[] = [];
  /** Conversations whose oldest unresolved message is held (as of the last pass, plus holds since). */
  private blocked = new Set<string>();
  /**
   * Rows `sendCommitted` had to make due and could not (the database connection was lost): they
   * are stored as sent with a retransmission a minute away, so the next pass makes them due
   * before it scans. Until then nothing is sent directly, or later rows would overtake them.
   */
  private readonly notYetDue = new Set<number>();
  /**
   * `acceptanceKey`s of the non-message stanzas this process sent (receipts above all), until
   * their answer: a hint that lets acceptBatch resolve them in one statement. Bounded; a key
   * forgotten or from an earlier process takes the general path (a read, then an update).
   */
  private readonly sentNonMessages = new Set<string>();

  constructor(private readonly options: OutboxOptions) {
    this.log = options.logger.child({ component: "outbox" });
  }

  setHooks(hooks: OutboxHooks): void {
    this.hooks = hooks;
  }

  /** Stores a stanza; call inside the transaction that advanced the sessions it was made with. */
  insert(tx: Tx, row: NewOutboxRow): Promise<number> {
    return tables.outbox.insert(tx, row, this.options.now());
  }

  /**
   * Stores a stanza as sent, with its retransmission deadline (§15.3), in the caller's
   * transaction; after the commit the caller hands it to `sendCommitted`. No pass over the table
   * is needed to find it, and no second write marks it sent.
   */
  insertSent(tx: Tx, row: NewOutboxRow): Promise<number> {
    const now = this.options.now();
    return tables.outbox.insert(tx, row, now, now + retransmitDelay(this.options.timing, 0));
  }

  /** `insertSent` unless its (sender, origin-id, resend key) is taken (then undefined). */
  insertSentOnce(tx: Tx, row: NewOutboxRow): Promise<number | undefined> {
    const now = this.options.now();
    return tables.outbox.insertOnce(tx, row, now, now + retransmitDelay(this.options.timing, 0));
  }

  /**
   * The unresolved row written for (sender, origin-id), if any: one `insertSentOnce` found taken,
   * written by an attempt that may have failed before its transmission.
   */
  async unresolvedOf(tx: Tx, senderJid: string, originId: string): Promise<OutboxRow | undefined> {
    return (await tables.outbox.byOrigin(tx, senderJid, originId)).find(isUnresolved);
  }

  /** `insertSent` unless a row for (sender, origin-id) exists (SQLite only: then undefined). */
  insertSentIfAbsent(tx: Tx, row: NewOutboxRow): Promise<number | undefined> {
    const now = this.options.now();
    return tables.outbox.insertIfAbsent(
      tx,
      row,
      now,
      now + retransmitDelay(this.options.timing, 0),
    );
  }

  /**
   * Transmits a row `insertSent` committed. Sent at once when nothing may have to go before it
   * (the retransmission round of a new hello, due rows of a pass not yet run, a held message of
   * the same conversation); otherwise made due for the next pass. A transmission the transport
   * refuses leaves the row sent with its deadline: the next hello retransmits it.
   */
  sendCommitted(id: number, row: NewOutboxRow): void {
    if (row.kind !== "message") this.rememberNonMessage(acceptanceKey(row.senderJid, row.originId));
    void this.queue
      .run(async () => {
        const { session, knex, now } = this.options;
        const conversation = `${bareOf(row.senderJid)} ${row.conversationJid}`;
        const direct =
          session.ready &&
          session.info === this.preparedFor &&
          !this.dueMayExist &&
          !(row.kind === "message" && this.blocked.has(conversation));
        if (!direct) {
          try {
            await tables.outbox.makeDue(knex, id, now());
          } catch (err) {
            // Left to the next pass, which makes it due before its scan.
            this.notYetDue.add(id);
            throw err;
          } finally {
            this.kick();
          }
          return;
        }
        try {
          await session.send(stanzaToSend(row));
        } catch (err) {
          if (err instanceof TransportError && err.code === "stanza-too-large") {
            const stored = await tables.outbox.get(knex, id);
            if (stored !== undefined) await this.fail(stored, "too-large", describeError(err));
            return;
          }
          this.log.debug({ err: describeError(err), originId: row.originId }, "sent on next hello");
        }
      })
      .catch((err: unknown) => {
        this.log.error({ err: describeError(err) }, "outbox transmission failed");
      });
  }

  /** Schedules a pass over the due rows soon. */
  kick(): void {
    this.dueMayExist = true;
    if (this.kickScheduled) return;
    this.kickScheduled = true;
    setImmediate(() => {
      this.kickScheduled = false;
      void this.flush();
    });
  }

  /** After a successful hello: retransmit everything not held by a `wait` bounce (§15.3). */
  async afterHello(): Promise<void> {
    this.dueMayExist = true;
    await this.queue.run(() => this.prepareForHello());
    await this.flush();
  }

  /** Retransmits at once everything not held by a `wait` bounce (after a re-publish). */
  async retransmitAll(): Promise<void> {
    this.dueMayExist = true;
    await this.queue.run(() => tables.outbox.dueAfterHello(this.options.knex, this.options.now()));
    await this.flush();
  }

  /**
   * Marks every unresolved stanza due, once per successful hello, before the first pass after it
   * transmits anything. Done by whichever pass comes first: a pass started by a new message can
   * run before the engine's after-hello work, and it would otherwise send the new message ahead
   * of earlier ones that were lost with the previous connection and wait for their
   * retransmission, so that the gatekeeper accepts them out of order.
   */
  private async prepareForHello(): Promise<void> {
    const hello = this.options.session.info;
    if (hello === undefined || hello === this.preparedFor) return;
    await tables.outbox.dueAfterHello(this.options.knex, this.options.now());
    this.preparedFor = hello;
  }

  /** `<request-accepted>` (§10.3): retransmit at once what `request-pending` held. */
  async release(local: BareJid, contact: BareJid): Promise<void> {
    await this.queue.run(() => {
      this.dueMayExist = true;
      return tables.outbox.release(this.options.knex, local, contact, this.options.now());
    });
    this.kick();
  }

  /** The periodic pass: deadlines, then due retransmissions. */
  /** Never rejects (it runs from a timer): a failed pass is logged and the next tick retries. */
  async tick(): Promise<void> {
    // Not `dueMayExist`: a retransmission that fell due by time was sent once already, and a
    // new message sent meanwhile went ahead of it with any design (§15.3 retransmits after 60 s).
    await this.queue
      .run(() => this.expire())
      .catch((err: unknown) => {
        this.log.error({ err: describeError(err) }, "outbox expiry pass failed");
      });
    await this.flush();
  }

  flush(): Promise<void> {
    return this.queue
      .run(() => this.transmitDue())
      .catch((err: unknown) => {
        this.log.error({ err: describeError(err) }, "outbox pass failed");
      });
  }

  /** Resolves when the jobs queued so far are done (tests, shutdown). */
  idle(): Promise<void> {
    return this.queue.idle();
  }

  /**
   * A `<accepted>` answer (§15.4). Answers arriving together are handled as one batch on the
   * outbox queue: one read finds their rows, the core hears of each accepted message, and one
   * transaction resolves the rows (those that are not messages at once, messages once the core
   * took them). A row left unresolved is retransmitted, and the answer comes again.
   */
  onAccepted(senderJid: string, accepted: Accepted): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.acceptances.push({ senderJid, accepted, resolve, reject });
      if (this.acceptances.length === 1) {
        void this.queue.run(() => this.acceptBatch()).catch(() => undefined);
      }
    });
  }

  private async acceptBatch(): Promise<void> {
    const batch = this.acceptances.splice(0);
    const sql = SqlRunner.of(this.options.knex);
    let rows: (AnsweredRow | undefined)[];
    try {
      // A repeated answer in the same batch (§15.4) finds nothing, as it would after the first.
      const first = new Map<string, Acceptance>();
      for (const a of batch) {
        const key = acceptanceKey(a.senderJid, a.accepted.originId);
        if (!first.has(key)) first.set(key, a);
      }
      // Answers to what this process sent as a receipt or another non-message stanza resolve
      // their rows in one statement; the rest (messages, whose acceptance the core must take
      // first, and rows sent by an earlier process) are read, then resolved below.
      const hinted = [...first].filter(([key]) => this.sentNonMessages.has(key));
      const direct =
        hinted.length === 0
          ? new Set<string>()
          : await sql.connection((tx) =>
              tables.outbox.resolveAcceptedNonMessages(
                tx,
                hinted.map(([, a]) => ({
                  senderJid: a.senderJid,
                  originId: a.accepted.originId,
                  stanzaId: a.accepted.stanzaId,
                  seq: a.accepted.seq,
                  stamp: a.accepted.stamp.getTime(),
                })),
              ),
            );
      for (const [key] of hinted) this.sentNonMessages.delete(key);
      const rest = [...first].filter(([key]) => !direct.has(key));
      const found =
        rest.length === 0
          ? new Map<string, AnsweredRow>()
          : await sql.connection((tx) =>
              tables.outbox.firstUnresolvedMany(
                tx,
                rest.map(([, a]) => ({ senderJid: a.senderJid, originId: a.accepted.originId })),
              ),
            );
      rows = batch.map((a) => {
        const key = acceptanceKey(a.senderJid, a.accepted.originId);
        return first.get(key) === a && !direct.has(key) ? found.get(key) : undefined;
      });
    } catch (err) {
      for (const a of batch) a.reject(err);
      return;
    }
    const resolved: [AnsweredRow, Acceptance][] = [];
    const failed = new Map<Acceptance, unknown>();
    for (const [i, a] of batch.entries()) {
      const row = rows[i];
      if (row === undefined) continue;
      if (row.kind !== "message") {
        resolved.push([row, a]);
        continue;
      }
      try {
        await this.options.emit({
          kind: "accepted",
          local: bareOf(row.senderJid),
          to: row.conversationJid,
          originId: row.originId,
          stanzaId: a.accepted.stanzaId,
          seq: a.accepted.seq,
          stamp: a.accepted.stamp,
          eventId: row.eventId ?? undefined,
        });
        resolved.push([row, a]);
      } catch (err) {
        // Left unresolved: the retransmission brings the answer again.
        failed.set(a, err);
      }
    }
    if (resolved.length > 0) {
      try {
        await sql.connection((tx) =>
          tables.outbox.resolveAccepted(
            tx,
            resolved.map(([row, a]) => ({
              id: row.id,
              stanzaId: a.accepted.stanzaId,
              seq: a.accepted.seq,
              stamp: a.accepted.stamp.getTime(),
            })),
          ),
        );
      } catch (err) {
        for (const [, a] of resolved) failed.set(a, err);
      }
    }
    let unblock = false;
    for (const row of rows) {
      if (row === undefined) continue;
      this.staleRounds.delete(row.id);
      // A held message of this conversation may have been the one accepted: the next pass
      // finds out whether it is still blocked.
      if (row.kind === "message" && this.blocked.has(conversationOf(row))) unblock = true;
    }
    if (unblock) this.kick();
    for (const a of batch) {
      const err = failed.get(a);
      if (err === undefined) a.resolve();
      else a.reject(err);
    }
  }

  private rememberNonMessage(key: string): void {
    this.sentNonMessages.add(key);
    if (this.sentNonMessages.size > SENT_NON_MESSAGES_REMEMBERED) {
      this.sentNonMessages.delete(this.sentNonMessages.values().next().value as string);
    }
  }

  /** A bounce of one of our stanzas: `from` is the original `to`, `senderJid` our sending JID. */
  onBounce(from: string, senderJid: string, id: string, error: StanzaError): Promise<void> {
    return this.queue.run(async () => {
      const rows = (await tables.outbox.byOrigin(this.options.knex, senderJid, id)).filter(
        isUnresolved,
      );
      const row =
        rows.find((r) => r.toJid === from) ??
        rows.find((r) => bareOf(r.toJid) === bareOf(from)) ??
        rows[0];
      if (row === undefined) {
        // An ack, a typing notification or an answered stanza bounced: no row to update, but a
        // peer-offline bounce still tells that the gatekeeper is gone (§8.2).
        if (classifyBounce(error, from, from).kind === "peer-offline") {
          this.options.session.peerOffline(`a stanza to ${from} bounced: gatekeeper offline`);
        }
        this.log.debug({ id, from }, "bounce for no unresolved stanza");
        return;
      }
      await this.handleBounce(row, from, error);
    });
  }

  private async handleBounce(row: OutboxRow, from: string, error: StanzaError): Promise<void> {
    const { knex, now, session, timing } = this.options;
    const log = this.log.child({ originId: row.originId, kind: row.kind });
    if (error.app?.name === "stale-device-list" && row.kind === "message") {
      const rounds = (this.staleRounds.get(row.id) ?? 0) + 1;
      this.staleRounds.set(row.id, rounds);
      if (rounds > MAX_STALE_ROUNDS) {
        await this.fail(row, "internal", "the device list kept changing");
        return;
      }
      try {
        await this.requireHooks().onStaleDeviceList(row, error.app);
        log.info({ devices: error.app.devices }, "re-encrypted for a changed device list");
      } catch (err) {
        log.warn({ err: describeError(err) }, "re-encryption after stale-device-list failed");
        await tables.outbox.hold(
          knex,
          row.id,
          "wait",
          now() + timing.retransmitInitialMs,
          describeError(err),
        );
        this.blocked.add(conversationOf(row));
      }
      this.kick();
      return;
    }
    if (error.app?.name === "unknown-device") {
      await tables.outbox.hold(
        knex,
        row.id,
        "unknown-device",
        now() + timing.retransmitInitialMs,
        "unknown-device",
      );
      if (row.kind === "message") this.blocked.add(conversationOf(row));
      void this.requireHooks()
        .onUnknownDevice(row)
        .catch((err: unknown) => log.warn({ err: describeError(err) }, "re-publish failed"));
      return;
    }
    const outcome = classifyBounce(error, from, row.toJid);
    switch (outcome.kind) {
      case "peer-offline":
        session.peerOffline(`${row.kind} ${row.originId} bounced: gatekeeper offline`);
        return;
      case "hello-required":
        session.requestHello(`${row.kind} ${row.originId} bounced with hello-required`);
        return;
      case "wait": {
        const hold = outcome.onRequestAccepted
          ? "request-pending"
          : outcome.retryAfterSeconds !== undefined
            ? "rate-limited"
            : "wait";
        const next =
          hold === "request-pending"
            ? now() + timing.outboxDeadlineMs
            : now() +
              (outcome.retryAfterSeconds === undefined
                ? retransmitDelay(timing, row.attempts)
                : outcome.retryAfterSeconds * 1000);
        log.info(
          { hold, retryAt: new Date(next).toISOString() },
          "stanza held after a wait bounce",
        );
        await tables.outbox.hold(knex, row.id, hold, next, describeStanzaError(error));
        if (row.kind === "message") this.blocked.add(conversationOf(row));
        // The user is told once that the message waits, so that a silent delay of up to a
        // minute does not look like a loss (and invite a duplicate by hand).
        if (hold === "rate-limited" && row.kind === "message" && row.hold !== "rate-limited") {
          await this.options.emit({
            kind: "send-delayed",
            local: bareOf(row.senderJid),
            to: row.conversationJid,
            originId: row.originId,
            reason: "rate-limited",
            retryAt: new Date(next),
            eventId: row.eventId ?? undefined,
          });
        }
        return;
      }
      case "final":
        await this.fail(row, failureCode(error), describeStanzaError(error));
    }
  }

  private async expire(): Promise<void> {
    const { knex, now, timing, session } = this.options;
    // §15.3: never later than dedup-window − 1 h after the first send, whatever is configured,
    // so that no retransmission outlives the gatekeeper's de-duplication record.
    const window = (session.limits["dedup-window-seconds"] - 3600) * 1000;
    const deadline = Math.max(0, Math.min(timing.outboxDeadlineMs, window));
    for (const row of await tables.outbox.expired(knex, now() - deadline)) {
      const reason: SendFailureCode =
        row.hold === "request-pending"
          ? "request-pending"
          : row.hold === "rate-limited"
            ? "rate-limited"
            : "timed-out";
      try {
        await this.fail(row, reason, "no outcome before the outbox deadline");
      } catch (err) {
        this.log.warn({ err: describeError(err), originId: row.originId }, "expiry not reported");
      }
    }
  }

  private async transmitDue(): Promise<void> {
    if (!this.options.session.ready) return;
    this.dueMayExist = false;
    try {
      await this.transmitDueRows();
    } catch (err) {
      // A pass that failed (the database connection lost) may have left due rows unsent: a new
      // stanza sent directly now would overtake them.
      this.dueMayExist = true;
      throw err;
    }
  }

  private async transmitDueRows(): Promise<void> {
    const { knex, now } = this.options;
    await this.prepareForHello();
    for (const id of [...this.notYetDue]) {
      await tables.outbox.makeDue(knex, id, now());
      this.notYetDue.delete(id);
    }
    const rows = await tables.outbox.unresolved(knex, SCAN_LIMIT);
    const blocked = new Set<string>();
    for (const row of rows) {
      const conversation = conversationOf(row);
      const ordered = row.kind === "message";
      if (ordered && blocked.has(conversation)) continue;
      if (row.nextAttemptAt > now()) {
        if (ordered && row.hold !== null) blocked.add(conversation);
        continue;
      }
      if (!(await this.transmit(row))) {
        this.dueMayExist = true;
        return;
      }
    }
    // A scan cut at SCAN_LIMIT has not seen every row: it cannot vouch for the others.
    if (rows.length >= SCAN_LIMIT) this.dueMayExist = true;
    this.blocked = blocked;
  }

  /** False when the transport or the hello state stopped the pass. */
  private async transmit(row: OutboxRow): Promise<boolean> {
    const { knex, now, session, timing } = this.options;
    try {
      await session.send(stanzaToSend(row));
    } catch (err) {
      if (err instanceof TransportError && err.code === "stanza-too-large") {
        await this.fail(row, "too-large", describeError(err));
        return true;
      }
      this.log.debug({ err: describeError(err), originId: row.originId }, "transmission deferred");
      return false;
    }
    const sentAt = now();
    await tables.outbox.markTransmitted(
      knex,
      row.id,
      sentAt,
      sentAt + retransmitDelay(timing, row.attempts),
    );
    return true;
  }

  private async fail(row: OutboxRow, reason: SendFailureCode, message: string): Promise<void> {
    this.log.warn({ originId: row.originId, kind: row.kind, reason, message }, "stanza failed");
    if (row.kind === "message") {
      await this.options.emit({
        kind: "send-failed",
        local: bareOf(row.senderJid),
        to: row.conversationJid,
        originId: row.originId,
        reason,
        message,
        eventId: row.eventId ?? undefined,
      });
    }
    await tables.outbox.markFailed(this.options.knex, row.id, `${reason}: ${message}`);
    this.staleRounds.delete(row.id);
  }

  private requireHooks(): OutboxHooks {
    if (this.hooks === undefined) throw new Error("outbox hooks not set");
    return this.hooks;
  }
}

const isUnresolved = (row: OutboxRow): boolean => row.state === "pending" || row.state === "sent";

/** The key that orders messages: sending user and peer. */
const conversationOf = (row: Pick<OutboxRow, "senderJid" | "conversationJid">): string =>
  `${bareOf(row.senderJid)} ${row.conversationJid}`;

/** 60 s after the first transmission, doubling to 600 s (§15.3). */
function retransmitDelay(timing: EngineTiming, previousAttempts: number): number {
  return Math.min(
    timing.retransmitMaxMs,
    timing.retransmitInitialMs * 2 ** Math.min(previousAttempts, 30),
  );
}

function failureCode(error: StanzaError): SendFailureCode {
  switch (error.app?.name) {
    case "refused":
      return "blocked";
    case "not-reachable":
      return "not-reachable";
    case "too-large":
      return "too-large";
    case "unencrypted":
      return "unsupported";
    default:
      return "internal";
  }
}

function describeStanzaError(error: StanzaError): string {
  return (
    `${error.type}/${error.condition}` +
    (error.app === undefined ? "" : ` + ${error.app.name}`) +
    (error.text === undefined ? "" : ` (${error.text})`)
  );
}
