import type { Encrypted } from "../../src/interop/codec/index.js";
import type { BareJid, DeviceId } from "../../src/util/ids.js";
import type { GatekeeperContext } from "../context.js";
import { refuse, refuseStandard, secondsUntil } from "../errors.js";
import { Counters, DAY_MS, MINUTE_MS } from "../state/counters.js";

/** Step 7 of §15.1: `messages-per-minute` and `new-conversations-per-day*` (§16.3). */
export async function checkRates(
  ctx: GatekeeperContext,
  sender: BareJid,
  isNew: boolean,
  verified: boolean,
): Promise<void> {
  const now = ctx.now();
  const perMinute = ctx.limits["messages-per-minute"];
  const times = await ctx.counters.times("messages", sender, MINUTE_MS);
  const free = Counters.freeAt(times, perMinute, 1, MINUTE_MS);
  if (free !== undefined) {
    throw refuse(
      { name: "rate-limited", scope: "messages", retryAfter: secondsUntil(free, now) },
      `${sender} sends too fast`,
    );
  }
  if (!isNew) return;
  const limit =
    ctx.limits[verified ? "new-conversations-per-day" : "new-conversations-per-day-unverified"];
  const started = await ctx.counters.times("new-conversations", sender, DAY_MS);
  const freeDay = Counters.freeAt(started, limit, 1, DAY_MS);
  if (freeDay !== undefined) {
    throw refuse(
      {
        name: "rate-limited",
        scope: "new-conversations",
        retryAfter: secondsUntil(freeDay, now),
      },
      `${sender} starts too many conversations`,
    );
  }
}

/**
 * Step 8 (§12.1): only the recipient's `<keys>` group is kept, without keys for devices not in
 * the list; it must cover every listed device. A retry re-send carries exactly one key, for the
 * addressed device (§12.5).
 */
export function coverage(
  c: { recipient: BareJid; toDevice: DeviceId | undefined },
  e: Encrypted,
  devices: readonly DeviceId[],
): Encrypted["keyGroups"] {
  const group = e.keyGroups.find((g) => g.jid === c.recipient);
  const keys = (group?.keys ?? []).filter((k) => devices.includes(k.rid));
  if (e.retry !== undefined) {
    const only = group?.keys[0];
    if (
      group === undefined ||
      only === undefined ||
      group.keys.length !== 1 ||
      only.rid !== c.toDevice
    ) {
      throw refuseStandard("bad-request", "modify", "a re-send carries one key for the addressee");
    }
    if (!devices.includes(only.rid)) {
      throw refuse({ name: "stale-device-list", jid: c.recipient, devices: [...devices] }, "gone");
    }
    return [{ jid: c.recipient, keys }];
  }
  const covered = new Set(keys.map((k) => k.rid));
  if (keys.length === 0 || devices.some((d) => !covered.has(d))) {
    throw refuse(
      { name: "stale-device-list", jid: c.recipient, devices: [...devices] },
      `keys for ${c.recipient} do not cover its devices`,
    );
  }
  return [{ jid: c.recipient, keys }];
}
