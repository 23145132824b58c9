/**
 * The encryption data an appservice transaction may carry for the bridge's own devices
 * (MSC2409 to-device, MSC3202 device lists and key counts), under every spelling homeservers use
 * (/work/shared/HOMESERVERS.md): Synapse 1.67 sends `device_one_time_key_counts`, later releases
 * `device_one_time_keys_count`; to-device came as `de.sorunome.msc2409.to_device`, later as
 * `org.matrix.msc2409.to_device`; the stable names drop the prefixes.
 */
export interface TransactionExtras {
  toDevice: { user: string; device: string; event: Record<string, unknown> }[];
  deviceLists: { changed: string[]; left: string[] };
  /** user → device → algorithm → count */
  oneTimeKeyCounts: Record<string, Record<string, Record<string, number>>>;
  /** user → device → unused fallback key algorithms */
  fallbackKeyTypes: Record<string, Record<string, string[]>>;
}

const TO_DEVICE = ["de.sorunome.msc2409.to_device", "org.matrix.msc2409.to_device", "to_device"];
const DEVICE_LISTS = ["org.matrix.msc3202.device_lists", "device_lists"];
const OTK_COUNTS = [
  "org.matrix.msc3202.device_one_time_keys_count",
  "org.matrix.msc3202.device_one_time_key_counts",
  "device_one_time_keys_count",
];
const FALLBACK = [
  "org.matrix.msc3202.device_unused_fallback_key_types",
  "device_unused_fallback_key_types",
];

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

const first = (body: Record<string, unknown>, keys: string[]): unknown =>
  keys.map((k) => body[k]).find((v) => v !== undefined);

const strings = (v: unknown): string[] =>
  Array.isArray(v) ? v.filter((s): s is string => typeof s === "string") : [];

/**
 * Parses the extras; anything malformed is reported to `problem` and left out (one bad entry
 * never stops the rest of the transaction).
 */
export function parseTransactionExtras(
  body: Record<string, unknown>,
  problem: (what: string) => void = () => undefined,
): TransactionExtras {
  const out: TransactionExtras = {
    toDevice: [],
    deviceLists: { changed: [], left: [] },
    oneTimeKeyCounts: {},
    fallbackKeyTypes: {},
  };
  const toDevice = first(body, TO_DEVICE);
  if (toDevice !== undefined && !Array.isArray(toDevice)) problem("to_device is not a list");
  for (const event of Array.isArray(toDevice) ? (toDevice as unknown[]) : []) {
    if (
      !isRecord(event) ||
      typeof event["to_user_id"] !== "string" ||
      typeof event["to_device_id"] !== "string" ||
      typeof event["type"] !== "string"
    ) {
      problem("a to-device event without to_user_id, to_device_id or type");
      continue;
    }
    const { to_user_id: user, to_device_id: device, ...rest } = event;
    out.toDevice.push({ user, device, event: rest });
  }
  const lists = first(body, DEVICE_LISTS);
  if (isRecord(lists)) {
    out.deviceLists = { changed: strings(lists["changed"]), left: strings(lists["left"]) };
  } else if (lists !== undefined) problem("device_lists is not an object");
  const counts = first(body, OTK_COUNTS);
  for (const [user, byDevice] of Object.entries(isRecord(counts) ? counts : {})) {
    if (!isRecord(byDevice)) continue;
    for (const [device, perAlgorithm] of Object.entries(byDevice)) {
      if (!isRecord(perAlgorithm)) continue;
      const clean: Record<string, number> = {};
      for (const [algorithm, n] of Object.entries(perAlgorithm)) {
        if (typeof n === "number" && Number.isInteger(n) && n >= 0) clean[algorithm] = n;
      }
      (out.oneTimeKeyCounts[user] ??= {})[device] = clean;
    }
  }
  const fallback = first(body, FALLBACK);
  for (const [user, byDevice] of Object.entries(isRecord(fallback) ? fallback : {})) {
    if (!isRecord(byDevice)) continue;
    for (const [device, types] of Object.entries(byDevice)) {
      (out.fallbackKeyTypes[user] ??= {})[device] = strings(types);
    }
  }
  return out;
}
