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
import * as tables from "../store/index.js";
import type { DeviceState, IdentityRecord } from "./device-state.js";
import type { IdentityChangeEvent } from "./types.js";
import { DELETED, type WriteBatch } from "./write-batch.js";

/**
 * libsignal's store interfaces for one operation of one local device. Reads go through the
 * operation's WriteBatch (its own staged writes), then the device's caches, then the database;
 * writes are only staged: the batch commits them in one transaction with the caller's writes.
 */
interface OperationStores {
  readonly session: SessionStore;
  readonly identity: IdentityKeyStore;
  readonly preKey: PreKeyStore;
  readonly signedPreKey: SignedPreKeyStore;
  readonly kyberPreKey: KyberPreKeyStore;
  readonly senderKey: SenderKeyStore;
}

interface StoreOptions {
  /**
   * Sending-direction trust for processing a fetched bundle: a changed identity in a bundle is
   * accepted and recorded (trust on first use, then notify, §12.4); only encryption is held.
   */
  readonly acceptChangedIdentity?: boolean;
  /**
   * Awaited before a one-time or Kyber prekey is read (the first message of a new session): those
   * are shared by all of the device's contacts, so a decrypt takes the device's prekey lock there
   * (session-cipher.ts) and holds it until its commit.
   */
  readonly beforePreKeyUse?: () => Promise<void>;
}

export function operationStores(
  device: DeviceState,
  batch: WriteBatch,
  options: StoreOptions = {},
): OperationStores {
  return {
    session: new BatchSessionStore(device, batch),
    identity: new BatchIdentityStore(device, batch, options),
    preKey: new BatchPreKeyStore(device, batch, options.beforePreKeyUse),
    signedPreKey: new DbSignedPreKeyStore(device, batch),
    kyberPreKey: new BatchKyberPreKeyStore(device, batch, options.beforePreKeyUse),
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

/** Nothing to wait for: an operation that reads no prekey of another's (a bundle, a send). */
const noWait = (): Promise<void> => Promise.resolve();

class BatchPreKeyStore extends PreKeyStore {
  constructor(
    private readonly device: DeviceState,
    private readonly batch: WriteBatch,
    private readonly beforeUse: () => Promise<void> = noWait,
  ) {
    super();
  }

  override async savePreKey(id: number, record: PreKeyRecord): Promise<void> {
    const device = this.device;
    const row = {
      prekeyId: id,
      recordEnc: device.ctx.vault.seal(record.serialize(), ["signal_prekeys", device.ownerId, id]),
      createdAt: device.ctx.now(),
    };
    this.batch.stage(`prekey\n${id}`, record, (tx) =>
      tables.preKeys.insert(tx, device.ownerId, row),
    );
  }

  override async getPreKey(id: number): Promise<PreKeyRecord> {
    await this.beforeUse();
    const staged = this.batch.read<PreKeyRecord>(`prekey\n${id}`);
    if (staged === DELETED) throw new Error(`prekey ${id} was consumed`);
    if (staged !== undefined) return staged;
    const device = this.device;
    const sealed = await this.batch.reading(() =>
      tables.preKeys.record(device.ctx.knex, device.ownerId, id),
    );
    if (sealed === undefined || sealed === null) throw new Error(`no prekey ${id}`);
    return PreKeyRecord.deserialize(
      device.ctx.vault.open(sealed, ["signal_prekeys", device.ownerId, id]),
    );
  }

  override async removePreKey(id: number): Promise<void> {
    const device = this.device;
    const now = device.ctx.now();
    // The row stays, without its key, so that the id is not reused for 90 days (§11.1).
    this.batch.stage(`prekey\n${id}`, DELETED, (tx) =>
      tables.preKeys.consume(tx, device.ownerId, id, now),
    );
  }
}

class DbSignedPreKeyStore extends SignedPreKeyStore {
  constructor(
    private readonly device: DeviceState,
    private readonly batch: WriteBatch,
  ) {
    super();
  }

  override async saveSignedPreKey(_id: number, _record: SignedPreKeyRecord): Promise<void> {
    throw new Error("signed prekeys are created by local-keys, not through libsignal");
  }

  override async getSignedPreKey(id: number): Promise<SignedPreKeyRecord> {
    const device = this.device;
    const sealed = await this.batch.reading(() =>
      tables.signedPreKeys.record(device.ctx.knex, device.ownerId, id),
    );
    if (sealed === undefined) throw new Error(`no signed prekey ${id}`);
    return SignedPreKeyRecord.deserialize(
      device.ctx.vault.open(sealed, ["signal_signed_prekeys", device.ownerId, id]),
    );
  }
}

class BatchKyberPreKeyStore extends KyberPreKeyStore {
  constructor(
    private readonly device: DeviceState,
    private readonly batch: WriteBatch,
    private readonly beforeUse: () => Promise<void> = noWait,
  ) {
    super();
  }

  override async saveKyberPreKey(_id: number, _record: KyberPreKeyRecord): Promise<void> {
    throw new Error("Kyber prekeys are created by local-keys, not through libsignal");
  }

  override async getKyberPreKey(id: number): Promise<KyberPreKeyRecord> {
    await this.beforeUse();
    if (this.batch.read(`kyber\n${id}`) === DELETED) throw new Error(`Kyber prekey ${id} consumed`);
    const device = this.device;
    const row = await this.batch.reading(() =>
      tables.kyberPreKeys.get(device.ctx.knex, device.ownerId, id),
    );
    if (row === undefined || row.recordEnc === null) throw new Error(`no Kyber prekey ${id}`);
    return KyberPreKeyRecord.deserialize(
      device.ctx.vault.open(row.recordEnc, ["signal_kyber_prekeys", device.ownerId, id]),
    );
  }

  override async markKyberPreKeyUsed(
    id: number,
    signedPreKeyId: number,
    baseKey: PublicKey,
  ): Promise<void> {
    await this.beforeUse();
    const device = this.device;
    const row = await this.batch.reading(() =>
      tables.kyberPreKeys.get(device.ctx.knex, device.ownerId, id),
    );
    if (row === undefined || row.recordEnc === null) throw new Error(`no Kyber prekey ${id}`);
    const now = device.ctx.now();
    if (!row.lastResort) {
      this.batch.stage(`kyber\n${id}`, DELETED, (tx) =>
        tables.kyberPreKeys.consume(tx, device.ownerId, id, now),
      );
      return;
    }
    // §11.6: a last-resort key stays; a repeated (key, signed prekey, base key) is a replay.
    const base = Buffer.from(baseKey.serialize()).toString("base64");
    const usedKey = `kyber-used\n${id}\n${signedPreKeyId}\n${base}`;
    const use: tables.kyberUsed.KyberUse = {
      ownerId: device.ownerId,
      kyberPreKeyId: id,
      signedPreKeyId,
      baseKey: base,
    };
    const seen =
      this.batch.read(usedKey) !== undefined ||
      (await this.batch.reading(() => tables.kyberUsed.has(device.ctx.knex, use)));
    if (seen) {
      this.batch.replayDetected = true;
      throw new Error(`replayed use of last-resort Kyber prekey ${id}`);
    }
    this.batch.stage(usedKey, true, (tx) => tables.kyberUsed.insert(tx, use, now));
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
    const id = senderKeyId(device.ownerId, sender, distributionId);
    const recordEnc = device.ctx.vault.seal(record.serialize(), ref);
    const updatedAt = device.ctx.now();
    this.batch.stage(ref.join("\n"), record, (tx) =>
      tables.senderKeys.upsert(tx, id, recordEnc, updatedAt),
    );
  }

  override async getSenderKey(
    sender: ProtocolAddress,
    distributionId: Uuid,
  ): Promise<SenderKeyRecord | null> {
    const device = this.device;
    const ref = senderKeyRow(device.ownerId, sender, distributionId);
    const staged = this.batch.read<SenderKeyRecord>(ref.join("\n"));
    if (staged !== undefined) return staged === DELETED ? null : staged;
    const sealed = await this.batch.reading(() =>
      tables.senderKeys.record(
        device.ctx.knex,
        senderKeyId(device.ownerId, sender, distributionId),
      ),
    );
    return sealed === undefined
      ? null
      : SenderKeyRecord.deserialize(device.ctx.vault.open(sealed, ref));
  }
}

function senderKeyRow(
  ownerId: number,
  sender: ProtocolAddress,
  distributionId: string,
): [string, ...(string | number)[]] {
  return ["signal_sender_keys", ownerId, sender.name(), sender.deviceId(), distributionId];
}

function senderKeyId(
  ownerId: number,
  sender: ProtocolAddress,
  distributionId: string,
): tables.senderKeys.SenderKeyId {
  return { ownerId, senderJid: sender.name(), senderDevice: sender.deviceId(), distributionId };
}
