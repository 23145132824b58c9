import {
  encodeDevicesChanged,
  encodePreKeysLow,
  type DeviceChange,
  type FetchedBundle,
  type OneTimePreKeys,
  type PublishedBundle,
  type Rotation,
} from "../../src/interop/codec/index.js";
import type { BareJid, DeviceId } from "../../src/util/ids.js";
import { domainOf, providerByDomain, type GatekeeperContext } from "../context.js";
import { notify } from "../delivery/notify.js";
import type { DeliveryQueue } from "../delivery/queue.js";
import { refuse, refuseStandard } from "../errors.js";
import { HOUR_MS } from "../state/counters.js";
import { KeyStore, type KeyUser } from "../state/key-store.js";
import { checkEcKey, identityKeyOf, verifySigned } from "./key-verify.js";

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a).equals(Buffer.from(b));

/**
 * The key directory (§11, E17, E18) for gatekeeper and provider users alike: bundles with
 * verified signatures, one identity per user, device lists with versions, one-time prekey
 * hand-out, and the `prekeys-low` and `devices-changed` notifications.
 */
export class KeyDirectory {
  readonly store: KeyStore;
  /** Told when a gatekeeper user's device runs low, so the simulated device can replenish. */
  onLocalPreKeysLow: (jid: BareJid, device: DeviceId) => Promise<void> = async () => undefined;

  constructor(
    private readonly ctx: GatekeeperContext,
    private readonly queue: DeliveryQueue,
  ) {
    this.store = new KeyStore(ctx.knex);
  }

  /** The published device list, or undefined if the user never published one. */
  async deviceList(jid: BareJid): Promise<{ version: number; devices: DeviceId[] } | undefined> {
    const user = await this.store.user(jid);
    return user === undefined || !user.listPublished
      ? undefined
      : { version: user.version, devices: user.devices };
  }

  async devicesOf(jid: BareJid): Promise<DeviceId[]> {
    return (await this.deviceList(jid))?.devices ?? [];
  }

  async publishBundle(jid: BareJid, b: PublishedBundle): Promise<void> {
    const identity = identityKeyOf(b.identity);
    verifySigned(identity, b.signedPreKey, "ec");
    verifySigned(identity, b.lastResortKyberPreKey, "kyber");
    const oneTime = b.preKeys ?? { ec: [], kyber: [] };
    this.checkBatch(oneTime, { ec: 0, kyber: 0 });
    oneTime.ec.forEach(checkEcKey);
    for (const k of oneTime.kyber) verifySigned(identity, k, "kyber");
    unique(
      oneTime.ec.map((k) => k.id),
      "EC prekey",
    );
    unique([b.lastResortKyberPreKey.id, ...oneTime.kyber.map((k) => k.id)], "Kyber prekey");
    if (b.device > 127) throw refuseStandard("bad-request", "modify", "device id above 127");

    const user = (await this.store.user(jid)) ?? emptyUser(jid);
    const hadIdentity = user.identity.length > 0;
    const reset = hadIdentity && !sameBytes(user.identity, b.identity);
    if (reset && !b.reset) {
      throw refuse({ name: "identity-mismatch" }, `bundle identity of ${jid} differs`);
    }
    const previous = [...user.devices];
    user.identity = b.identity;
    if (reset) {
      for (const device of await this.store.bundleDevices(jid)) {
        if (device !== b.device) await this.store.dropDevice(jid, device);
      }
    }
    await this.store.dropDevice(jid, b.device);
    await this.store.saveBundle(jid, {
      device: b.device,
      registration: b.registration,
      signedPreKey: b.signedPreKey,
      lastResort: b.lastResortKyberPreKey,
      everKyber: oneTime.kyber.length > 0,
    });
    await this.store.addPreKeys(jid, b.device, oneTime.ec, oneTime.kyber);
    if (reset) {
      user.devices = [b.device];
      user.version += 1;
      user.listPublished = true;
      await this.store.saveUser(user);
      await this.announce(jid, user, previous, new Map([[b.device, "identity-changed"]]));
    } else if (user.listPublished && user.devices.includes(b.device)) {
      // §11.3: a listed device's new bundle changes the list's version (see report on E17).
      user.version += 1;
      await this.store.saveUser(user);
      await this.announce(jid, user, previous, new Map([[b.device, "replaced"]]));
    } else {
      await this.store.saveUser(user);
    }
  }

  async publishDevices(jid: BareJid, devices: readonly DeviceId[]): Promise<number> {
    if (devices.length > this.ctx.limits["max-devices-per-user"]) {
      throw refuse({ name: "too-many-devices" }, `${devices.length} devices for ${jid}`);
    }
    for (const device of devices) {
      if ((await this.store.bundle(jid, device)) === undefined) {
        throw refuse({ name: "no-bundle", device }, `no bundle for ${jid}/${device}`);
      }
    }
    const user = (await this.store.user(jid)) ?? emptyUser(jid);
    const previous = [...user.devices];
    const sorted = [...devices].sort((a, b) => a - b);
    const changed =
      !user.listPublished || sorted.join(",") !== [...previous].sort((a, b) => a - b).join(",");
    for (const device of await this.store.bundleDevices(jid)) {
      if (!sorted.includes(device)) await this.store.dropDevice(jid, device);
    }
    if (!changed) return user.version;
    user.devices = sorted;
    user.version += 1;
    const first = !user.listPublished;
    user.listPublished = true;
    await this.store.saveUser(user);
    if (!first || sorted.length > 0) await this.announce(jid, user, previous, new Map());
    return user.version;
  }

  /**
   * Bundles of the requested devices (all when none are named), each with at most one one-time
   * EC prekey and exactly one Kyber prekey, one-time before last-resort (§11.4). Hand-outs beyond
   * `prekey-handouts-per-hour` per device and kind fall back to the last-resort key only.
   */
  async fetchBundles(jid: BareJid, requested: readonly DeviceId[]): Promise<FetchedBundle[]> {
    const user = await this.store.user(jid);
    if (user === undefined) return [];
    const devices =
      requested.length === 0 ? user.devices : requested.filter((d) => user.devices.includes(d));
    const out: FetchedBundle[] = [];
    for (const device of devices) {
      const bundle = await this.store.bundle(jid, device);
      if (bundle === undefined) continue;
      const ec = await this.handOut(jid, device, "ec");
      const kyber = await this.handOut(jid, device, "kyber");
      out.push({
        device,
        registration: bundle.registration,
        identity: user.identity,
        signedPreKey: bundle.signedPreKey,
        kyberPreKey: kyber ?? bundle.lastResort,
        preKey: ec === undefined ? undefined : { id: ec.id, publicKey: ec.publicKey },
      });
      if (ec !== undefined || kyber !== undefined) await this.checkLow(jid, device);
    }
    return out;
  }

  async uploadPreKeys(
    jid: BareJid,
    device: DeviceId,
    keys: OneTimePreKeys,
  ): Promise<{ ec: number; kyber: number }> {
    const user = await this.store.user(jid);
    const bundle = await this.store.bundle(jid, device);
    if (user === undefined || bundle === undefined) {
      throw refuse({ name: "no-bundle", device }, `no bundle for ${jid}/${device}`);
    }
    const identity = identityKeyOf(user.identity);
    this.checkBatch(keys, await this.store.counts(jid, device));
    keys.ec.forEach(checkEcKey);
    for (const k of keys.kyber) verifySigned(identity, k, "kyber");
    const ecIds = await this.store.preKeyIds(jid, device, "ec");
    const kyberIds = [bundle.lastResort.id, ...(await this.store.preKeyIds(jid, device, "kyber"))];
    unique([...ecIds, ...keys.ec.map((k) => k.id)], "EC prekey");
    unique([...kyberIds, ...keys.kyber.map((k) => k.id)], "Kyber prekey");
    await this.store.addPreKeys(jid, device, keys.ec, keys.kyber);
    if (keys.kyber.length > 0 && !bundle.everKyber) {
      await this.store.saveBundle(jid, { ...bundle, everKyber: true });
    }
    return this.store.counts(jid, device);
  }

  async counts(jid: BareJid, device: DeviceId): Promise<{ ec: number; kyber: number }> {
    if ((await this.store.bundle(jid, device)) === undefined) {
      throw refuse({ name: "no-bundle", device }, `no bundle for ${jid}/${device}`);
    }
    return this.store.counts(jid, device);
  }

  async rotate(jid: BareJid, r: Rotation): Promise<void> {
    const user = await this.store.user(jid);
    const bundle = await this.store.bundle(jid, r.device);
    if (user === undefined || bundle === undefined) {
      throw refuse({ name: "no-bundle", device: r.device }, `no bundle for ${jid}/${r.device}`);
    }
    const identity = identityKeyOf(user.identity);
    verifySigned(identity, r.signedPreKey, "ec");
    if (r.signedPreKey.id === bundle.signedPreKey.id) conflict("signed prekey", r.signedPreKey.id);
    const lastResort = r.lastResortKyberPreKey;
    if (lastResort !== undefined) {
      verifySigned(identity, lastResort, "kyber");
      const taken = [bundle.lastResort.id, ...(await this.store.preKeyIds(jid, r.device, "kyber"))];
      if (taken.includes(lastResort.id)) conflict("Kyber prekey", lastResort.id);
    }
    await this.store.saveBundle(jid, {
      ...bundle,
      signedPreKey: r.signedPreKey,
      lastResort: lastResort ?? bundle.lastResort,
    });
  }

  /** Remembers that `watcher` exchanged messages with or fetched keys of `target` (E18). */
  async watch(watcher: BareJid, target: BareJid): Promise<void> {
    await this.ctx
      .knex("gk_watchers")
      .insert({ watcher, target, at: this.ctx.now() })
      .onConflict(["watcher", "target"])
      .merge();
  }

  private async handOut(jid: BareJid, device: DeviceId, kind: "ec" | "kyber") {
    const subject = `${jid}/${device}/${kind}`;
    const cap = this.ctx.limits["prekey-handouts-per-hour"];
    if ((await this.ctx.counters.count("handout", subject, HOUR_MS)) >= cap) return undefined;
    const key = await this.store.takePreKey(jid, device, kind);
    if (key !== undefined) await this.ctx.counters.record("handout", subject);
    return key;
  }

  /** §11.7, E17: below the watermark after a consumption, at most once per device per hour. */
  private async checkLow(jid: BareJid, device: DeviceId): Promise<void> {
    const bundle = await this.store.bundle(jid, device);
    const counts = await this.store.counts(jid, device);
    const watermark = this.ctx.limits["prekey-low-watermark"];
    const kyberLow = bundle?.everKyber === true && counts.kyber < watermark;
    if (counts.ec >= watermark && !kyberLow) return;
    const subject = `${jid}/${device}`;
    if ((await this.ctx.counters.count("prekeys-low", subject, HOUR_MS)) > 0) return;
    await this.ctx.counters.record("prekeys-low", subject);
    if (providerByDomain(this.ctx, domainOf(jid)) === undefined) {
      await this.onLocalPreKeysLow(jid, device);
      return;
    }
    await notify(
      this.ctx,
      this.queue,
      jid,
      encodePreKeysLow({
        device,
        ec: counts.ec,
        kyber: bundle?.everKyber === true ? counts.kyber : undefined,
      }),
    );
  }

  /** `devices-changed` to every provider user watching `jid` within the window (§11.7). */
  private async announce(
    jid: BareJid,
    user: KeyUser,
    previous: readonly DeviceId[],
    marks: ReadonlyMap<DeviceId, DeviceChange>,
  ): Promise<void> {
    const devices = user.devices.map((id) => ({
      id,
      change: marks.get(id) ?? (previous.includes(id) ? undefined : ("added" as const)),
    }));
    const removed = previous.filter((d) => !user.devices.includes(d));
    const since = this.ctx.now() - this.ctx.limits["notify-window-seconds"] * 1000;
    const rows = (await this.ctx
      .knex("gk_watchers")
      .select("watcher")
      .where({ target: jid })
      .andWhere("at", ">", since)) as { watcher: string }[];
    const payload = () => encodeDevicesChanged({ jid, version: user.version, devices, removed });
    for (const { watcher } of rows) {
      // The changed user's own provider learns of it by itself (§11.7 MAY omit).
      if (domainOf(watcher) === domainOf(jid)) continue;
      if (providerByDomain(this.ctx, domainOf(watcher)) === undefined) continue;
      await notify(this.ctx, this.queue, watcher, payload());
    }
  }

  private checkBatch(keys: OneTimePreKeys, stored: { ec: number; kyber: number }): void {
    const l = this.ctx.limits;
    if (
      keys.ec.length > l["max-ec-prekeys-per-publish"] ||
      keys.kyber.length > l["max-kyber-prekeys-per-publish"] ||
      stored.ec + keys.ec.length > l["max-stored-prekeys"] ||
      stored.kyber + keys.kyber.length > l["max-stored-prekeys"]
    ) {
      throw refuse({ name: "prekey-limit" }, "too many one-time prekeys");
    }
  }
}

function emptyUser(jid: BareJid): KeyUser {
  return { jid, identity: new Uint8Array(), version: 0, devices: [], listPublished: false };
}

function unique(ids: readonly number[], what: string): void {
  const seen = new Set<number>();
  for (const id of ids) {
    if (seen.has(id)) conflict(what, id);
    seen.add(id);
  }
}

function conflict(what: string, id: number): never {
  throw refuseStandard("conflict", "cancel", `${what} id ${id} already stored in its id space`);
}
