import type { BareJid, DeviceId } from "../../../src/util/ids.js";
import type {
  FetchedBundle,
  KyberPreKey,
  PreKey,
  PublishedBundle,
} from "../../../src/interop/codec/keys.js";

interface StoredDevice {
  bundle: PublishedBundle;
  ec: PreKey[];
  kyber: KyberPreKey[];
}

/**
 * The scripted gatekeeper's key directory (§11.2-§11.5), just as far as the engine's tests need:
 * bundles and device lists per user, one-time prekeys handed out once each.
 */
export class FakeDirectory {
  private readonly devices = new Map<string, Map<number, StoredDevice>>();
  private readonly lists = new Map<string, { version: number; devices: DeviceId[] }>();
  /** Every publish, in order, as "bundle:<jid>/<device>" or "devices:<jid>:<ids>". */
  readonly publishes: string[] = [];
  readonly replenished: { jid: string; device: number; ec: number; kyber: number }[] = [];
  readonly rotations: { jid: string; device: number }[] = [];

  publishBundle(jid: BareJid, bundle: PublishedBundle): void {
    let user = this.devices.get(jid);
    if (user === undefined) {
      user = new Map();
      this.devices.set(jid, user);
    }
    user.set(bundle.device, {
      bundle,
      ec: [...(bundle.preKeys?.ec ?? [])],
      kyber: [...(bundle.preKeys?.kyber ?? [])],
    });
    this.publishes.push(`bundle:${jid}/${bundle.device}`);
  }

  /** Publishes the list, unless a listed device has no bundle (§11.3 `no-bundle`). */
  publishDevices(
    jid: BareJid,
    devices: readonly DeviceId[],
  ): { version: number } | { missing: DeviceId } {
    const user = this.devices.get(jid);
    const missing = devices.find((d) => user?.has(d) !== true);
    if (missing !== undefined) return { missing };
    const version = (this.lists.get(jid)?.version ?? 0) + 1;
    this.lists.set(jid, { version, devices: [...devices] });
    this.publishes.push(`devices:${jid}:${devices.join(",")}`);
    return { version };
  }

  list(jid: BareJid): { version: number; devices: DeviceId[] } | undefined {
    return this.lists.get(jid);
  }

  /** §11.4: at most one one-time EC prekey and one Kyber prekey per bundle, each handed out once. */
  fetch(jid: BareJid, devices: readonly DeviceId[]): FetchedBundle[] {
    const user = this.devices.get(jid);
    const listed = this.lists.get(jid)?.devices ?? [];
    const wanted = devices.length === 0 ? listed : devices.filter((d) => listed.includes(d));
    const out: FetchedBundle[] = [];
    for (const id of wanted) {
      const stored = user?.get(id);
      if (stored === undefined) continue;
      const { bundle } = stored;
      out.push({
        device: bundle.device,
        registration: bundle.registration,
        identity: bundle.identity,
        signedPreKey: bundle.signedPreKey,
        kyberPreKey: stored.kyber.shift() ?? bundle.lastResortKyberPreKey,
        preKey: stored.ec.shift(),
      });
    }
    return out;
  }

  addPreKeys(
    jid: BareJid,
    device: DeviceId,
    ec: PreKey[],
    kyber: KyberPreKey[],
  ): { ec: number; kyber: number } {
    const stored = this.devices.get(jid)?.get(device);
    if (stored === undefined) return { ec: 0, kyber: 0 };
    stored.ec.push(...ec);
    stored.kyber.push(...kyber);
    this.replenished.push({ jid, device, ec: ec.length, kyber: kyber.length });
    return { ec: stored.ec.length, kyber: stored.kyber.length };
  }

  counts(jid: BareJid, device: DeviceId): { ec: number; kyber: number } {
    const stored = this.devices.get(jid)?.get(device);
    return { ec: stored?.ec.length ?? 0, kyber: stored?.kyber.length ?? 0 };
  }
}
