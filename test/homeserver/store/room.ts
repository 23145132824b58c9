import type { JsonObject, RoomEvent } from "../types.js";

/** Who sent an event through which transaction, so only that sender's own echo carries its txn id. */
export interface TxnOrigin {
  /** The access token (or appservice token + masqueraded user) the event was sent with. */
  tokenKey: string;
  txnId: string;
}

export interface StoredEvent {
  /** Current (possibly redacted) form of the event. */
  event: RoomEvent;
  /** Global stream position at which it was persisted. */
  pos: number;
  /** Position in the room's timeline. */
  index: number;
  txn?: TxnOrigin;
  redactedBy?: RoomEvent;
  /** The event as sent, kept after a redaction as Synapse retains it for a while. */
  original?: RoomEvent;
}

export interface Receipt {
  userId: string;
  receiptType: string;
  eventId: string;
  ts: number;
  threadId?: string;
  pos: number;
}

const stateKeyOf = (type: string, stateKey: string): string => `${type}\u0000${stateKey}`;

/** An in-memory room: its linear timeline, current state and ephemeral data. */
export class Room {
  readonly events: StoredEvent[] = [];
  readonly aliases = new Set<string>();
  private readonly state = new Map<string, StoredEvent>();
  readonly typing = new Map<string, NodeJS.Timeout>();
  typingPos = 0;
  readonly receipts: Receipt[] = [];

  constructor(
    readonly id: string,
    readonly version: string,
  ) {}

  get versionNumber(): number {
    const n = Number.parseInt(this.version, 10);
    return Number.isNaN(n) ? 10 : n;
  }

  append(event: RoomEvent, pos: number, txn?: TxnOrigin): StoredEvent {
    const stored: StoredEvent = { event, pos, index: this.events.length };
    if (txn !== undefined) stored.txn = txn;
    this.events.push(stored);
    if (event.state_key !== undefined)
      this.state.set(stateKeyOf(event.type, event.state_key), stored);
    return stored;
  }

  getState(type: string, stateKey = ""): RoomEvent | undefined {
    return this.state.get(stateKeyOf(type, stateKey))?.event;
  }

  currentState(): RoomEvent[] {
    return [...this.state.values()].map((s) => s.event);
  }

  currentStateStored(): StoredEvent[] {
    return [...this.state.values()];
  }

  /** The room state just before the timeline entry `index` (replayed, since history is linear). */
  stateBefore(index: number): StoredEvent[] {
    const state = new Map<string, StoredEvent>();
    for (const stored of this.events.slice(0, index)) {
      const e = stored.event;
      if (e.state_key !== undefined) state.set(stateKeyOf(e.type, e.state_key), stored);
    }
    return [...state.values()];
  }

  membership(userId: string): string | undefined {
    const content = this.getState("m.room.member", userId)?.content;
    const membership = content?.["membership"];
    return typeof membership === "string" ? membership : undefined;
  }

  /** The stored member event currently defining `userId`'s membership. */
  membershipEvent(userId: string): StoredEvent | undefined {
    return this.state.get(stateKeyOf("m.room.member", userId));
  }

  members(membership = "join"): string[] {
    const out: string[] = [];
    for (const e of this.currentState()) {
      if (
        e.type === "m.room.member" &&
        e.state_key !== undefined &&
        e.content["membership"] === membership
      ) {
        out.push(e.state_key);
      }
    }
    return out;
  }

  findEvent(eventId: string): StoredEvent | undefined {
    return this.events.find((s) => s.event.event_id === eventId);
  }

  private powerLevels(): JsonObject {
    return this.getState("m.room.power_levels")?.content ?? {};
  }

  userPowerLevel(userId: string): number {
    const pl = this.getState("m.room.power_levels");
    if (pl === undefined) {
      // Before power levels exist only the creator has authority (spec auth rules).
      return this.getState("m.room.create")?.sender === userId ? 100 : 0;
    }
    const users = pl.content["users"];
    const own =
      typeof users === "object" && users !== null ? (users as JsonObject)[userId] : undefined;
    return toLevel(own, toLevel(pl.content["users_default"], 0));
  }

  /** Power needed for an action key (`invite`, `kick`, `ban`, `redact`). */
  actionLevel(action: "invite" | "kick" | "ban" | "redact"): number {
    return toLevel(this.powerLevels()[action], action === "invite" ? 0 : 50);
  }

  eventLevel(type: string, isState: boolean): number {
    // Without a power levels event every level defaults to 0 (spec auth rules).
    if (this.getState("m.room.power_levels") === undefined) return 0;
    const pl = this.powerLevels();
    const events = pl["events"];
    const specific =
      typeof events === "object" && events !== null ? (events as JsonObject)[type] : undefined;
    const fallback = isState ? toLevel(pl["state_default"], 50) : toLevel(pl["events_default"], 0);
    return toLevel(specific, fallback);
  }

  joinRule(): string {
    const rule = this.getState("m.room.join_rules")?.content["join_rule"];
    return typeof rule === "string" ? rule : "invite";
  }

  /** A newer receipt replaces the older one of the same user, type and thread. */
  setReceipt(receipt: Receipt): void {
    const same = (r: Receipt): boolean =>
      r.userId === receipt.userId &&
      r.receiptType === receipt.receiptType &&
      r.threadId === receipt.threadId;
    const existing = this.receipts.findIndex(same);
    if (existing >= 0) this.receipts.splice(existing, 1);
    this.receipts.push(receipt);
  }
}

function toLevel(value: unknown, fallback: number): number {
  if (typeof value === "number" && Number.isInteger(value)) return value;
  if (typeof value === "string" && /^-?\d+$/.test(value)) return Number.parseInt(value, 10);
  return fallback;
}
