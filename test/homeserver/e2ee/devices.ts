import { isObject } from "../events.js";
import type { JsonObject } from "../types.js";
import { mergeSignatures } from "./signing.js";

export interface FallbackKey {
  /** `algorithm:key_id`, as uploaded. */
  id: string;
  key: unknown;
  /** Set once claimed; an unused fallback key is reported in sync until then. */
  used: boolean;
}

export interface Device {
  userId: string;
  deviceId: string;
  displayName: string | null;
  lastSeenTs: number;
  /** The device's signed `device_keys` object, once uploaded. */
  keys?: JsonObject;
  /** `algorithm:key_id` to the key (a string or a signed key object). */
  oneTimeKeys: Map<string, unknown>;
  /** One fallback key per algorithm. */
  fallbackKeys: Map<string, FallbackKey>;
}

export type CrossSigningUsage = "master" | "self_signing" | "user_signing";

/** A device-list change: `userId`'s devices or cross-signing keys changed at stream `pos`. */
export interface DeviceListChange {
  userId: string;
  pos: number;
}

/**
 * Devices and their end-to-end keys (client-server "End-to-end encryption"): device keys,
 * one-time and fallback keys, cross-signing keys, signatures others uploaded, and the log of
 * device-list changes that /sync, /keys/changes and the appservice pushes report.
 */
export class DeviceStore {
  private readonly devices = new Map<string, Map<string, Device>>();
  private readonly crossSigning = new Map<string, Map<CrossSigningUsage, JsonObject>>();
  /** target user -> target key id (a device id or a cross-signing public key) -> signatures. */
  private readonly extraSignatures = new Map<string, Map<string, JsonObject>>();
  readonly changes: DeviceListChange[] = [];

  /** Returns the device, creating it if new (`created` tells which). */
  ensure(
    userId: string,
    deviceId: string,
    displayName?: string,
  ): { device: Device; created: boolean } {
    let byId = this.devices.get(userId);
    if (byId === undefined) this.devices.set(userId, (byId = new Map()));
    const existing = byId.get(deviceId);
    if (existing !== undefined) {
      if (displayName !== undefined) existing.displayName = displayName;
      existing.lastSeenTs = Date.now();
      return { device: existing, created: false };
    }
    const device: Device = {
      userId,
      deviceId,
      displayName: displayName ?? null,
      lastSeenTs: Date.now(),
      oneTimeKeys: new Map(),
      fallbackKeys: new Map(),
    };
    byId.set(deviceId, device);
    return { device, created: true };
  }

  get(userId: string, deviceId: string): Device | undefined {
    return this.devices.get(userId)?.get(deviceId);
  }

  list(userId: string): Device[] {
    return [...(this.devices.get(userId)?.values() ?? [])];
  }

  /** Removes the device with its keys; true when it existed. */
  delete(userId: string, deviceId: string): boolean {
    this.extraSignatures.get(userId)?.delete(deviceId);
    return this.devices.get(userId)?.delete(deviceId) ?? false;
  }

  recordChange(userId: string, pos: number): void {
    this.changes.push({ userId, pos });
  }

  /** Users whose device list changed at a stream position in (from, to]. */
  changedBetween(from: number, to: number): Set<string> {
    const out = new Set<string>();
    for (const c of this.changes) if (c.pos > from && c.pos <= to) out.add(c.userId);
    return out;
  }

  /** Counts of unclaimed one-time keys per algorithm; `signed_curve25519` is always present. */
  oneTimeKeyCounts(device: Device): Record<string, number> {
    const counts: Record<string, number> = { signed_curve25519: 0 };
    for (const id of device.oneTimeKeys.keys()) {
      const algorithm = id.slice(0, id.indexOf(":"));
      counts[algorithm] = (counts[algorithm] ?? 0) + 1;
    }
    return counts;
  }

  unusedFallbackKeyTypes(device: Device): string[] {
    return [...device.fallbackKeys.entries()].filter(([, k]) => !k.used).map(([alg]) => alg);
  }

  /** Claims one key of `algorithm`: a one-time key (removed), else the fallback key (kept). */
  claim(device: Device, algorithm: string): Record<string, unknown> | undefined {
    for (const [id, key] of device.oneTimeKeys) {
      if (id.startsWith(`${algorithm}:`)) {
        device.oneTimeKeys.delete(id);
        return { [id]: key };
      }
    }
    const fallback = device.fallbackKeys.get(algorithm);
    if (fallback === undefined) return undefined;
    fallback.used = true;
    return { [fallback.id]: fallback.key };
  }

  crossSigningKey(userId: string, usage: CrossSigningUsage): JsonObject | undefined {
    const key = this.crossSigning.get(userId)?.get(usage);
    return key === undefined ? undefined : this.withExtraSignatures(userId, key);
  }

  setCrossSigningKey(userId: string, usage: CrossSigningUsage, key: JsonObject): void {
    let byUsage = this.crossSigning.get(userId);
    if (byUsage === undefined) this.crossSigning.set(userId, (byUsage = new Map()));
    byUsage.set(usage, key);
  }

  /** The raw stored cross-signing key (without signatures others added). */
  rawCrossSigningKey(userId: string, usage: CrossSigningUsage): JsonObject | undefined {
    return this.crossSigning.get(userId)?.get(usage);
  }

  /** Device keys as /keys/query reports them: with others' signatures and the display name. */
  queryDeviceKeys(device: Device): JsonObject | undefined {
    if (device.keys === undefined) return undefined;
    const keys = this.withExtraSignatures(device.userId, device.keys, device.deviceId);
    return {
      ...keys,
      unsigned: device.displayName === null ? {} : { device_display_name: device.displayName },
    };
  }

  addSignatures(targetUser: string, targetKeyId: string, signatures: JsonObject): void {
    let byKey = this.extraSignatures.get(targetUser);
    if (byKey === undefined) this.extraSignatures.set(targetUser, (byKey = new Map()));
    const merged = mergeSignatures({ signatures: byKey.get(targetKeyId) ?? {} }, signatures);
    byKey.set(targetKeyId, merged["signatures"] as JsonObject);
  }

  private withExtraSignatures(userId: string, key: JsonObject, deviceId?: string): JsonObject {
    const id = deviceId ?? publicKeyOf(key);
    const extra = id === undefined ? undefined : this.extraSignatures.get(userId)?.get(id);
    return extra === undefined ? key : mergeSignatures(key, extra);
  }
}

/** The (single) public key of a cross-signing key object. */
export function publicKeyOf(key: JsonObject): string | undefined {
  const keys = key["keys"];
  if (!isObject(keys)) return undefined;
  const first = Object.values(keys)[0];
  return typeof first === "string" ? first : undefined;
}
