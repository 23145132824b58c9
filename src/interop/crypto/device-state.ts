import { IdentityKeyPair, ProtocolAddress, SessionRecord } from "@signalapp/libsignal-client";
import type { Knex } from "knex";
import type { Tx } from "../../db/sql.js";
import type { BareJid, DeviceId } from "../../util/ids.js";
import type { Logger } from "../../util/log.js";
import type { KeyVault } from "../../vault/key-vault.js";
import type { KeyedMutex } from "../../util/mutex.js";
import * as tables from "../store/index.js";
import type { IdentityRecord } from "../store/identities.js";
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
class LruCache<V> {
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

export type { IdentityRecord };

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
    const read = () => tables.identities.get(this.ctx.knex, this.jid, remoteJid);
    const record = (await (batch === undefined ? read() : batch.reading(read))) ?? null;
    this.identities.set(remoteJid, record);
    return record;
  }

  stageIdentity(batch: WriteBatch, remoteJid: string, record: IdentityRecord): void {
    batch.stage(
      identityKey(remoteJid),
      record,
      (tx) => tables.identities.upsert(tx, this.jid, remoteJid, record),
      () => this.identities.set(remoteJid, record),
    );
    batch.afterFailure(() => this.identities.delete(remoteJid));
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
    const read = () => tables.sessions.record(this.ctx.knex, this.ownerId, remoteJid, remoteDevice);
    const sealed = await (batch === undefined ? read() : batch.reading(read));
    const record =
      sealed === undefined
        ? null
        : SessionRecord.deserialize(
            this.ctx.vault.open(sealed, this.sessionRow(remoteJid, remoteDevice)),
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
    // Sealed once, here: the write may run twice (group commit) and writes the same bytes.
    const row: tables.sessions.SessionRow = {
      ownerId: this.ownerId,
      remoteJid,
      remoteDevice,
      recordEnc: this.ctx.vault.seal(record.serialize(), this.sessionRow(remoteJid, remoteDevice)),
      updatedAt: this.ctx.now(),
    };
    batch.stage(
      key,
      record,
      (tx) => tables.sessions.upsert(tx, row),
      () => this.sessions.set(key, record),
    );
    batch.afterFailure(() => this.sessions.delete(key));
  }

  stageSessionDelete(batch: WriteBatch, remoteJid: string, remoteDevice: number): void {
    const key = sessionKey(remoteJid, remoteDevice);
    batch.stage(
      key,
      DELETED,
      (tx) => tables.sessions.deleteOne(tx, this.ownerId, remoteJid, remoteDevice),
      () => this.sessions.set(key, null),
    );
    batch.afterFailure(() => this.sessions.delete(key));
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

function sessionKey(remoteJid: string, remoteDevice: number): string {
  // Bare JIDs contain no "/", so the key is unambiguous.
  return `${remoteJid}/${remoteDevice}`;
}

function identityKey(remoteJid: string): string {
  return `identity\n${remoteJid}`;
}
