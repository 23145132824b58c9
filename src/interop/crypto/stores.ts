import {
  Direction,
  IdentityChange,
  IdentityKeyStore,
  KyberPreKeyRecord,
  KyberPreKeyStore,
  PreKeyRecord,
  PreKeyStore,
  type PrivateKey,
  type ProtocolAddress,
  PublicKey,
  SenderKeyRecord,
  SenderKeyStore,
  SessionRecord,
  SessionStore,
  SignedPreKeyRecord,
  SignedPreKeyStore,
  type Uuid,
} from "@signalapp/libsignal-client";
import { randomUUID } from "node:crypto";
import type { BareJid } from "../../util/ids.js";
import type { DeviceState, IdentityRecord } from "./device-state.js";
import type { IdentityChangeEvent } from "./types.js";
import { DELETED, type WriteBatch } from "./write-batch.js";

/**
 * libsignal's store interfaces for one operation of one local device. Reads go through the
 * operation's WriteBatch (its own staged writes), then the device's caches, then the database;
 * writes are only staged: the batch commits them in one transaction with the caller's writes.
 */
export interface OperationStores {
  readonly session: SessionStore;
  readonly identity: IdentityKeyStore;
  readonly preKey: PreKeyStore;
  readonly signedPreKey: SignedPreKeyStore;
  readonly kyberPreKey: KyberPreKeyStore;
  readonly senderKey: SenderKeyStore;
}

export interface StoreOptions {
  /**
   * Sending-direction trust for processing a fetched bundle: a changed identity in a bundle is
   * accepted and recorded (trust on first use, then notify, §12.4); only encryption is held.
   */
  readonly acceptChangedIdentity?: boolean;
}

export function operationStores(
  device: DeviceState,
  batch: WriteBatch,
  options: StoreOptions = {},
): OperationStores {
  return {
    session: new BatchSessionStore(device, batch),
    identity: new BatchIdentityStore(device, batch, options),
    preKey: new BatchPreKeyStore(device, batch),
    signedPreKey: new DbSignedPreKeyStore(device),
    kyberPreKey: new BatchKyberPreKeyStore(device, batch),
    senderKey: new BatchSenderKeyStore(device, batch),
  };
}

class BatchSessionStore extends SessionStore {
  constructor(
    private readonly device: DeviceState,
    private readonly batch: WriteBatch,
  ) {
    super();
  }

  override async saveSession(name: ProtocolAddress, record: SessionRecord): Promise<void> {
    this.device.stageSession(this.batch, name.name(), name.deviceId(), record);
  }

  override async getSession(name: ProtocolAddress): Promise<SessionRecord | null> {
    return this.device.loadSession(this.batch, name.name(), name.deviceId());
  }

  override async getExistingSessions(addresses: ProtocolAddress[]): Promise<SessionRecord[]> {
    const records: SessionRecord[] = [];
    for (const address of addresses) {
      const record = await this.getSession(address);
      if (record === null) throw new Error(`no session with ${address.toString()}`);
      records.push(record);
    }
    return records;
  }
}

class BatchIdentityStore extends IdentityKeyStore {
  constructor(
    private readonly device: DeviceState,
    private readonly batch: WriteBatch,
    private readonly options: StoreOptions,
  ) {
    super();
  }

  override async getIdentityKey(): Promise<PrivateKey> {
    return this.device.user.identityKeyPair.privateKey;
  }

  override async getLocalRegistrationId(): Promise<number> {
    return this.device.registrationId;
  }

  override async saveIdentity(name: ProtocolAddress, key: PublicKey): Promise<IdentityChange> {
    const user = this.device.user;
    const remoteJid = name.name();
    const existing = await user.loadIdentity(this.batch, remoteJid);
    const serialized = Buffer.from(key.serialize());
    const now = user.ctx.now();
    if (existing === null) {
      user.stageIdentity(this.batch, remoteJid, {
        key: serialized,
        previousKey: null,
        firstSeenAt: now,
        changedAt: null,
        verifiedAt: null,
        confirmed: true,
      });
      return IdentityChange.NewOrUnchanged;
    }
    if (existing.key.equals(serialized)) return IdentityChange.NewOrUnchanged;
    const sendingHeld = user.ctx.policy === "hold";
    const changed: IdentityRecord = {
      key: serialized,
      previousKey: existing.key,
      firstSeenAt: existing.firstSeenAt,
      changedAt: now,
      verifiedAt: null,
      confirmed: !sendingHeld,
    };
    user.stageIdentity(this.batch, remoteJid, changed);
    const event: IdentityChangeEvent = {
      // Chosen here, once: the write below may run twice (group commit) and must insert once.
      id: randomUUID(),
      localJid: user.jid,
      remoteJid: remoteJid as BareJid,
      previousKey: existing.key,
      currentKey: serialized,
      wasVerified: existing.verifiedAt !== null,
      sendingHeld,
      at: now,
    };
    // The change is kept for the core in the transaction that records the new key (issue #16):
    // the notice cannot be lost between this commit and the core handling it.
    this.batch.addWrite(`identity-change\n${event.id}`, (tx) =>
      user.ctx.recordIdentityChange(tx, event),
    );
    this.batch.afterCommit(() => user.ctx.emitIdentityChange(event));
    return IdentityChange.ReplacedExisting;
  }

  override async isTrustedIdentity(
    name: ProtocolAddress,
    key: PublicKey,
    direction: Direction,
  ): Promise<boolean> {
    // §12.4: receiving is always trusted; a change is recorded and shown, never refused.
    if (direction === Direction.Receiving) return true;
    const existing = await this.device.user.loadIdentity(this.batch, name.name());
    if (existing === null) return true;
    if (!existing.key.equals(key.serialize())) return this.options.acceptChangedIdentity === true;
    return existing.confirmed || this.options.acceptChangedIdentity === true;
  }

  override async getIdentity(name: ProtocolAddress): Promise<PublicKey | null> {
    const existing = await this.device.user.loadIdentity(this.batch, name.name());
    return existing === null ? null : PublicKey.deserialize(new Uint8Array(existing.key));
  }
}

class BatchPreKeyStore extends PreKeyStore {
  constructor(
    private readonly device: DeviceState,
    private readonly batch: WriteBatch,
  ) {
    super();
  }

  override async savePreKey(id: number, record: PreKeyRecord): Promise<void> {
    const device = this.device;
    const row = {
      owner_id: device.ownerId,
      prekey_id: id,
      record_enc: device.ctx.vault.seal(record.serialize(), ["signal_prekeys", device.ownerId, id]),
      created_at: device.ctx.now(),
      consumed_at: null,
    };
    this.batch.stage(`prekey\n${id}`, record, async (trx) => {
      await trx("signal_prekeys").insert(row);
    });
  }

  override async getPreKey(id: number): Promise<PreKeyRecord> {
    const staged = this.batch.read<PreKeyRecord>(`prekey\n${id}`);
    if (staged === DELETED) throw new Error(`prekey ${id} was consumed`);
    if (staged !== undefined) return staged;
    const device = this.device;
    const row = (await device.ctx
      .knex("signal_prekeys")
      .select("record_enc")
      .where({ owner_id: device.ownerId, prekey_id: id })
      .first()) as { record_enc: Buffer | null } | undefined;
    if (row === undefined || row.record_enc === null) throw new Error(`no prekey ${id}`);
    return PreKeyRecord.deserialize(
      device.ctx.vault.open(row.record_enc, ["signal_prekeys", device.ownerId, id]),
    );
  }

  override async removePreKey(id: number): Promise<void> {
    const device = this.device;
    const now = device.ctx.now();
    // The row stays, without its key, so that the id is not reused for 90 days (§11.1).
    this.batch.stage(`prekey\n${id}`, DELETED, async (trx) => {
      await trx("signal_prekeys")
        .where({ owner_id: device.ownerId, prekey_id: id })
        .update({ record_enc: null, consumed_at: now });
    });
  }
}

class DbSignedPreKeyStore extends SignedPreKeyStore {
  constructor(private readonly device: DeviceState) {
    super();
  }

  override async saveSignedPreKey(_id: number, _record: SignedPreKeyRecord): Promise<void> {
    throw new Error("signed prekeys are created by local-keys, not through libsignal");
  }

  override async getSignedPreKey(id: number): Promise<SignedPreKeyRecord> {
    const device = this.device;
    const row = (await device.ctx
      .knex("signal_signed_prekeys")
      .select("record_enc")
      .where({ owner_id: device.ownerId, prekey_id: id })
      .first()) as { record_enc: Buffer } | undefined;
    if (row === undefined) throw new Error(`no signed prekey ${id}`);
    return SignedPreKeyRecord.deserialize(
      device.ctx.vault.open(row.record_enc, ["signal_signed_prekeys", device.ownerId, id]),
    );
  }
}

interface KyberRow {
  record_enc: Buffer | null;
  last_resort: boolean | number;
}

class BatchKyberPreKeyStore extends KyberPreKeyStore {
  constructor(
    private readonly device: DeviceState,
    private readonly batch: WriteBatch,
  ) {
    super();
  }

  override async saveKyberPreKey(_id: number, _record: KyberPreKeyRecord): Promise<void> {
    throw new Error("Kyber prekeys are created by local-keys, not through libsignal");
  }

  override async getKyberPreKey(id: number): Promise<KyberPreKeyRecord> {
    if (this.batch.read(`kyber\n${id}`) === DELETED) throw new Error(`Kyber prekey ${id} consumed`);
    const row = await this.row(id);
    if (row === undefined || row.record_enc === null) throw new Error(`no Kyber prekey ${id}`);
    const device = this.device;
    return KyberPreKeyRecord.deserialize(
      device.ctx.vault.open(row.record_enc, ["signal_kyber_prekeys", device.ownerId, id]),
    );
  }

  override async markKyberPreKeyUsed(
    id: number,
    signedPreKeyId: number,
    baseKey: PublicKey,
  ): Promise<void> {
    const device = this.device;
    const row = await this.row(id);
    if (row === undefined || row.record_enc === null) throw new Error(`no Kyber prekey ${id}`);
    const now = device.ctx.now();
    if (!row.last_resort) {
      this.batch.stage(`kyber\n${id}`, DELETED, async (trx) => {
        await trx("signal_kyber_prekeys")
          .where({ owner_id: device.ownerId, prekey_id: id })
          .update({ record_enc: null, consumed_at: now });
      });
      return;
    }
    // §11.6: a last-resort key stays; a repeated (key, signed prekey, base key) is a replay.
    const base = Buffer.from(baseKey.serialize()).toString("base64");
    const usedKey = `kyber-used\n${id}\n${signedPreKeyId}\n${base}`;
    const where = {
      owner_id: device.ownerId,
      kyber_prekey_id: id,
      signed_prekey_id: signedPreKeyId,
      base_key: base,
    };
    const seen =
      this.batch.read(usedKey) !== undefined ||
      (await device.ctx.knex("signal_kyber_used").where(where).first()) !== undefined;
    if (seen) {
      this.batch.replayDetected = true;
      throw new Error(`replayed use of last-resort Kyber prekey ${id}`);
    }
    this.batch.stage(usedKey, true, async (trx) => {
      await trx("signal_kyber_used").insert({ ...where, used_at: now });
    });
  }

  private async row(id: number): Promise<KyberRow | undefined> {
    return (await this.device.ctx
      .knex("signal_kyber_prekeys")
      .select("record_enc", "last_resort")
      .where({ owner_id: this.device.ownerId, prekey_id: id })
      .first()) as KyberRow | undefined;
  }
}

class BatchSenderKeyStore extends SenderKeyStore {
  constructor(
    private readonly device: DeviceState,
    private readonly batch: WriteBatch,
  ) {
    super();
  }

  override async saveSenderKey(
    sender: ProtocolAddress,
    distributionId: Uuid,
    record: SenderKeyRecord,
  ): Promise<void> {
    const device = this.device;
    const ref = senderKeyRow(device.ownerId, sender, distributionId);
    const row = {
      owner_id: device.ownerId,
      sender_jid: sender.name(),
      sender_device: sender.deviceId(),
      distribution_id: distributionId,
      record_enc: device.ctx.vault.seal(record.serialize(), ref),
      updated_at: device.ctx.now(),
    };
    this.batch.stage(ref.join("\n"), record, async (trx) => {
      await trx("signal_sender_keys")
        .insert(row)
        .onConflict(["owner_id", "sender_jid", "sender_device", "distribution_id"])
        .merge(["record_enc", "updated_at"]);
    });
  }

  override async getSenderKey(
    sender: ProtocolAddress,
    distributionId: Uuid,
  ): Promise<SenderKeyRecord | null> {
    const device = this.device;
    const ref = senderKeyRow(device.ownerId, sender, distributionId);
    const staged = this.batch.read<SenderKeyRecord>(ref.join("\n"));
    if (staged !== undefined) return staged === DELETED ? null : staged;
    const row = (await device.ctx
      .knex("signal_sender_keys")
      .select("record_enc")
      .where({
        owner_id: device.ownerId,
        sender_jid: sender.name(),
        sender_device: sender.deviceId(),
        distribution_id: distributionId,
      })
      .first()) as { record_enc: Buffer } | undefined;
    return row === undefined
      ? null
      : SenderKeyRecord.deserialize(device.ctx.vault.open(row.record_enc, ref));
  }
}

export function senderKeyRow(
  ownerId: number,
  sender: ProtocolAddress,
  distributionId: string,
): [string, ...(string | number)[]] {
  return ["signal_sender_keys", ownerId, sender.name(), sender.deviceId(), distributionId];
}
