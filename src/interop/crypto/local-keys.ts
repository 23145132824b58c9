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
export const MAX_PREKEY_ID = 16_777_215;
/** Superseded and consumed keys (and their ids) are kept this long (§11.6, P5). */
export const KEY_RETENTION_MS = 90 * 24 * 3600 * 1000;
export const DEFAULT_ONE_TIME_PREKEYS = 100;

type Space = "prekey" | "signed" | "kyber";
const SPACES: Record<Space, { table: string; counter: string }> = {
  prekey: { table: "signal_prekeys", counter: "next_prekey_id" },
  signed: { table: "signal_signed_prekeys", counter: "next_signed_prekey_id" },
  kyber: { table: "signal_kyber_prekeys", counter: "next_kyber_prekey_id" },
};

export interface CreatedDevice {
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
    const used = new Set(
      (
        (await trx("signal_local_devices").select("device_id").where({ jid: userJid })) as {
          device_id: number;
        }[]
      ).map((row) => row.device_id),
    );
    const deviceId = options.deviceId ?? pickDeviceId(used);
    if (used.has(deviceId)) {
      throw new BridgeError("device-exists", `${userJid} already has a device ${deviceId}`);
    }
    const registrationId = randomInt(1, 16381);
    // Counters start at a random point, so that a reinstall does not hand out the ids of the
    // previous installation's keys, which late messages may still name.
    const start = () => randomInt(1, MAX_PREKEY_ID >> 1);
    const inserted = (await trx("signal_local_devices")
      .insert({
        jid: userJid,
        device_id: deviceId,
        registration_id: registrationId,
        next_prekey_id: start(),
        next_signed_prekey_id: start(),
        next_kyber_prekey_id: start(),
        created_at: now,
      })
      .returning("id")) as ({ id: number } | number)[];
    const first = inserted[0];
    if (first === undefined) throw new Error("device row insert returned no id");
    const ownerId = typeof first === "number" ? first : first.id;
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
    await trx("signal_signed_prekeys")
      .where({ owner_id: device.ownerId })
      .whereNull("superseded_at")
      .update({ superseded_at: now });
    await trx("signal_kyber_prekeys")
      .where({ owner_id: device.ownerId, last_resort: true })
      .whereNull("superseded_at")
      .update({ superseded_at: now });
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
    const owner = { owner_id: device.ownerId };
    await trx("signal_signed_prekeys").where(owner).where("superseded_at", "<", cutoff).delete();
    const expiredKyber = trx("signal_kyber_prekeys")
      .select("prekey_id")
      .where(owner)
      .where((q) => q.where("superseded_at", "<", cutoff).orWhere("consumed_at", "<", cutoff));
    await trx("signal_kyber_used").where(owner).whereIn("kyber_prekey_id", expiredKyber).delete();
    await trx("signal_kyber_prekeys")
      .where(owner)
      .where((q) => q.where("superseded_at", "<", cutoff).orWhere("consumed_at", "<", cutoff))
      .delete();
    await trx("signal_prekeys").where(owner).where("consumed_at", "<", cutoff).delete();
  });
}

/** Unconsumed one-time prekeys, as the directory counts them (§11.5, E17). */
export async function countPreKeys(device: DeviceState): Promise<{ ec: number; kyber: number }> {
  const knex = device.ctx.knex;
  const owner = { owner_id: device.ownerId };
  const ec = await knex("signal_prekeys").where(owner).whereNotNull("record_enc").count("* as n");
  const kyber = await knex("signal_kyber_prekeys")
    .where({ ...owner, last_resort: false })
    .whereNotNull("record_enc")
    .count("* as n");
  return { ec: Number(ec[0]?.n ?? 0), kyber: Number(kyber[0]?.n ?? 0) };
}

/** The device's current public material as a full bundle (for a re-publish after reconnect). */
export async function currentBundle(device: DeviceState): Promise<PublishableBundle> {
  const { knex, vault } = device.ctx;
  const owner = { owner_id: device.ownerId };
  const signedRow = (await knex("signal_signed_prekeys")
    .where(owner)
    .whereNull("superseded_at")
    .orderBy("created_at", "desc")
    .first()) as { prekey_id: number; record_enc: Buffer } | undefined;
  const kyberRows = (await knex("signal_kyber_prekeys")
    .where(owner)
    .whereNull("superseded_at")
    .whereNotNull("record_enc")
    .orderBy("prekey_id")) as { prekey_id: number; record_enc: Buffer; last_resort: unknown }[];
  const preKeyRows = (await knex("signal_prekeys")
    .where(owner)
    .whereNotNull("record_enc")
    .orderBy("prekey_id")) as { prekey_id: number; record_enc: Buffer }[];
  const lastResortRow = kyberRows.find((row) => Boolean(row.last_resort));
  if (signedRow === undefined || lastResortRow === undefined) {
    throw new BridgeError("keys-missing", `${device.address.toString()} has no current prekeys`);
  }
  const signed = SignedPreKeyRecord.deserialize(
    vault.open(signedRow.record_enc, [
      "signal_signed_prekeys",
      device.ownerId,
      signedRow.prekey_id,
    ]),
  );
  const kyber = (row: { prekey_id: number; record_enc: Buffer }): SignedPublicKey =>
    signedPublic(
      KyberPreKeyRecord.deserialize(
        vault.open(row.record_enc, ["signal_kyber_prekeys", device.ownerId, row.prekey_id]),
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
        vault.open(row.record_enc, ["signal_prekeys", device.ownerId, row.prekey_id]),
      );
      return { id: record.id(), publicKey: b64(record.publicKey().serialize()) };
    }),
    kyberPreKeys: kyberRows.filter((row) => !row.last_resort).map(kyber),
  };
}

async function ensureIdentity(
  ctx: CryptoContext,
  trx: Knex.Transaction,
  userJid: BareJid,
  now: number,
): Promise<IdentityKeyPair> {
  const ref = ["signal_local_identities", userJid] as const;
  const row = (await trx("signal_local_identities").where({ jid: userJid }).first()) as
    { key_pair_enc: Buffer } | undefined;
  if (row !== undefined) return IdentityKeyPair.deserialize(ctx.vault.open(row.key_pair_enc, ref));
  const pair = IdentityKeyPair.generate();
  await trx("signal_local_identities").insert({
    jid: userJid,
    key_pair_enc: ctx.vault.seal(pair.serialize(), ref),
    public_key: Buffer.from(pair.publicKey.serialize()),
    created_at: now,
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
    await this.insert("signal_signed_prekeys", [
      { prekey_id: record.id(), record_enc: this.seal("signal_signed_prekeys", record) },
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
    await this.insert(
      "signal_kyber_prekeys",
      records.map((record) => ({
        prekey_id: record.id(),
        last_resort: lastResort,
        record_enc: this.seal("signal_kyber_prekeys", record),
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
    await this.insert(
      "signal_prekeys",
      records.map((record) => ({
        prekey_id: record.id(),
        record_enc: this.seal("signal_prekeys", record),
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
  private async allocate(space: Space, count: number): Promise<number[]> {
    if (count <= 0) return [];
    const { table, counter } = SPACES[space];
    const device = (await this.trx("signal_local_devices")
      .select(counter)
      .where({ id: this.ownerId })
      .first()) as Record<string, number> | undefined;
    let next = device?.[counter];
    if (next === undefined) throw new Error(`local device ${this.ownerId} not found`);
    const taken = new Set(
      (
        (await this.trx(table).select("prekey_id").where({ owner_id: this.ownerId })) as {
          prekey_id: number;
        }[]
      ).map((row) => row.prekey_id),
    );
    if (taken.size + count > MAX_PREKEY_ID) {
      throw new BridgeError("prekey-ids-exhausted", `no free ${space} prekey ids`);
    }
    const ids: number[] = [];
    while (ids.length < count) {
      if (next > MAX_PREKEY_ID) next = 1;
      if (!taken.has(next)) ids.push(next);
      next++;
    }
    await this.trx("signal_local_devices")
      .where({ id: this.ownerId })
      .update({ [counter]: next });
    return ids;
  }

  private seal(table: string, record: { id(): number; serialize(): Uint8Array }): Buffer {
    return this.ctx.vault.seal(record.serialize(), [table, this.ownerId, record.id()]);
  }

  private async insert(table: string, rows: Record<string, unknown>[]): Promise<void> {
    const full = rows.map((row) => ({ owner_id: this.ownerId, created_at: this.now, ...row }));
    // Small chunks stay below SQLite's bound-parameter limit.
    for (let i = 0; i < full.length; i += 50) await this.trx(table).insert(full.slice(i, i + 50));
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

export function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}
