import { IdentityKeyPair, ProtocolAddress, SessionRecord } from "@signalapp/libsignal-client";
import type { Knex } from "knex";
import type { Tx } from "../../db/sql.js";
import type { BareJid, DeviceId } from "../../util/ids.js";
import type { Logger } from "../../util/log.js";
import type { KeyVault } from "../../vault/key-vault.js";
import type { KeyedMutex } from "../../util/mutex.js";
import type { IdentityChangeEvent, IdentityChangePolicy } from "./types.js";
import { DELETED, type WriteBatch } from "./write-batch.js";

/** What every part of the crypto layer shares: database, vault, clock, policy, locks, events. */
export interface CryptoContext {
  readonly knex: Knex;
  readonly vault: KeyVault;
  readonly logger: Logger;
  readonly now: () => number;
  readonly policy: IdentityChangePolicy;
  readonly mutex: KeyedMutex;
  readonly cacheSize: number;
  /**
   * Runs in the transaction that records a changed identity (and may run twice under group
   * commit: database work through `tx` only), so that the change is kept for the core durably.
   */
  recordIdentityChange(tx: Tx, event: IdentityChangeEvent): Promise<void>;
  /** After the commit of that transaction. */
  emitIdentityChange(event: IdentityChangeEvent): void;
}

/**
 * A bounded map in least-recently-used order. `null` values record "known absent" so that a
 * missing session is not looked up in the database on every message.
 */
export class LruCache<V> {
  private readonly map = new Map<string, V>();

  constructor(private readonly capacity: number) {}

  get(key: string): V | undefined {
    const value = this.map.get(key);
    if (value !== undefined) {
      this.map.delete(key);
      this.map.set(key, value);
    }
    return value;
  }

  set(key: string, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    if (this.map.size > this.capacity) {
      const oldest = this.map.keys().next();
      if (oldest.done !== true) this.map.delete(oldest.value);
    }
  }

  delete(key: string): void {
    this.map.delete(key);
  }

  deleteWhere(predicate: (key: string) => boolean): void {
    for (const key of [...this.map.keys()]) if (predicate(key)) this.map.delete(key);
  }

  clear(): void {
    this.map.clear();
  }
}

export interface IdentityRecord {
  readonly key: Buffer;
  readonly previousKey: Buffer | null;
  readonly firstSeenAt: number;
  readonly changedAt: number | null;
  readonly verifiedAt: number | null;
  readonly confirmed: boolean;
}

interface IdentityRow {
  identity_key: Buffer;
  previous_key: Buffer | null;
  first_seen_at: number;
  changed_at: number | null;
  verified_at: number | null;
  confirmed: boolean | number;
}

/** A local user: its identity key pair and the identities it has recorded for its contacts. */
export class UserState {
  private readonly identities: LruCache<IdentityRecord | null>;

  constructor(
    readonly ctx: CryptoContext,
    readonly jid: BareJid,
    readonly identityKeyPair: IdentityKeyPair,
  ) {
    this.identities = new LruCache(ctx.cacheSize);
  }

  /** The lock key of everything this user does with one contact (sessions, identity). */
  lockKey(remoteJid: string): string {
    return `${this.jid}\n${remoteJid}`;
  }

  async loadIdentity(
    batch: WriteBatch | undefined,
    remoteJid: string,
  ): Promise<IdentityRecord | null> {
    const key = identityKey(remoteJid);
    const staged = batch?.read<IdentityRecord>(key);
    if (staged !== undefined) return staged === DELETED ? null : staged;
    const cached = this.identities.get(remoteJid);
    if (cached !== undefined) return cached;
    const row = (await this.ctx
      .knex("signal_identities")
      .where({ local_jid: this.jid, remote_jid: remoteJid })
      .first()) as IdentityRow | undefined;
    const record = row === undefined ? null : identityFromRow(row);
    this.identities.set(remoteJid, record);
    return record;
  }

  stageIdentity(batch: WriteBatch, remoteJid: string, record: IdentityRecord): void {
    const row = {
      local_jid: this.jid,
      remote_jid: remoteJid,
      identity_key: record.key,
      previous_key: record.previousKey,
      first_seen_at: record.firstSeenAt,
      changed_at: record.changedAt,
      verified_at: record.verifiedAt,
      confirmed: record.confirmed,
    };
    batch.stage(
      identityKey(remoteJid),
      record,
      async (trx) => {
        await trx("signal_identities")
          .insert(row)
          .onConflict(["local_jid", "remote_jid"])
          .merge([
            "identity_key",
            "previous_key",
            "first_seen_at",
            "changed_at",
            "verified_at",
            "confirmed",
          ]);
      },
      () => this.identities.set(remoteJid, record),
    );
  }

  forgetIdentities(): void {
    this.identities.clear();
  }
}

/** A local device: its address, registration id and session cache. */
export class DeviceState {
  private readonly sessions: LruCache<SessionRecord | null>;
  readonly address: ProtocolAddress;

  constructor(
    readonly user: UserState,
    readonly ownerId: number,
    readonly deviceId: DeviceId,
    readonly registrationId: number,
  ) {
    this.sessions = new LruCache(user.ctx.cacheSize);
    this.address = ProtocolAddress.new(user.jid, deviceId);
  }

  get ctx(): CryptoContext {
    return this.user.ctx;
  }

  async loadSession(
    batch: WriteBatch | undefined,
    remoteJid: string,
    remoteDevice: number,
  ): Promise<SessionRecord | null> {
    const key = sessionKey(remoteJid, remoteDevice);
    const staged = batch?.read<SessionRecord>(key);
    if (staged !== undefined) return staged === DELETED ? null : staged;
    const cached = this.sessions.get(key);
    if (cached !== undefined) return cached;
    const row = (await this.ctx
      .knex("signal_sessions")
      .select("record_enc")
      .where({ owner_id: this.ownerId, remote_jid: remoteJid, remote_device: remoteDevice })
      .first()) as { record_enc: Buffer } | undefined;
    const record =
      row === undefined
        ? null
        : SessionRecord.deserialize(
            this.ctx.vault.open(row.record_enc, this.sessionRow(remoteJid, remoteDevice)),
          );
    this.sessions.set(key, record);
    return record;
  }

  stageSession(
    batch: WriteBatch,
    remoteJid: string,
    remoteDevice: number,
    record: SessionRecord,
  ): void {
    const key = sessionKey(remoteJid, remoteDevice);
    const row = {
      owner_id: this.ownerId,
      remote_jid: remoteJid,
      remote_device: remoteDevice,
      record_enc: this.ctx.vault.seal(record.serialize(), this.sessionRow(remoteJid, remoteDevice)),
      updated_at: this.ctx.now(),
    };
    batch.stage(
      key,
      record,
      async (tx) => {
        // Written once or twice per message: a prepared statement, not knex's builder.
        await tx.run(
          "insert into signal_sessions (owner_id, remote_jid, remote_device, record_enc, updated_at) values (?, ?, ?, ?, ?) on conflict (owner_id, remote_jid, remote_device) do update set record_enc = excluded.record_enc, updated_at = excluded.updated_at",
          [row.owner_id, row.remote_jid, row.remote_device, row.record_enc, row.updated_at],
        );
      },
      () => this.sessions.set(key, record),
    );
  }

  stageSessionDelete(batch: WriteBatch, remoteJid: string, remoteDevice: number): void {
    const key = sessionKey(remoteJid, remoteDevice);
    batch.stage(
      key,
      DELETED,
      async (trx) => {
        await trx("signal_sessions")
          .where({ owner_id: this.ownerId, remote_jid: remoteJid, remote_device: remoteDevice })
          .delete();
      },
      () => this.sessions.set(key, null),
    );
  }

  /** Drops cached sessions of a contact, e.g. after they were deleted outside a batch. */
  forgetSessions(remoteJid: string, devices?: readonly number[]): void {
    if (devices === undefined) {
      this.sessions.deleteWhere((key) => key.startsWith(`${remoteJid}/`));
    } else {
      for (const device of devices) this.sessions.delete(sessionKey(remoteJid, device));
    }
  }

  sessionRow(remoteJid: string, remoteDevice: number): readonly [string, ...(string | number)[]] {
    return ["signal_sessions", this.ownerId, remoteJid, remoteDevice];
  }
}

export function sessionKey(remoteJid: string, remoteDevice: number): string {
  // Bare JIDs contain no "/", so the key is unambiguous.
  return `${remoteJid}/${remoteDevice}`;
}

function identityKey(remoteJid: string): string {
  return `identity\n${remoteJid}`;
}

function identityFromRow(row: IdentityRow): IdentityRecord {
  return {
    key: Buffer.from(row.identity_key),
    previousKey: row.previous_key === null ? null : Buffer.from(row.previous_key),
    firstSeenAt: row.first_seen_at,
    changedAt: row.changed_at,
    verifiedAt: row.verified_at,
    confirmed: Boolean(row.confirmed),
  };
}
