import { describeError } from "../../util/errors.js";
import type { BareJid, DeviceId } from "../../util/ids.js";
import type { Logger } from "../../util/log.js";
import type { Notification } from "../codec/message.js";
import type { SignalCrypto } from "../crypto/signal-crypto.js";
import type { KeyDirectory } from "./directory.js";
import type { Outbox } from "./outbox.js";
import type { HelloSession } from "./session.js";
import type { GroupStore } from "./groups.js";
import type { StoredEvent } from "./types.js";

interface NotificationContext {
  readonly crypto: SignalCrypto;
  readonly directory: KeyDirectory;
  readonly session: HelloSession;
  readonly outbox: Outbox;
  /** Groups (§17.5): member device changes decide sender-key rotation and re-distribution. */
  readonly groups?: { store: GroupStore };
}

/**
 * Acts on a gatekeeper notification (§9.1, §10.3, §11.7, §16.2) for the local user it was
 * delivered to. Returns the event the core must be handed before the ack, or undefined when the
 * action itself was all (the caller then just records and acks). A failure that a redelivery can
 * repair (a prekey publish while offline) throws, which leaves the notification unacked.
 */
export async function applyNotification(
  ctx: NotificationContext,
  notification: Notification,
  local: BareJid,
  log: Logger,
): Promise<StoredEvent | undefined> {
  switch (notification.type) {
    case "devices-changed": {
      const changed = notification.devicesChanged;
      const store = ctx.groups?.store;
      if (store !== undefined) {
        // §17.5: a removed device or a changed identity means a new sender key before the next
        // group message; a replaced device needs the current one again. Marked before the new
        // list is stored: a send that sees the new list also sees the rotation. The list is
        // shared by every local user, so a notice newer than it marks every local user's groups
        // with the member: another local user's send sees the new list before its own notice
        // arrives (§11.7 sends one per local user). An older or repeated notice marks only its
        // own user's (the newer list that came first marked the rest).
        const replaced = changed.devices.filter((d) => d.change === "replaced").map((d) => d.id);
        const identity = changed.devices.some((d) => d.change === "identity-changed");
        if (changed.removed.length > 0 || identity) {
          const cached = await ctx.crypto.deviceLists.get(changed.jid);
          if (cached === null || changed.version > cached.version) {
            await store.markRotationForAll(changed.jid);
          } else {
            await store.markRotationFor(local, changed.jid);
          }
        } else if (replaced.length > 0) {
          await store.forgetHolders(local, changed.jid, replaced);
        }
      }
      // Sessions of removed, replaced and identity-changed devices are dropped, added devices
      // recorded for retry authorisation (§11.7, P6).
      const update = await ctx.crypto.handleDevicesChanged({
        jid: changed.jid,
        version: changed.version,
        devices: changed.devices.map((d) =>
          d.change === undefined ? { id: d.id } : { id: d.id, change: d.change },
        ),
        removed: changed.removed,
      });
      // A notice of an identity change that the device list already reflects (it was fetched in
      // the moment between the directory's change and this notice: `applied` false) still names
      // the devices whose bundles carry the new identity. Without fetching them now, the
      // "security code changed" event waited for the next send to that contact.
      const identityDevices = update.applied
        ? []
        : changed.devices.filter((d) => d.change === "identity-changed").map((d) => d.id);
      if (update.identityChanged || identityDevices.length > 0) {
        // Fetching the new bundles now records the new identity, which emits the "security code
        // changed" event with the verified mark it cleared (§12.6). Other devices get their
        // bundles on the next send, which consumes no prekeys before they are needed. A device
        // that already has a session is not fetched again (a redelivered notice costs nothing).
        const devices = [...new Set([...update.needBundles, ...identityDevices])];
        await refreshSessions(ctx, local, changed.jid, devices).catch((err: unknown) =>
          log.warn({ err: describeError(err) }, "bundles after an identity change not fetched"),
        );
      }
      return undefined;
    }
    case "prekeys-low": {
      const low = notification.prekeysLow;
      const device = await ctx.crypto.device(local, low.device);
      await ctx.directory.replenish(device, { ec: low.ec, kyber: low.kyber }, ctx.session.limits);
      return undefined;
    }
    case "request-accepted":
      await ctx.outbox.release(local, notification.jid);
      return { kind: "request-accepted", local, contact: notification.jid };
    case "unbound":
      return {
        kind: "unbound",
        local,
        phone: notification.unbound.phone,
        reason: notification.unbound.reason,
      };
    case "report-received":
      return {
        kind: "report-received",
        reported: notification.report.jid,
        reason: notification.report.reason,
        stamp: notification.report.stamp,
      };
    default:
      // Group events are handled by the receiver itself (they need the group store and info).
      return undefined;
  }
}

async function refreshSessions(
  ctx: NotificationContext,
  local: BareJid,
  contact: BareJid,
  devices: readonly DeviceId[],
): Promise<void> {
  if (devices.length === 0) return;
  const [own] = await ctx.crypto.localDevices(local);
  if (own === undefined) return;
  const device = await ctx.crypto.device(local, own);
  await ctx.directory.ensureSessions(
    device,
    devices.map((id) => ({ jid: contact, device: id })),
  );
}
