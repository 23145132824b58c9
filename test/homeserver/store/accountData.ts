import type { JsonObject } from "../types.js";

interface Entry {
  content: JsonObject;
  pos: number;
}

/** Global and per-room account data, and saved sync filters. */
export class AccountDataStore {
  private readonly global = new Map<string, Map<string, Entry>>();
  private readonly perRoom = new Map<string, Map<string, Map<string, Entry>>>();
  private readonly filters = new Map<string, JsonObject[]>();

  set(userId: string, type: string, content: JsonObject, pos: number): void {
    let byType = this.global.get(userId);
    if (byType === undefined) this.global.set(userId, (byType = new Map()));
    byType.set(type, { content, pos });
  }

  get(userId: string, type: string): JsonObject | undefined {
    return this.global.get(userId)?.get(type)?.content;
  }

  setForRoom(userId: string, roomId: string, type: string, content: JsonObject, pos: number): void {
    let rooms = this.perRoom.get(userId);
    if (rooms === undefined) this.perRoom.set(userId, (rooms = new Map()));
    let byType = rooms.get(roomId);
    if (byType === undefined) rooms.set(roomId, (byType = new Map()));
    byType.set(type, { content, pos });
  }

  getForRoom(userId: string, roomId: string, type: string): JsonObject | undefined {
    return this.perRoom.get(userId)?.get(roomId)?.get(type)?.content;
  }

  /** Global account data events changed after stream position `since`. */
  changedSince(userId: string, since: number): JsonObject[] {
    return eventsAfter(this.global.get(userId), since);
  }

  roomChangedSince(userId: string, roomId: string, since: number): JsonObject[] {
    return eventsAfter(this.perRoom.get(userId)?.get(roomId), since);
  }

  roomsChangedSince(userId: string, since: number): string[] {
    const rooms = this.perRoom.get(userId);
    if (rooms === undefined) return [];
    return [...rooms.entries()]
      .filter(([, byType]) => [...byType.values()].some((e) => e.pos > since))
      .map(([roomId]) => roomId);
  }

  saveFilter(userId: string, filter: JsonObject): string {
    let list = this.filters.get(userId);
    if (list === undefined) this.filters.set(userId, (list = []));
    list.push(filter);
    return String(list.length - 1);
  }

  filter(userId: string, filterId: string): JsonObject | undefined {
    if (!/^\d+$/.test(filterId)) return undefined;
    return this.filters.get(userId)?.[Number(filterId)];
  }
}

function eventsAfter(byType: Map<string, Entry> | undefined, since: number): JsonObject[] {
  if (byType === undefined) return [];
  return [...byType.entries()]
    .filter(([, e]) => e.pos > since)
    .map(([type, e]) => ({ type, content: e.content }));
}
