import type { Knex } from "knex";
import type { BareJid, DeviceId } from "../../util/ids.js";
import type { Logger } from "../../util/log.js";
import type { Limits } from "../codec/limits.js";
import {
  decodeBundlesResult,
  decodeDeviceList,
  decodePreKeyCounts,
  encodeBundlesFetch,
  encodeDevicesFetch,
  encodeDevicesPublish,
  encodePreKeysUpload,
  encodePublishedBundle,
  encodeRotate,
  type FetchedBundle,
} from "../codec/keys.js";
import { decodeBase64 } from "../crypto/base64.js";
import type { DeviceCrypto, SignalCrypto } from "../crypto/signal-crypto.js";
import type {
  DeviceAddress,
  PublishableBundle,
  RemoteBundle,
  SignedPublicKey,
} from "../crypto/types.js";
import * as tables from "../store/index.js";
import { GroupStore } from "./groups.js";
import type { GatekeeperIq } from "./iq-client.js";

interface KeyDirectoryOptions {
  readonly gk: GatekeeperIq;
  readonly crypto: SignalCrypto;
  readonly knex: Knex;
  readonly now: () => number;
  readonly logger: Logger;
  /** The limits of the latest hello (§8.3). */
  readonly limits: () => Limits;
}

/** One-time keys kept per kind; §11.5 asks for at least 50. */
const PREKEY_TARGET = 100;

/**
 * The key directory as the bridge uses it (§11): publishing its users' bundles and device lists
 * (bundle before list, P4), replenishing and rotating their keys (P5), and fetching the device
 * lists and bundles of contacts to set up sessions (§12.3 steps 2-3).
 */
export class KeyDirectory {
  private readonly log: Logger;
  /** The groups whose sender key a device gone from a fetched list makes rotate (§17.5). */
  private readonly groups: GroupStore;

  constructor(private readonly options: KeyDirectoryOptions) {
    this.log = options.logger.child({ component: "key-directory" });
    this.groups = new GroupStore(options.knex, options.now);
  }

  /** The contact's devices: the cached list, or a fetched one (§11.3) when none or `refresh`. */
  async deviceIds(
    local: BareJid,
    contact: BareJid,
    { refresh = false }: { refresh?: boolean } = {},
  ): Promise<DeviceId[]> {
    const { crypto, gk } = this.options;
    if (!refresh) {
      const cached = await crypto.deviceLists.get(contact);
      if (cached !== null) return cached.devices.map((d) => d.id);
    }
    const payload = await gk.request(
      local,
      "get",
      encodeDevicesFetch(contact),
      "device-list fetch",
    );
    if (payload === undefined) throw new Error(`device-list fetch of ${contact}: empty result`);
    const list = decodeDeviceList(payload);
    await this.storeDeviceList(contact, list.version, list.devices);
    return list.devices;
  }

  /**
   * Stores a list learnt from the directory (§11.3 fetch, `stale-device-list`). A device gone
   * from the cached list asks for a new sender key in every group with the contact (§17.5)
   * before the list is stored: a group send that sees the new list also sees the rotation. The
   * devices-changed notice asks for it too, but may come later than the next send.
   */
  async storeDeviceList(
    contact: BareJid,
    version: number | null,
    devices: readonly DeviceId[],
  ): Promise<void> {
    const { crypto } = this.options;
    const cached = await crypto.deviceLists.get(contact);
    // What the cache ignores (an older version) asks for nothing either.
    const older = version !== null && cached !== null && version < cached.version;
    if (!older && cached?.devices.some((d) => !devices.includes(d.id)) === true) {
      await this.groups.markRotationForAll(contact);
    }
    await crypto.storeDeviceList(contact, version, devices);
  }

  /**
   * Sets up sessions where there is none or it expired (§12.3 step 3). Returns the devices for
   * which the directory returned no bundle (they no longer exist).
   */
  async ensureSessions(
    device: DeviceCrypto,
    recipients: readonly DeviceAddress[],
  ): Promise<DeviceAddress[]> {
    const missing = await device.sessions.devicesWithoutSession(recipients);
    const byJid = new Map<BareJid, DeviceId[]>();
    for (const r of missing) byJid.set(r.jid, [...(byJid.get(r.jid) ?? []), r.device]);
    const absent: DeviceAddress[] = [];
    for (const [jid, ids] of byJid) {
      const bundles = await this.fetchBundles(device.jid, jid, ids);
      for (const id of ids) {
        const bundle = bundles.find((b) => b.device === id);
        if (bundle === undefined) absent.push({ jid, device: id });
        else await device.sessions.processBundle(jid, toRemoteBundle(bundle));
      }
    }
    return absent;
  }

  async fetchBundles(
    local: BareJid,
    contact: BareJid,
    devices: readonly DeviceId[],
  ): Promise<FetchedBundle[]> {
    const payload = await this.options.gk.request(
      local,
      "get",
      encodeBundlesFetch(contact, devices),
      "bundle fetch",
    );
    if (payload === undefined) return [];
    return decodeBundlesResult(payload).bundles;
  }

  /**
   * Publishes the device's bundle, then the user's device list with it (P4). One-time keys beyond
   * what one publish may carry (`max-*-prekeys-per-publish`) follow in `<prekeys>` sets before
   * the list, so that the device is complete when it becomes visible.
   */
  async publishDevice(
    device: DeviceCrypto,
    { reset = false }: { reset?: boolean } = {},
  ): Promise<void> {
    const limits = this.options.limits();
    const bundle = await device.bundle();
    const stored = limits["max-stored-prekeys"];
    const ec = bundle.preKeys.slice(0, stored);
    const kyber = bundle.kyberPreKeys.slice(0, stored);
    const ecPer = limits["max-ec-prekeys-per-publish"];
    const kyberPer = limits["max-kyber-prekeys-per-publish"];
    await this.options.gk.request(
      device.jid,
      "set",
      encodePublishedBundle(
        toPublishedBundle(
          { ...bundle, preKeys: ec.slice(0, ecPer), kyberPreKeys: kyber.slice(0, kyberPer) },
          reset,
        ),
      ),
      "bundle publish",
    );
    for (let i = 1; i * ecPer < ec.length || i * kyberPer < kyber.length; i++) {
      await this.options.gk.request(
        device.jid,
        "set",
        encodePreKeysUpload(device.deviceId, {
          ec: ec.slice(i * ecPer, (i + 1) * ecPer).map(oneTime),
          kyber: kyber
            .slice(i * kyberPer, (i + 1) * kyberPer)
            .map((k) => ({ ...signed(k), lastResort: false })),
        }),
        "prekey publish",
      );
    }
    const devices = await this.options.crypto.localDevices(device.jid);
    await this.publishDeviceList(device.jid, devices);
    await tables.providerDevices.recordPublished(
      this.options.knex,
      device.jid,
      device.deviceId,
      this.options.now(),
    );
    this.log.info({ jid: device.jid, device: device.deviceId }, "device published");
  }

  /** Replaces the user's device list (§11.3); an empty list makes the user unreachable. */
  async publishDeviceList(
    local: BareJid,
    devices: readonly DeviceId[],
  ): Promise<number | undefined> {
    const payload = await this.options.gk.request(
      local,
      "set",
      encodeDevicesPublish(devices),
      "device-list publish",
    );
    return payload === undefined ? undefined : decodeDeviceList(payload).version;
  }

  /**
   * Tops one-time prekeys up to PREKEY_TARGET (§11.5, §11.7), within the per-publish and stored
   * limits. `counts` are the gatekeeper's (from `prekeys-low`); Kyber is left alone when the
   * notice omits it.
   */
  async replenish(
    device: DeviceCrypto,
    counts: { ec: number; kyber: number | undefined },
    limits: Limits,
  ): Promise<{ ec: number; kyber: number }> {
    const wanted = (have: number, perPublish: number): number =>
      Math.max(0, Math.min(PREKEY_TARGET - have, perPublish, limits["max-stored-prekeys"] - have));
    const ec = wanted(counts.ec, limits["max-ec-prekeys-per-publish"]);
    const kyber =
      counts.kyber === undefined
        ? 0
        : wanted(counts.kyber, limits["max-kyber-prekeys-per-publish"]);
    if (ec === 0 && kyber === 0) return { ec: counts.ec, kyber: counts.kyber ?? 0 };
    const keys = await device.replenish({ ec, kyber });
    const payload = await this.options.gk.request(
      device.jid,
      "set",
      encodePreKeysUpload(device.deviceId, {
        ec: keys.preKeys.map(oneTime),
        kyber: keys.kyberPreKeys.map((k) => ({ ...signed(k), lastResort: false })),
      }),
      "prekey replenish",
    );
    const result = payload === undefined ? undefined : decodePreKeyCounts(payload);
    this.log.info(
      { jid: device.jid, device: device.deviceId, ec: result?.ec, kyber: result?.kyber },
      "prekeys replenished",
    );
    return {
      ec: result?.ec ?? counts.ec + ec,
      kyber: result?.kyber ?? (counts.kyber ?? 0) + kyber,
    };
  }

  /** Rotates the signed and last-resort Kyber prekeys (§11.6). */
  async rotate(device: DeviceCrypto): Promise<void> {
    const rotation = await device.rotateSignedPreKey();
    await this.options.gk.request(
      device.jid,
      "set",
      encodeRotate({
        device: device.deviceId,
        signedPreKey: signed(rotation.signedPreKey),
        lastResortKyberPreKey: { ...signed(rotation.lastResortKyberPreKey), lastResort: true },
      }),
      "signed prekey rotation",
    );
    await tables.providerDevices.recordRotated(
      this.options.knex,
      device.jid,
      device.deviceId,
      this.options.now(),
    );
    this.log.info({ jid: device.jid, device: device.deviceId }, "signed prekeys rotated");
  }

  /** Local devices whose keys were last rotated before `cutoff`. */
  async dueForRotation(cutoff: number): Promise<{ jid: BareJid; device: DeviceId }[]> {
    return tables.providerDevices.rotatedBefore(this.options.knex, cutoff);
  }

  /** Every local device this engine published. */
  async publishedDevices(): Promise<{ jid: BareJid; device: DeviceId }[]> {
    return this.dueForRotation(Number.MAX_SAFE_INTEGER);
  }

  async forgetUser(local: BareJid): Promise<void> {
    await tables.providerDevices.deleteOf(this.options.knex, local);
  }
}

const oneTime = (k: { id: number; publicKey: string }): { id: number; publicKey: Uint8Array } => ({
  id: k.id,
  publicKey: decodeBase64(k.publicKey),
});

const signed = (
  k: SignedPublicKey,
): { id: number; publicKey: Uint8Array; signature: Uint8Array } => ({
  id: k.id,
  publicKey: decodeBase64(k.publicKey),
  signature: decodeBase64(k.signature),
});

export function toPublishedBundle(
  b: PublishableBundle,
  reset: boolean,
): Parameters<typeof encodePublishedBundle>[0] {
  return {
    device: b.deviceId,
    registration: b.registrationId,
    reset,
    identity: decodeBase64(b.identityKey),
    signedPreKey: signed(b.signedPreKey),
    lastResortKyberPreKey: { ...signed(b.lastResortKyberPreKey), lastResort: true },
    preKeys: {
      ec: b.preKeys.map(oneTime),
      kyber: b.kyberPreKeys.map((k) => ({ ...signed(k), lastResort: false })),
    },
  };
}

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString("base64");

export function toRemoteBundle(b: FetchedBundle): RemoteBundle {
  return {
    deviceId: b.device,
    registrationId: b.registration,
    identityKey: b64(b.identity),
    signedPreKey: {
      id: b.signedPreKey.id,
      publicKey: b64(b.signedPreKey.publicKey),
      signature: b64(b.signedPreKey.signature),
    },
    kyberPreKey: {
      id: b.kyberPreKey.id,
      publicKey: b64(b.kyberPreKey.publicKey),
      signature: b64(b.kyberPreKey.signature),
    },
    preKey: b.preKey === undefined ? null : { id: b.preKey.id, publicKey: b64(b.preKey.publicKey) },
  };
}
