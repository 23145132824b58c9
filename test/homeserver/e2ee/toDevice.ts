import type { JsonObject } from "../types.js";

export interface ToDeviceMessage {
  type: string;
  sender: string;
  content: JsonObject;
  toUserId: string;
  toDeviceId: string;
  /** Stream position at which it was queued. */
  pos: number;
}

/**
 * Per-device to-device inboxes (client-server "Send-to-Device messaging"): a message stays queued
 * until a /sync of that device presents a `since` token at or after its position, which
 * acknowledges it. `log` keeps every message ever sent, for the tests' plaintext scan.
 */
export class ToDeviceStore {
  private readonly inboxes = new Map<string, ToDeviceMessage[]>();
  readonly log: ToDeviceMessage[] = [];

  enqueue(message: ToDeviceMessage): void {
    const key = inboxKey(message.toUserId, message.toDeviceId);
    let inbox = this.inboxes.get(key);
    if (inbox === undefined) this.inboxes.set(key, (inbox = []));
    inbox.push(message);
    this.log.push(message);
  }

  /** Drops what `since` acknowledges and returns what is left up to `upto`. */
  take(
    userId: string,
    deviceId: string,
    since: number | undefined,
    upto: number,
  ): ToDeviceMessage[] {
    const key = inboxKey(userId, deviceId);
    const inbox = this.inboxes.get(key);
    if (inbox === undefined) return [];
    const kept = since === undefined ? inbox : inbox.filter((m) => m.pos > since);
    this.inboxes.set(key, kept);
    return kept.filter((m) => m.pos <= upto);
  }

  pending(userId: string, deviceId: string): readonly ToDeviceMessage[] {
    return this.inboxes.get(inboxKey(userId, deviceId)) ?? [];
  }

  dropDevice(userId: string, deviceId: string): void {
    this.inboxes.delete(inboxKey(userId, deviceId));
  }
}

const inboxKey = (userId: string, deviceId: string): string => `${userId}\u0000${deviceId}`;
