import { randomInt } from "node:crypto";
import {
  IdentityKeyPair,
  KEMKeyPair,
  KyberPreKeyRecord,
  PreKeyRecord,
  PrivateKey,
  SignedPreKeyRecord,
} from "@signalapp/libsignal-client";
import type { Knex } from "knex";
import * as tables from "../store/index.js";
import type { IdSpace } from "../store/local-devices.js";
import type { BareJid, DeviceId } from "../../util/ids.js";
import { deviceId as toDeviceId } from "../../util/ids.js";
import type { CryptoContext, DeviceState } from "./device-state.js";
import { BridgeError } from "../../util/errors.js";
import type {
  OneTimePublicKey,
  PublishableBundle,
  PublishablePreKeys,
  PublishableRotation,
  SignedPublicKey,
} from "./types.js";

/** Prekey ids are 1..2^24-1 in every id space (§11.1). */
const MAX_PREKEY_ID = 16_777_215;
/** Superseded and consumed keys (and their ids) are kept this long (§11.6, P5). */
export const KEY_RETENTION_MS = 90 * 24 * 3600 * 1000;
const DEFAULT_ONE_TIME_PREKEYS = 100;

/** The ids each space's table holds. */
const TAKEN_IDS: Record<IdSpace, (db: Knex.Transaction, ownerId: number) => Promise<number[]>> = {
  prekey: tables.preKeys.ids,
  signed: tables.signedPreKeys.ids,
  kyber: tables.kyberPreKeys.ids,
};

interface CreatedDevice {
  readonly ownerId: number;
  readonly deviceId: DeviceId;
  readonly registrationId: number;
  readonly bundle: PublishableBundle;
}

export interface CreateDeviceOptions {
  /** Device id to use; by default a random id in 1..127 not yet used by this user. */
  readonly deviceId?: DeviceId;
  /** One-time EC and Kyber prekeys to create (each); defaults to 100. */
  readonly oneTimePreKeys?: number;
}

/**
 * Creates a local device with all its key material, and the user's identity key pair if it has
 * none yet (all devices of a user share one identity, §11.2). Everything is written in one
 * transaction; the returned bundle is what §11.2 publishes.
 */
export async function createLocalDevice(
  ctx: CryptoContext,
  userJid: BareJid,
  options: CreateDeviceOptions = {},
): Promise<CreatedDevice> {
  const count = options.oneTimePreKeys ?? DEFAULT_ONE_TIME_PREKEYS;
  const now = ctx.now();
  return ctx.knex.transaction(async (trx) => {
    const identity = await ensureIdentity(ctx, trx, userJid, now);
    const used = new Set(await tables.localDevices.deviceIdsOf(trx, userJid));
    const deviceId = options.deviceId ?? pickDeviceId(used);
    if (used.has(deviceId)) {
      throw new BridgeError("device-exists", `${userJid} already has a device ${deviceId}`);
    }
    const registrationId = randomInt(1, 16381);
    // Counters start at a random point, so that a reinstall does not hand out the ids of the
    // previous installation's keys, which late messages may still name.
    const start = () => randomInt(1, MAX_PREKEY_ID >> 1);
    const ownerId = await tables.localDevices.insert(trx, {
      jid: userJid,
      deviceId,
      registrationId,
      nextIds: { prekey: start(), signed: start(), kyber: start() },
      createdAt: now,
    });
    const keys = new KeyWriter(ctx, trx, ownerId, identity, now);
    const signedPreKey = await keys.signedPreKey();
    const lastResortKyberPreKey = await keys.kyberPreKeys(1, true);
    const preKeys = await keys.preKeys(count);
    const kyberPreKeys = await keys.kyberPreKeys(count, false);
    return {
      ownerId,
      deviceId,
      registrationId,
      bundle: {
        deviceId,
        registrationId,
        identityKey: b64(identity.publicKey.serialize()),
        signedPreKey,
        lastResortKyberPreKey: lastResortKyberPreKey[0] as SignedPublicKey,
        preKeys,
        kyberPreKeys,
      },
    };
  });
}

/** New one-time EC and Kyber prekeys for a `<prekeys>` set (§11.5). */
export async function replenishPreKeys(
  device: DeviceState,
  counts: { ec: number; kyber: number },
): Promise<PublishablePreKeys> {
  const ctx = device.ctx;
  return ctx.knex.transaction(async (trx) => {
    const keys = new KeyWriter(ctx, trx, device.ownerId, device.user.identityKeyPair, ctx.now());
    return {
      deviceId: device.deviceId,
      preKeys: await keys.preKeys(counts.ec),
      kyberPreKeys: await keys.kyberPreKeys(counts.kyber, false),
    };
  });
}

/**
 * Replaces the signed prekey and the last-resort Kyber prekey (§11.6). The superseded ones stay
 * usable for late PreKeySignalMessages until `purgeExpiredKeys` removes them after 90 days.
 */
export async function rotateSignedPreKey(
  device: DeviceState,
  now: number,
): Promise<PublishableRotation> {
  const ctx = device.ctx;
  return ctx.knex.transaction(async (trx) => {
    await tables.signedPreKeys.supersedeCurrent(trx, device.ownerId, now);
    await tables.kyberPreKeys.supersedeLastResort(trx, device.ownerId, now);
    const keys = new KeyWriter(ctx, trx, device.ownerId, device.user.identityKeyPair, now);
    const signedPreKey = await keys.signedPreKey();
    const [lastResort] = await keys.kyberPreKeys(1, true);
    return {
      deviceId: device.deviceId,
      signedPreKey,
      lastResortKyberPreKey: lastResort as SignedPublicKey,
    };
  });
}

/** Deletes keys superseded or consumed more than `retentionMs` ago, freeing their ids. */
export async function purgeExpiredKeys(
  device: DeviceState,
  now: number,
  retentionMs = KEY_RETENTION_MS,
): Promise<void> {
  const cutoff = now - retentionMs;
  await device.ctx.knex.transaction(async (trx) => {
    const owner = device.ownerId;
    await tables.signedPreKeys.deleteSupersededBefore(trx, owner, cutoff);
    const expiredKyber = tables.kyberPreKeys.expiredIds(trx, owner, cutoff);
    await tables.kyberUsed.deleteOfKeys(trx, owner, expiredKyber);
    await tables.kyberPreKeys.deleteExpired(trx, owner, cutoff);
    await tables.preKeys.deleteConsumedBefore(trx, owner, cutoff);
  });
}

/** Unconsumed one-time prekeys, as the directory counts them (§11.5, E17). */
export async function countPreKeys(device: DeviceState): Promise<{ ec: number; kyber: number }> {
  const knex = device.ctx.knex;
  const ec = await tables.preKeys.countUnconsumed(knex, device.ownerId);
  const kyber = await tables.kyberPreKeys.countUnconsumedOneTime(knex, device.ownerId);
  return { ec, kyber };
}

/** The device's current public material as a full bundle (for a re-publish after reconnect). */
export async function currentBundle(device: DeviceState): Promise<PublishableBundle> {
  const { knex, vault } = device.ctx;
  const signedRow = await tables.signedPreKeys.current(knex, device.ownerId);
  const kyberRows = await tables.kyberPreKeys.current(knex, device.ownerId);
  const preKeyRows = await tables.preKeys.unconsumed(knex, device.ownerId);
  const lastResortRow = kyberRows.find((row) => row.lastResort);
  if (signedRow === undefined || lastResortRow === undefined) {
    throw new BridgeError("keys-missing", `${device.address.toString()} has no current prekeys`);
  }
  const signed = SignedPreKeyRecord.deserialize(
    vault.open(signedRow.recordEnc, ["signal_signed_prekeys", device.ownerId, signedRow.prekeyId]),
  );
  const kyber = (row: { prekeyId: number; recordEnc: Buffer }): SignedPublicKey =>
    signedPublic(
      KyberPreKeyRecord.deserialize(
        vault.open(row.recordEnc, ["signal_kyber_prekeys", device.ownerId, row.prekeyId]),
      ),
    );
  return {
    deviceId: device.deviceId,
    registrationId: device.registrationId,
    identityKey: b64(device.user.identityKeyPair.publicKey.serialize()),
    signedPreKey: signedPublic(signed),
    lastResortKyberPreKey: kyber(lastResortRow),
    preKeys: preKeyRows.map((row) => {
      const record = PreKeyRecord.deserialize(
        vault.open(row.recordEnc, ["signal_prekeys", device.ownerId, row.prekeyId]),
      );
      return { id: record.id(), publicKey: b64(record.publicKey().serialize()) };
    }),
    kyberPreKeys: kyberRows.filter((row) => !row.lastResort).map(kyber),
  };
}

async function ensureIdentity(
  ctx: CryptoContext,
  trx: Knex.Transaction,
  userJid: BareJid,
  now: number,
): Promise<IdentityKeyPair> {
  const ref = ["signal_local_identities", userJid] as const;
  const sealed = await tables.localIdentities.keyPairOf(trx, userJid);
  if (sealed !== undefined) return IdentityKeyPair.deserialize(ctx.vault.open(sealed, ref));
  const pair = IdentityKeyPair.generate();
  await tables.localIdentities.insert(trx, {
    jid: userJid,
    keyPairEnc: ctx.vault.seal(pair.serialize(), ref),
    publicKey: Buffer.from(pair.publicKey.serialize()),
    createdAt: now,
  });
  return pair;
}

function pickDeviceId(used: ReadonlySet<number>): DeviceId {
  const free: number[] = [];
  for (let id = 1; id <= 127; id++) if (!used.has(id)) free.push(id);
  const pick = free[randomInt(0, Math.max(free.length, 1))];
  if (pick === undefined) throw new BridgeError("too-many-devices", "no free device id in 1..127");
  return toDeviceId(pick);
}

/** Generates keys, allocates their ids and writes the sealed records in the caller's transaction. */
class KeyWriter {
  constructor(
    private readonly ctx: CryptoContext,
    private readonly trx: Knex.Transaction,
    private readonly ownerId: number,
    private readonly identity: IdentityKeyPair,
    private readonly now: number,
  ) {}

  async signedPreKey(): Promise<SignedPublicKey> {
    const [id] = await this.allocate("signed", 1);
    const priv = PrivateKey.generate();
    const pub = priv.getPublicKey();
    const record = SignedPreKeyRecord.new(
      id as number,
      this.now,
      pub,
      priv,
      this.identity.privateKey.sign(pub.serialize()),
    );
    await tables.signedPreKeys.insertMany(this.trx, this.ownerId, this.now, [
      { prekeyId: record.id(), recordEnc: this.seal("signal_signed_prekeys", record) },
    ]);
    return signedPublic(record);
  }

  async kyberPreKeys(count: number, lastResort: boolean): Promise<SignedPublicKey[]> {
    const ids = await this.allocate("kyber", count);
    const records = ids.map((id) => {
      const pair = KEMKeyPair.generate();
      const signature = this.identity.privateKey.sign(pair.getPublicKey().serialize());
      return KyberPreKeyRecord.new(id, this.now, pair, signature);
    });
    await tables.kyberPreKeys.insertMany(
      this.trx,
      this.ownerId,
      this.now,
      records.map((record) => ({
        prekeyId: record.id(),
        lastResort,
        recordEnc: this.seal("signal_kyber_prekeys", record),
      })),
    );
    return records.map(signedPublic);
  }

  async preKeys(count: number): Promise<OneTimePublicKey[]> {
    const ids = await this.allocate("prekey", count);
    const records = ids.map((id) => {
      const priv = PrivateKey.generate();
      return PreKeyRecord.new(id, priv.getPublicKey(), priv);
    });
    await tables.preKeys.insertMany(
      this.trx,
      this.ownerId,
      this.now,
      records.map((record) => ({
        prekeyId: record.id(),
        recordEnc: this.seal("signal_prekeys", record),
      })),
    );
    return records.map((record) => ({
      id: record.id(),
      publicKey: b64(record.publicKey().serialize()),
    }));
  }

  /**
   * Ids grow from the device's counter, wrapping after 2^24-1 and skipping every id that still has
   * a row (live, or consumed or superseded less than 90 days ago): ids are unique per space and
   * not reused while a late message may name them (§11.1).
   */
  private async allocate(space: IdSpace, count: number): Promise<number[]> {
    if (count <= 0) return [];
    let next = await tables.localDevices.nextId(this.trx, this.ownerId, space);
    if (next === undefined) throw new Error(`local device ${this.ownerId} not found`);
    const taken = new Set(await TAKEN_IDS[space](this.trx, this.ownerId));
    if (taken.size + count > MAX_PREKEY_ID) {
      throw new BridgeError("prekey-ids-exhausted", `no free ${space} prekey ids`);
    }
    const ids: number[] = [];
    while (ids.length < count) {
      if (next > MAX_PREKEY_ID) next = 1;
      if (!taken.has(next)) ids.push(next);
      next++;
    }
    await tables.localDevices.setNextId(this.trx, this.ownerId, space, next);
    return ids;
  }

  private seal(table: string, record: { id(): number; serialize(): Uint8Array }): Buffer {
    return this.ctx.vault.seal(record.serialize(), [table, this.ownerId, record.id()]);
  }
}

function signedPublic(record: {
  id(): number;
  publicKey(): { serialize(): Uint8Array };
  signature(): Uint8Array;
}): SignedPublicKey {
  return {
    id: record.id(),
    publicKey: b64(record.publicKey().serialize()),
    signature: b64(record.signature()),
  };
}

function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}
