import type { Knex } from "knex";
import type { KyberPreKey, PreKey, SignedPreKey } from "../../src/interop/codec/index.js";
import type { BareJid, DeviceId } from "../../src/util/ids.js";

export interface KeyUser {
  jid: BareJid;
  /** Empty until the first bundle sets the user's identity (§11.2). */
  identity: Uint8Array;
  version: number;
  devices: DeviceId[];
  listPublished: boolean;
}

export interface StoredBundle {
  device: DeviceId;
  registration: number;
  signedPreKey: SignedPreKey;
  lastResort: KyberPreKey;
  everKyber: boolean;
}

interface UserRow {
  jid: string;
  identity: Buffer;
  version: number;
  devices: string;
  list_published: number | boolean;
}

interface BundleRow {
  jid: string;
  device: number;
  registration: number;
  spk_id: number;
  spk: Buffer;
  spk_sig: Buffer;
  lr_id: number;
  lr: Buffer;
  lr_sig: Buffer;
  ever_kyber: number | boolean;
}

const bytes = (b: Buffer): Uint8Array => new Uint8Array(b);

/** Row access for the key directory tables (gk_key_users, gk_bundles, gk_prekeys). */
export class KeyStore {
  constructor(private readonly knex: Knex) {}

  async user(jid: BareJid): Promise<KeyUser | undefined> {
    const row = (await this.knex("gk_key_users").where({ jid }).first()) as UserRow | undefined;
    if (row === undefined) return undefined;
    return {
      jid,
      identity: bytes(row.identity),
      version: row.version,
      devices: JSON.parse(row.devices) as DeviceId[],
      listPublished: Boolean(row.list_published),
    };
  }

  async saveUser(u: KeyUser): Promise<void> {
    await this.knex("gk_key_users")
      .insert({
        jid: u.jid,
        identity: Buffer.from(u.identity),
        version: u.version,
        devices: JSON.stringify(u.devices),
        list_published: u.listPublished,
      })
      .onConflict("jid")
      .merge();
  }

  async bundle(jid: BareJid, device: DeviceId): Promise<StoredBundle | undefined> {
    const row = (await this.knex("gk_bundles").where({ jid, device }).first()) as
      BundleRow | undefined;
    if (row === undefined) return undefined;
    return {
      device,
      registration: row.registration,
      signedPreKey: { id: row.spk_id, publicKey: bytes(row.spk), signature: bytes(row.spk_sig) },
      lastResort: {
        id: row.lr_id,
        publicKey: bytes(row.lr),
        signature: bytes(row.lr_sig),
        lastResort: true,
      },
      everKyber: Boolean(row.ever_kyber),
    };
  }

  async bundleDevices(jid: BareJid): Promise<DeviceId[]> {
    const rows = (await this.knex("gk_bundles").select("device").where({ jid })) as {
      device: number;
    }[];
    return rows.map((r) => r.device as DeviceId);
  }

  async saveBundle(jid: BareJid, b: StoredBundle): Promise<void> {
    await this.knex("gk_bundles")
      .insert({
        jid,
        device: b.device,
        registration: b.registration,
        spk_id: b.signedPreKey.id,
        spk: Buffer.from(b.signedPreKey.publicKey),
        spk_sig: Buffer.from(b.signedPreKey.signature),
        lr_id: b.lastResort.id,
        lr: Buffer.from(b.lastResort.publicKey),
        lr_sig: Buffer.from(b.lastResort.signature),
        ever_kyber: b.everKyber,
      })
      .onConflict(["jid", "device"])
      .merge();
  }

  /** Deletes a device's bundle and one-time prekeys. */
  async dropDevice(jid: BareJid, device: DeviceId): Promise<void> {
    await this.knex("gk_bundles").where({ jid, device }).delete();
    await this.knex("gk_prekeys").where({ jid, device }).delete();
  }

  async preKeyIds(jid: BareJid, device: DeviceId, kind: "ec" | "kyber"): Promise<number[]> {
    const rows = (await this.knex("gk_prekeys").select("key_id").where({ jid, device, kind })) as {
      key_id: number;
    }[];
    return rows.map((r) => r.key_id);
  }

  async addPreKeys(
    jid: BareJid,
    device: DeviceId,
    ec: readonly PreKey[],
    kyber: readonly KyberPreKey[],
  ): Promise<void> {
    const rows = [
      ...ec.map((k) => ({ kind: "ec", key: k, signature: null })),
      ...kyber.map((k) => ({ kind: "kyber", key: k, signature: Buffer.from(k.signature) })),
    ].map((r) => ({
      jid,
      device,
      kind: r.kind,
      key_id: r.key.id,
      public_key: Buffer.from(r.key.publicKey),
      signature: r.signature,
    }));
    // SQLite limits bound variables per statement; insert in slices.
    for (let i = 0; i < rows.length; i += 100) {
      await this.knex("gk_prekeys").insert(rows.slice(i, i + 100));
    }
  }

  /** Removes and returns the oldest-inserted one-time prekey of a kind, if any. */
  async takePreKey(
    jid: BareJid,
    device: DeviceId,
    kind: "ec" | "kyber",
  ): Promise<KyberPreKey | undefined> {
    const row = (await this.knex("gk_prekeys")
      .where({ jid, device, kind })
      .orderBy("key_id")
      .first()) as { key_id: number; public_key: Buffer; signature: Buffer | null } | undefined;
    if (row === undefined) return undefined;
    await this.knex("gk_prekeys").where({ jid, device, kind, key_id: row.key_id }).delete();
    return {
      id: row.key_id,
      publicKey: bytes(row.public_key),
      signature: row.signature === null ? new Uint8Array() : bytes(row.signature),
      lastResort: false,
    };
  }

  async counts(jid: BareJid, device: DeviceId): Promise<{ ec: number; kyber: number }> {
    const rows = (await this.knex("gk_prekeys")
      .select("kind")
      .count({ n: "*" })
      .where({ jid, device })
      .groupBy("kind")) as { kind: string; n: number | string }[];
    const of = (kind: string): number => Number(rows.find((r) => r.kind === kind)?.n ?? 0);
    return { ec: of("ec"), kyber: of("kyber") };
  }
}
