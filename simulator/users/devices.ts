import { gatekeeperUserJid } from "../../src/interop/codec/index.js";
import type { SignalCrypto } from "../../src/interop/crypto/signal-crypto.js";
import { BridgeError } from "../../src/util/errors.js";
import type { BareJid, DeviceId, PhoneNumber } from "../../src/util/ids.js";
import type { Gatekeeper } from "../gatekeeper.js";
import { toOneTime, toPublished } from "./convert.js";

export const ONE_TIME_PREKEYS = 20;

/**
 * Devices of simulated gatekeeper users: each one a libsignal identity from SignalCrypto, all
 * devices of a user sharing the user's identity key (§11.2), published in the key directory.
 * Every call runs inside the gatekeeper's serial order.
 */
export class UserDevices {
  constructor(
    private readonly gatekeeper: Gatekeeper,
    private readonly crypto: SignalCrypto,
  ) {}

  /** One-time keys per publish, within the announced publish limits (§11.5). */
  private get batch(): number {
    const l = this.gatekeeper.ctx.limits;
    return Math.min(
      ONE_TIME_PREKEYS,
      l["max-ec-prekeys-per-publish"],
      l["max-kyber-prekeys-per-publish"],
      l["max-stored-prekeys"],
    );
  }

  jidOf(phone: PhoneNumber): BareJid {
    return gatekeeperUserJid(phone, this.gatekeeper.ctx.settings.domain);
  }

  /** The user's devices: those in its published device list. */
  async active(jid: BareJid): Promise<DeviceId[]> {
    return this.gatekeeper.services.keys.devicesOf(jid);
  }

  /** Creates a device, publishes its bundle, and (with `publishList`) the new device list. */
  async add(jid: BareJid, deviceId?: DeviceId, publishList = true): Promise<DeviceId> {
    const { bundle } = await this.crypto.createLocalIdentity(jid, {
      oneTimePreKeys: this.batch,
      ...(deviceId === undefined ? {} : { deviceId }),
    });
    await this.gatekeeper.services.keys.publishBundle(jid, toPublished(bundle));
    if (publishList) {
      const list = await this.active(jid);
      await this.gatekeeper.services.keys.publishDevices(jid, [...list, bundle.deviceId]);
    }
    return bundle.deviceId;
  }

  /** Drops a device from the list; its local keys stay unused (SignalCrypto deletes per user). */
  async remove(jid: BareJid, deviceId: DeviceId): Promise<void> {
    const devices = await this.active(jid);
    if (!devices.includes(deviceId)) throw new BridgeError("no-such-device", `${jid}/${deviceId}`);
    await this.gatekeeper.services.keys.publishDevices(
      jid,
      devices.filter((d) => d !== deviceId),
    );
  }

  /**
   * A reinstall with a new identity (§11.2 reset): all keys are dropped, one new device publishes
   * with `reset='true'`; the directory then lists it alone and tells watchers.
   */
  async resetIdentity(jid: BareJid): Promise<DeviceId> {
    await this.crypto.deleteLocalUser(jid);
    const { bundle } = await this.crypto.createLocalIdentity(jid, {
      oneTimePreKeys: this.batch,
    });
    await this.gatekeeper.services.keys.publishBundle(jid, toPublished(bundle, true));
    return bundle.deviceId;
  }

  /** Tops up one-time prekeys after `prekeys-low` (§11.7). */
  async replenish(jid: BareJid, deviceId: DeviceId): Promise<void> {
    const device = await this.crypto.device(jid, deviceId);
    const keys = await device.replenish({ ec: this.batch, kyber: this.batch });
    await this.gatekeeper.services.keys.uploadPreKeys(jid, deviceId, toOneTime(keys));
  }
}
