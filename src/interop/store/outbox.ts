import type { Knex } from "knex";
import type { QueryTarget, Tx } from "../../db/sql.js";
import type { BareJid, MessageId } from "../../util/ids.js";

/**
 * `outbox` (migrations 0001 + 0003): every stanza the bridge sends that carries an origin-id,
 * kept until its outcome (§15.1, §15.3). `envelopeEnc` (sealed by the caller) is only in rows
 * queued before issue #15: the envelope is since kept once, in `signal_sent_envelopes`. The
 * insert, the acceptances and the done marks are the hot path (prepared statements on a `Tx`);
 * the rest are builders for the retransmission pass and maintenance.
 */

/** Kinds of outbox rows: everything we send that carries an origin-id (§15.1). */
type OutboxKind = "message" | "receipt" | "displayed" | "retry-request" | "retry-answer";

/** pending: never sent; sent: awaiting an outcome; accepted / failed: done. */
type OutboxState = "pending" | "sent" | "accepted" | "failed";

/** Why a row waits past its retransmission time (§15.3): a `wait` bounce or a re-publish. */
type OutboxHold = "rate-limited" | "request-pending" | "wait" | "unknown-device";

export interface OutboxRow {
  readonly id: number;
  readonly kind: OutboxKind;
  /** Full JID of the sending device. */
  readonly senderJid: string;
  /** The peer's bare JID. */
  readonly conversationJid: BareJid;
  /** The stanza's `to` (a bare JID, or a device's full JID for retries). */
  readonly toJid: string;
  readonly originId: MessageId;
  readonly resendKey: string;
  /** The exact bytes to (re)transmit (§15.3). */
  readonly stanza: string;
  readonly state: OutboxState;
  readonly attempts: number;
  readonly firstSentAt: number | null;
  readonly nextAttemptAt: number;
  readonly hold: OutboxHold | null;
  readonly eventId: string | null;
  readonly envelopeEnc: Buffer | null;
  readonly createdAt: number;
}

export interface NewOutboxRow {
  readonly kind: OutboxKind;
  readonly senderJid: string;
  readonly conversationJid: BareJid;
  readonly toJid: string;
  readonly originId: MessageId;
  readonly resendKey?: string;
  readonly stanza: string;
  readonly eventId?: string | undefined;
  readonly envelopeEnc?: Buffer | undefined;
}

interface Raw {
  id: number;
  kind: string;
  sender_jid: string;
  conversation_jid: string;
  to_jid: string | null;
  origin_id: string;
  resend_key: string;
  stanza: string;
  state: string;
  attempts: number;
  first_sent_at: number | null;
  next_attempt_at: number;
  hold: string | null;
  event_id: string | null;
  envelope_enc: Buffer | null;
  created_at: number;
}

/** What an `<accepted>` answer needs of the row it answers (`firstUnresolvedMany`). */
export type AnsweredRow = Pick<
  OutboxRow,
  "id" | "kind" | "senderJid" | "conversationJid" | "originId" | "eventId"
>;

/** The key `firstUnresolvedMany` returns its rows by. */
export const acceptanceKey = (senderJid: string, originId: string): string =>
  `${senderJid}\n${originId}`;

const UNRESOLVED: readonly OutboxState[] = ["pending", "sent"];

function fromRaw(r: Raw): OutboxRow {
  return {
    id: Number(r.id),
    kind: r.kind as OutboxKind,
    senderJid: r.sender_jid,
    conversationJid: r.conversation_jid as BareJid,
    toJid: r.to_jid ?? r.conversation_jid,
    originId: r.origin_id as MessageId,
    resendKey: r.resend_key,
    stanza: r.stanza,
    state: r.state as OutboxState,
    attempts: r.attempts,
    firstSentAt: r.first_sent_at,
    nextAttemptAt: r.next_attempt_at,
    hold: r.hold as OutboxHold | null,
    eventId: r.event_id,
    envelopeEnc: r.envelope_enc === null ? null : Buffer.from(r.envelope_enc),
    createdAt: r.created_at,
  };
}

/**
 * Every stanza the bridge sends goes through here: one prepared statement. With `sentUntil`
 * the row is written as sent (first attempt now, next attempt at `sentUntil`): the caller
 * transmits it right after the commit, so no pass over the table has to find it (issue #15).
 */
export async function insert(
  tx: Tx,
  row: NewOutboxRow,
  now: number,
  sentUntil?: number,
): Promise<number> {
  const id = await insertRow(tx, row, now, sentUntil, false);
  if (id === undefined) throw new Error("outbox insert returned no id");
  return id;
}

/**
 * `insert` unless a row for (sender, origin-id) exists (then undefined): the idempotency check
 * of a Matrix event and the insert in one statement (#15). SQLite only: PostgreSQL would type
 * the parameters of `insert ... select` as text, its callers check with `exists` first.
 */
export async function insertIfAbsent(
  tx: Tx,
  row: NewOutboxRow,
  now: number,
  sentUntil?: number,
): Promise<number | undefined> {
  return insertRow(tx, row, now, sentUntil, true);
}

/**
 * `insert` unless the row's (sender, origin-id, resend key) is taken (then undefined), in one
 * statement on both backends: for rows whose origin-id is derived from what they answer, so
 * that writing one twice (a hand-over repeated after a crash) keeps one.
 */
export async function insertOnce(
  tx: Tx,
  row: NewOutboxRow,
  now: number,
  sentUntil?: number,
): Promise<number | undefined> {
  return insertRow(tx, row, now, sentUntil, false, true);
}

async function insertRow(
  tx: Tx,
  row: NewOutboxRow,
  now: number,
  sentUntil: number | undefined,
  onlyIfAbsent: boolean,
  onConflictNothing = false,
): Promise<number | undefined> {
  const sent = sentUntil !== undefined;
  const values = {
    kind: row.kind,
    sender_jid: row.senderJid,
    conversation_jid: row.conversationJid,
    to_jid: row.toJid,
    origin_id: row.originId,
    resend_key: row.resendKey ?? "",
    stanza: row.stanza,
    state: sent ? "sent" : "pending",
    attempts: sent ? 1 : 0,
    first_sent_at: sent ? now : null,
    next_attempt_at: sent ? sentUntil : now,
    event_id: row.eventId ?? null,
    envelope_enc: row.envelopeEnc ?? null,
    created_at: now,
  };
  const columns = Object.keys(values) as (keyof typeof values)[];
  const placeholders = columns.map(() => "?").join(", ");
  if (onlyIfAbsent && tx.dialect === "sqlite") {
    const [added] = await tx.all<{ id: number | string }>(
      `insert into outbox (${columns.join(", ")}) select ${placeholders} where not exists (select 1 from outbox where sender_jid = ? and origin_id = ?) returning id`,
      [...columns.map((c) => values[c]), row.senderJid, row.originId],
    );
    return added === undefined ? undefined : Number(added.id);
  }
  const [inserted] = await tx.all<{ id: number | string }>(
    `insert into outbox (${columns.join(", ")}) values (${placeholders})` +
      (onConflictNothing
        ? " on conflict (sender_jid, origin_id, resend_key) do nothing returning id"
        : " returning id"),
    columns.map((c) => values[c]),
  );
  return inserted === undefined ? undefined : Number(inserted.id);
}

export async function get(db: QueryTarget, id: number): Promise<OutboxRow | undefined> {
  const raw = (await db("outbox").where({ id }).first()) as Raw | undefined;
  return raw === undefined ? undefined : fromRaw(raw);
}

/** How many rows await an outcome (pending or sent), for the outbox depth metric. */
export async function depth(db: Knex): Promise<number> {
  const row = (await db("outbox").whereIn("state", UNRESOLVED).count({ n: "*" }).first()) as
    { n: number | string } | undefined;
  return Number(row?.n ?? 0);
}

/** Unresolved rows in creation order, the due ones and the ones that block them. */
export async function unresolved(db: Knex, limit: number): Promise<OutboxRow[]> {
  const rows = (await db("outbox")
    .whereIn("state", UNRESOLVED)
    .orderBy("id")
    .limit(limit)) as Raw[];
  return rows.map(fromRaw);
}

/**
 * The unresolved rows an outcome for (sender, origin-id) may concern. A retry re-send repeats
 * its message's origin-id (§12.5), so there may be several; the original comes first.
 */
export async function byOrigin(
  db: QueryTarget,
  senderJid: string,
  originId: string,
): Promise<OutboxRow[]> {
  const rows = (await db("outbox")
    .where({ sender_jid: senderJid, origin_id: originId })
    .orderBy("id")) as Raw[];
  return rows.map(fromRaw);
}

export async function markTransmitted(
  db: Knex,
  id: number,
  now: number,
  nextAttemptAt: number,
): Promise<void> {
  await db("outbox")
    .where({ id })
    .whereIn("state", UNRESOLVED)
    .update({
      state: "sent",
      hold: null,
      next_attempt_at: nextAttemptAt,
      attempts: db.raw("attempts + 1"),
    });
  await db("outbox").where({ id }).whereNull("first_sent_at").update({ first_sent_at: now });
}

/**
 * The first unresolved row of each (sender, origin-id), for several `<accepted>` answers in ONE
 * read-only statement; returned by `acceptanceKey(sender, origin-id)`. A retry re-send repeats
 * its message's origin-id (§12.5): the original is the row answered. Nothing is written here: the
 * rows are resolved by `resolveAccepted` once the core has taken the acceptances of the messages
 * among them (issue #15: an update here as well rewrote every message row once more).
 */
export async function firstUnresolvedMany(
  tx: Tx,
  keys: readonly { senderJid: string; originId: string }[],
): Promise<Map<string, AnsweredRow>> {
  const found = new Map<string, AnsweredRow>();
  // Chunks keep the statement under SQLite's bound-parameter limit (2 per key).
  for (let i = 0; i < keys.length; i += 250) {
    const chunk = keys.slice(i, i + 250);
    const raws = await tx.all<
      Pick<Raw, "id" | "kind" | "sender_jid" | "conversation_jid" | "origin_id" | "event_id">
    >(
      // Not the stanza: ~3 KB per row that an answer does not need.
      "select o.id, o.kind, o.sender_jid, o.conversation_jid, o.origin_id, o.event_id " +
        `from (values ${chunk.map(() => "(?, ?)").join(", ")}) as v ` +
        "join outbox o on o.id = (select f.id from outbox f where f.sender_jid = v.column1 and f.origin_id = v.column2 and f.state in ('pending', 'sent') order by f.id limit 1)",
      chunk.flatMap((k) => [k.senderJid, k.originId]),
    );
    for (const raw of raws) {
      const row: AnsweredRow = {
        id: Number(raw.id),
        kind: raw.kind as OutboxKind,
        senderJid: raw.sender_jid,
        conversationJid: raw.conversation_jid as BareJid,
        originId: raw.origin_id as MessageId,
        eventId: raw.event_id,
      };
      found.set(acceptanceKey(row.senderJid, row.originId), row);
    }
  }
  return found;
}

/**
 * Resolves, in ONE statement, the first unresolved row of each (sender, origin-id) that is not a
 * message (a receipt, a read marker, a retry request or answer: nothing for the core to hear of),
 * and returns which were resolved, by `acceptanceKey`. A key whose row is a message, or that has
 * no unresolved row, is left as it was for `firstUnresolvedMany` (issue #15: a receipt's answer
 * cost a read and an update, two statements per W->M message at low batch sizes).
 */
export async function resolveAcceptedNonMessages(
  tx: Tx,
  answers: readonly {
    senderJid: string;
    originId: string;
    stanzaId: string;
    seq: number | undefined;
    stamp: number;
  }[],
): Promise<Set<string>> {
  const resolved = new Set<string>();
  // Chunks keep the statement under SQLite's bound-parameter limit (5 per answer).
  for (let i = 0; i < answers.length; i += 150) {
    const chunk = answers.slice(i, i + 150);
    const values = chunk.map(() => "(?, ?, ?, CAST(? AS BIGINT), CAST(? AS BIGINT))").join(", ");
    const rows = await tx.all<Pick<Raw, "sender_jid" | "origin_id">>(
      "update outbox set stanza_id = v.column3, seq = v.column4, stamp = v.column5, " +
        `state = 'accepted', hold = null from (values ${values}) as v ` +
        "where outbox.id = (select f.id from outbox f where f.sender_jid = v.column1 and f.origin_id = v.column2 and f.state in ('pending', 'sent') order by f.id limit 1) " +
        "and outbox.kind <> 'message' returning outbox.sender_jid, outbox.origin_id",
      chunk.flatMap((a) => [a.senderJid, a.originId, a.stanzaId, a.seq ?? null, a.stamp]),
    );
    for (const row of rows) resolved.add(acceptanceKey(row.sender_jid, row.origin_id));
  }
  return resolved;
}

/**
 * Resolves accepted rows with the gatekeeper's stanza-id, seq and stamp (§15.4): one statement
 * (an `UPDATE ... FROM (VALUES ...)`, valid on SQLite and PostgreSQL) for a whole batch.
 */
export async function resolveAccepted(
  tx: Tx,
  rows: readonly { id: number; stanzaId: string; seq: number | undefined; stamp: number }[],
): Promise<void> {
  // Chunks keep the statement under SQLite's bound-parameter limit (4 per row).
  for (let i = 0; i < rows.length; i += 200) {
    const chunk = rows.slice(i, i + 200);
    const values = chunk
      .map(() => "(CAST(? AS BIGINT), ?, CAST(? AS BIGINT), CAST(? AS BIGINT))")
      .join(", ");
    await tx.run(
      "update outbox set stanza_id = v.column2, seq = v.column3, stamp = v.column4, " +
        `state = 'accepted', hold = null from (values ${values}) as v where outbox.id = v.column1`,
      chunk.flatMap((r) => [r.id, r.stanzaId, r.seq ?? null, r.stamp]),
    );
  }
}

/**
 * The origin-ids of `senderJid`'s unresolved messages, as a subquery: their envelopes, kept in
 * `signal_sent_envelopes` (a stale-device-list re-encryption reads them there), outlive the retry
 * window while they are unresolved.
 */
export function unresolvedOrigins(db: QueryTarget, senderJid: string): Knex.QueryBuilder {
  return db("outbox")
    .select("origin_id")
    .where({ sender_jid: senderJid, kind: "message" })
    .whereIn("state", UNRESOLVED);
}

/** Whether any row exists for (sender, origin-id): the idempotency check of a Matrix event. */
export async function exists(tx: Tx, senderJid: string, originId: string): Promise<boolean> {
  const rows = await tx.all(
    "select 1 as one from outbox where sender_jid = ? and origin_id = ? limit 1",
    [senderJid, originId],
  );
  return rows.length > 0;
}

/** A row written as sent whose transmission had to wait: due now, for the next pass. */
export async function makeDue(db: Knex, id: number, now: number): Promise<void> {
  await db("outbox")
    .where({ id, state: "sent" })
    .update({
      state: "pending",
      attempts: db.raw("attempts - 1"),
      first_sent_at: null,
      next_attempt_at: now,
    });
}

export async function markFailed(db: Knex, id: number, error: string): Promise<void> {
  await db("outbox")
    .where({ id })
    .update({ state: "failed", hold: null, last_error: error.slice(0, 1000) });
}

export async function hold(
  db: Knex,
  id: number,
  hold: OutboxHold,
  nextAttemptAt: number,
  error: string,
): Promise<void> {
  await db("outbox")
    .where({ id })
    .whereIn("state", UNRESOLVED)
    .update({ hold, next_attempt_at: nextAttemptAt, last_error: error.slice(0, 1000) });
}

/** Replaces the stanza after a `stale-device-list` (§12.3) and makes it due at once. */
export async function replaceStanza(
  db: QueryTarget,
  id: number,
  stanza: string,
  now: number,
): Promise<void> {
  await db("outbox")
    .where({ id })
    .update({ stanza, state: "pending", hold: null, next_attempt_at: now });
}

/**
 * After a successful hello every unresolved stanza is due, except those a `wait` bounce holds
 * (§15.3: rate-limited ones after `retry-after`, request-pending ones on request-accepted).
 */
export async function dueAfterHello(db: Knex, now: number): Promise<void> {
  await db("outbox")
    .whereIn("state", UNRESOLVED)
    .where((q) => q.whereNull("hold").orWhereIn("hold", ["wait", "unknown-device"]))
    .update({ next_attempt_at: now, hold: null });
}

/** `<request-accepted>` (§10.3): the held stanzas of that conversation are due at once. */
export async function release(
  db: Knex,
  senderBare: BareJid,
  conversation: BareJid,
  now: number,
): Promise<number> {
  return db("outbox")
    .whereIn("state", UNRESOLVED)
    .where({ conversation_jid: conversation, hold: "request-pending" })
    .where((q) =>
      q.where("sender_jid", senderBare).orWhere("sender_jid", "like", `${senderBare}/%`),
    )
    .update({ next_attempt_at: now, hold: null });
}

/** Unresolved rows first sent (or created, if never sent) before `cutoff`. */
export async function expired(db: Knex, cutoff: number): Promise<OutboxRow[]> {
  const rows = (await db("outbox")
    .whereIn("state", UNRESOLVED)
    .where((q) =>
      q
        .where("first_sent_at", "<", cutoff)
        .orWhere((q2) => q2.whereNull("first_sent_at").where("created_at", "<", cutoff)),
    )
    .orderBy("id")) as Raw[];
  return rows.map(fromRaw);
}

/**
 * Maintenance: resolved rows (accepted or failed) created before `cutoff`, once no outcome for
 * them can arrive any more (the de-dup window, §15.4).
 */
export async function deleteResolvedBefore(db: Knex, cutoff: number): Promise<void> {
  await db("outbox")
    .whereIn("state", ["accepted", "failed"])
    .where("created_at", "<", cutoff)
    .delete();
}
