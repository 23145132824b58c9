import type { Knex } from "knex";
import type { QueryTarget, Tx } from "../../db/sql.js";
import * as tables from "../store/index.js";
import type { DeviceState } from "./device-state.js";
import type { SessionCipher } from "./session-cipher.js";
import type { DeviceAddress, EncryptedKey } from "./types.js";

/** §12.5: at most 2 retry requests per (message, device). */
const MAX_RETRY_COUNT = 2;

type RetryRefusal =
  "unknown-message" | "expired" | "bad-count" | "already-answered" | "not-a-recipient";

type RetryAuthorization =
  | { readonly ok: true; readonly envelope: Uint8Array; readonly conversationJid: string }
  | { readonly ok: false; readonly reason: RetryRefusal };

/**
 * Retry state of one local device (§12.5): the requests it sends as a receiver, and the stored
 * envelopes and answered counts it needs as a sender.
 */
export class RetryLedger {
  constructor(
    private readonly state: DeviceState,
    private readonly cipher: SessionCipher,
  ) {}

  /**
   * Counts a retry request about to be sent for a message that failed to decrypt. Returns its
   * `count` (1 or 2), or null when two were already sent: then the message is shown as "could not
   * be decrypted".
   */
  async nextRequestCount(sender: DeviceAddress, originId: string): Promise<1 | 2 | null> {
    const { knex, now } = this.state.ctx;
    const id = this.requestId(sender, originId);
    return knex.transaction(async (trx) => {
      const count = await tables.retryRequests.count(trx, id);
      if (count === undefined) {
        await tables.retryRequests.insertFirst(trx, id, now());
        return 1;
      }
      if (count >= MAX_RETRY_COUNT) return null;
      await tables.retryRequests.setCount(trx, id, count + 1);
      return (count + 1) as 2;
    });
  }

  /**
   * Whether a retry request for (sender device, message) was sent and not yet purged: only then
   * may a re-send's header content be taken as the message (§17.6).
   */
  async requested(sender: DeviceAddress, originId: string): Promise<boolean> {
    const count = await tables.retryRequests.count(
      this.state.ctx.knex,
      this.requestId(sender, originId),
    );
    return count !== undefined;
  }

  /**
   * Decides whether a retry request may be answered (§12.5 "Answering"): the message was sent
   * less than `windowMs` ago and its envelope is kept; `count` is 1 or 2 and not yet answered for
   * that device; the device was an intended recipient, or joined the recipient's device list
   * (devices-changed) after the message was sent.
   */
  async authorize(request: {
    originId: string;
    requester: DeviceAddress;
    count: number;
    windowMs: number;
  }): Promise<RetryAuthorization> {
    const { knex, vault, now } = this.state.ctx;
    const ownerId = this.state.ownerId;
    const row = await tables.sentEnvelopes.get(knex, ownerId, request.originId);
    if (row === undefined) return { ok: false, reason: "unknown-message" };
    if (now() - row.sentAt >= request.windowMs) return { ok: false, reason: "expired" };
    if (request.count !== 1 && request.count !== 2) return { ok: false, reason: "bad-count" };
    const answered = await tables.retryAnswers.has(knex, {
      ownerId,
      originId: request.originId,
      requesterJid: request.requester.jid,
      requesterDevice: request.requester.device,
      count: request.count,
    });
    if (answered) return { ok: false, reason: "already-answered" };
    const recipients = JSON.parse(row.recipients) as { jid: string; devices: number[] }[];
    const entry = recipients.find((r) => r.jid === request.requester.jid);
    if (entry === undefined) return { ok: false, reason: "not-a-recipient" };
    if (!entry.devices.includes(request.requester.device)) {
      const added = await tables.remoteDevices.addedAt(
        knex,
        request.requester.jid,
        request.requester.device,
      );
      if (added === undefined || added < row.sentAt) {
        return { ok: false, reason: "not-a-recipient" };
      }
    }
    const envelope = vault.open(row.envelopeEnc, [
      "signal_sent_envelopes",
      ownerId,
      request.originId,
    ]);
    return { ok: true, envelope, conversationJid: row.conversationJid };
  }

  /**
   * First step of an answer: archive the session with the requesting device. The caller then
   * fetches a fresh bundle, calls `processBundle`, and `encryptAnswer`.
   */
  async prepareAnswer(requester: DeviceAddress): Promise<void> {
    await this.cipher.archiveSession(requester);
  }

  /**
   * Re-encrypts the stored envelope, unchanged, for the requesting device only, and records the
   * answered count in the same transaction (with whatever `onCommit` writes, e.g. the outbox).
   */
  async encryptAnswer(
    request: { originId: string; requester: DeviceAddress; count: number; envelope: Uint8Array },
    onCommit?: (key: EncryptedKey, trx: Tx) => Promise<void>,
  ): Promise<EncryptedKey> {
    const ownerId = this.state.ownerId;
    const now = this.state.ctx.now();
    const [key] = await this.cipher.encryptForDevices(request.envelope, [request.requester], {
      onCommit: async (keys, trx) => {
        await tables.retryAnswers.insert(
          trx,
          {
            ownerId,
            originId: request.originId,
            requesterJid: request.requester.jid,
            requesterDevice: request.requester.device,
            count: request.count,
          },
          now,
        );
        const only = keys[0];
        if (onCommit !== undefined && only !== undefined) await onCommit(only, trx);
      },
    });
    if (key === undefined) throw new Error("retry answer produced no key");
    return key;
  }

  /**
   * The envelope sent under `originId`, as `rememberEnvelope` kept it (for a re-encryption after
   * stale-device-list, §12.3), or undefined when none is kept.
   */
  async sentEnvelope(originId: string): Promise<Uint8Array | undefined> {
    const { knex, vault } = this.state.ctx;
    const ownerId = this.state.ownerId;
    const row = await tables.sentEnvelopes.get(knex, ownerId, originId);
    return row === undefined
      ? undefined
      : new Uint8Array(vault.open(row.envelopeEnc, ["signal_sent_envelopes", ownerId, originId]));
  }

  /**
   * Forgets envelopes and retry state older than the retry window, except the envelopes (and
   * their answers) of the origin ids `keep` selects: messages whose sending is not over, which a
   * stale-device-list answer may still make re-encrypt (the caller knows which).
   */
  async purge(windowMs: number, keep?: (db: QueryTarget) => Knex.QueryBuilder): Promise<void> {
    const { knex, now } = this.state.ctx;
    const cutoff = now() - windowMs;
    const owner = this.state.ownerId;
    await knex.transaction(async (trx) => {
      const expired = tables.sentEnvelopes.originsSentBefore(trx, owner, cutoff, keep?.(trx));
      await tables.retryAnswers.deleteOfOrigins(trx, owner, expired);
      await tables.sentEnvelopes.deleteSentBefore(trx, owner, cutoff, keep?.(trx));
      await tables.retryRequests.deleteRequestedBefore(trx, owner, cutoff);
    });
  }

  private requestId(sender: DeviceAddress, originId: string): tables.retryRequests.RetryRequestId {
    return {
      ownerId: this.state.ownerId,
      senderJid: sender.jid,
      senderDevice: sender.device,
      originId,
    };
  }
}
