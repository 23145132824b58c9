import type { Appservice } from "../appservice/registration.js";
import type { TransactionContents } from "../appservice/pusher.js";
import type { HomeserverCore } from "../core.js";
import type { StoredEvent } from "../store/room.js";
import type { JsonObject } from "../types.js";
import { DeviceStore, type Device } from "./devices.js";
import { ToDeviceStore } from "./toDevice.js";

/**
 * The end-to-end encryption side of the homeserver: devices and keys, to-device inboxes, and what
 * /sync and appservice transactions report about them. Every change that a client must learn of
 * takes a stream position, so long-polling syncs wake for it.
 */
export class E2eeState {
  readonly devices = new DeviceStore();
  readonly toDevice = new ToDeviceStore();

  constructor(
    private readonly core: HomeserverCore,
    /** False imitates a homeserver without MSC2409/MSC3202 in transactions. */
    readonly appservicePushes: boolean,
  ) {}

  /** A device was created, deleted, or its keys or name changed (device-list change). */
  deviceListChanged(userId: string): void {
    const core = this.core;
    this.devices.recordChange(userId, core.stream.current + 1);
    core.stream.advance();
    if (!this.appservicePushes) return;
    for (const as of core.appservices.all) {
      if (as.wantsDeviceData() && this.appserviceInterestedInDevicesOf(as, userId)) {
        core.pushers.get(as.id)?.enqueueDeviceListChange(userId);
      }
    }
  }

  /**
   * Synapse's rule (handlers/appservice.py): the user is in the appservice's namespace, or is
   * joined to a room the appservice is interested in.
   */
  private appserviceInterestedInDevicesOf(as: Appservice, userId: string): boolean {
    if (as.ownsUser(userId)) return true;
    return this.core.roomsWithMembership(userId, "join").some((r) => as.interestedInRoom(r));
  }

  /** Removes a device with its keys and inbox and reports the change. */
  deleteDevice(userId: string, deviceId: string): boolean {
    if (!this.devices.delete(userId, deviceId)) return false;
    this.toDevice.dropDevice(userId, deviceId);
    this.core.users.endDeviceSessions(userId, deviceId);
    this.deviceListChanged(userId);
    return true;
  }

  /**
   * Queues `messages` (`{user: {device or "*": content}}`) for local devices; unknown devices are
   * skipped, as Synapse does. Appservice users' devices also get them pushed (MSC2409), while the
   * inbox keeps them for a /sync as that device, again as Synapse does.
   */
  sendToDevice(sender: string, type: string, messages: JsonObject): void {
    const core = this.core;
    const pos = core.stream.current + 1;
    for (const [userId, byDevice] of Object.entries(messages)) {
      if (typeof byDevice !== "object" || byDevice === null) continue;
      for (const [deviceId, content] of Object.entries(byDevice as JsonObject)) {
        const targets =
          deviceId === "*"
            ? this.devices.list(userId)
            : [this.devices.get(userId, deviceId)].filter((d): d is Device => d !== undefined);
        for (const device of targets) {
          const message = {
            type,
            sender,
            content: content as JsonObject,
            toUserId: userId,
            toDeviceId: device.deviceId,
            pos,
          };
          this.toDevice.enqueue(message);
          this.pushToDevice(userId, device.deviceId, { type, sender, content });
        }
      }
    }
    core.stream.advance();
  }

  private pushToDevice(userId: string, deviceId: string, event: JsonObject): void {
    if (!this.appservicePushes) return;
    for (const as of this.core.appservices.all) {
      if (as.wantsToDevice(this.core.profile) && as.ownsUser(userId)) {
        this.core.pushers
          .get(as.id)
          ?.enqueueToDevice({ ...event, to_user_id: userId, to_device_id: deviceId });
      }
    }
  }

  /**
   * The MSC2409/MSC3202 keys of one transaction, with Synapse's unstable names. Key counts cover
   * the users Synapse computes them for (appservice/scheduler.py): the sender, the appservice's
   * users joined to the rooms of the transaction's events and ephemeral data, and the recipients
   * of its to-device events; both spellings of the count key are sent (HOMESERVERS.md).
   */
  transactionExtensions(as: Appservice, contents: TransactionContents): JsonObject {
    const out: JsonObject = {};
    if (!this.appservicePushes) return out;
    if (as.wantsToDevice(this.core.profile) && contents.toDevice.length > 0) {
      out["de.sorunome.msc2409.to_device"] = contents.toDevice;
    }
    if (!as.wantsDeviceData()) return out;
    if (contents.deviceListsChanged.length > 0) {
      // Synapse 1.67 never computes `left` for appservices (a TODO in its code).
      out["org.matrix.msc3202.device_lists"] = { changed: contents.deviceListsChanged, left: [] };
    }
    const users = new Set<string>([as.senderId]);
    const roomIds = new Set<string>();
    for (const e of contents.events) roomIds.add(e.room_id);
    for (const e of contents.ephemeral) if (e.room_id !== undefined) roomIds.add(e.room_id);
    for (const roomId of roomIds) {
      const room = this.core.rooms.get(roomId);
      for (const member of room?.members("join") ?? []) if (as.ownsUser(member)) users.add(member);
    }
    for (const e of contents.toDevice) {
      if (typeof e["to_user_id"] === "string") users.add(e["to_user_id"]);
    }
    const counts: Record<string, JsonObject> = {};
    const fallback: Record<string, JsonObject> = {};
    for (const userId of users) {
      const devices = this.devices.list(userId);
      if (devices.length === 0) continue;
      counts[userId] = Object.fromEntries(
        devices.map((d) => [d.deviceId, this.devices.oneTimeKeyCounts(d)]),
      );
      fallback[userId] = Object.fromEntries(
        devices.map((d) => [d.deviceId, this.devices.unusedFallbackKeyTypes(d)]),
      );
    }
    out["org.matrix.msc3202.device_one_time_keys_count"] = counts;
    out["org.matrix.msc3202.device_one_time_key_counts"] = counts;
    out["org.matrix.msc3202.device_unused_fallback_key_types"] = fallback;
    return out;
  }

  /** Everyone joined to a room `userId` is joined to, `userId` included. */
  usersSharingRoomWith(userId: string): Set<string> {
    const out = new Set<string>([userId]);
    for (const room of this.core.roomsWithMembership(userId, "join")) {
      for (const member of room.members("join")) out.add(member);
    }
    return out;
  }

  /**
   * `device_lists` of /sync and /keys/changes between two stream positions (spec: users sharing a
   * room whose devices changed, users who newly share a room; `left`: users who no longer share
   * any). Like Synapse, any shared room counts, not only encrypted ones.
   */
  deviceListChanges(
    userId: string,
    from: number,
    to: number,
  ): { changed: string[]; left: string[] } {
    if (to <= from) return { changed: [], left: [] };
    const sharing = this.usersSharingRoomWith(userId);
    const changed = new Set<string>();
    for (const other of this.devices.changedBetween(from, to)) {
      if (sharing.has(other)) changed.add(other);
    }
    const gone = new Set<string>();
    for (const room of this.core.rooms.values()) {
      if (room.membershipEvent(userId) === undefined) continue;
      const joined = room.membership(userId) === "join";
      // Events are appended in stream order: walk back only over those after `from`.
      for (let i = room.events.length - 1; i >= 0; i--) {
        const stored = room.events[i] as StoredEvent;
        if (stored.pos <= from) break;
        if (stored.pos > to || stored.event.type !== "m.room.member") continue;
        const target = stored.event.state_key ?? "";
        const membership = stored.event.content["membership"];
        const leaving = membership === "leave" || membership === "ban";
        if (target === userId) {
          // We joined: everyone there is new to us; we left: they may be gone from our view.
          for (const member of room.members("join")) (leaving ? gone : changed).add(member);
        } else if (membership === "join" && joined) {
          changed.add(target);
        } else if (leaving) {
          gone.add(target);
        }
      }
    }
    const left = [...gone].filter((u) => u !== userId && !sharing.has(u));
    for (const u of left) changed.delete(u);
    return { changed: [...changed].filter((u) => sharing.has(u)), left };
  }

  /** The one-time-key counts and unused fallback key types sync reports for a device. */
  keyCounts(
    userId: string,
    deviceId: string | null,
  ): {
    counts: Record<string, number>;
    fallback: string[];
  } {
    const device = deviceId === null ? undefined : this.devices.get(userId, deviceId);
    if (device === undefined) return { counts: {}, fallback: [] };
    return {
      counts: this.devices.oneTimeKeyCounts(device),
      fallback: this.devices.unusedFallbackKeyTypes(device),
    };
  }
}
