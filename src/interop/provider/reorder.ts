import type { ProviderEvent } from "./types.js";

/**
 * P15 / E23: history in `seq` order for a receiver that cannot insert into the past (a Matrix room
 * is append-only). Per conversation the buffer knows the last `seq` shown or sent (our own
 * messages take seqs too, learned from `<accepted>`); a delivery above the next one is held until
 * the gap fills or `holdMs` passes, then what is held goes out in `seq` order. A gap that never
 * fills (gaps are allowed, §15.6) costs one deadline, never more.
 *
 * The buffer keeps no events, only seqs: the receiver keeps what is held durably (in
 * the pending `inbox` rows and its per-conversation waiting list) and offers that conversation's held
 * deliveries again when `onDue(conversation)` fires, so a crash loses nothing and a release reads
 * no table. The first seq seen for a conversation after a start (or after it was idle for
 * `idleMs`) is taken as it comes: the receiver replays pending deliveries in seq order.
 */
interface ReorderOptions {
  /** How long a later seq waits for the gap before it (E23: "at most a few seconds"). */
  readonly holdMs?: number;
  /** Held seqs per conversation beyond which the oldest gap is given up at once. */
  readonly maxHeld?: number;
  /** A conversation with nothing held is forgotten after this long without traffic. */
  readonly idleMs?: number;
  readonly now?: () => number;
  /** Called (once per turn and conversation) when held deliveries of it may go: offer them again. */
  readonly onDue: (conversation: string) => void;
}

type Admission = "now" | "hold";

interface Conversation {
  /** The highest seq shown or sent, with every seq below it settled (or given up). */
  last: number;
  /** Seqs offered and told to wait. */
  readonly held: Set<number>;
  /** Seqs above `last + 1` that will never be shown here (ours, or discarded): no gap. */
  readonly settled: Set<number>;
  /** After the deadline: held seqs up to here go in order without waiting for gaps. */
  releaseUpTo: number;
  timer: NodeJS.Timeout | undefined;
  /** When the conversation last saw a seq (for dropping idle ones). */
  touched: number;
}

const DEFAULT_REORDER_HOLD_MS = 2000;
const DEFAULT_MAX_HELD = 256;
/** Long past any redelivery of the gatekeeper's: what comes later is ordered as after a start. */
const DEFAULT_IDLE_MS = 10 * 60_000;

export class ReorderBuffer {
  private readonly conversations = new Map<string, Conversation>();
  private readonly holdMs: number;
  private readonly maxHeld: number;
  private readonly idleMs: number;
  private readonly now: () => number;
  private readonly dueConversations = new Set<string>();
  private lastSweep: number;
  private stopped = false;

  constructor(private readonly options: ReorderOptions) {
    this.holdMs = options.holdMs ?? DEFAULT_REORDER_HOLD_MS;
    this.maxHeld = options.maxHeld ?? DEFAULT_MAX_HELD;
    this.idleMs = options.idleMs ?? DEFAULT_IDLE_MS;
    this.now = options.now ?? Date.now;
    this.lastSweep = this.now();
  }

  /** How many conversations the buffer tracks (bounded by traffic within `idleMs`). */
  get size(): number {
    return this.conversations.size;
  }

  /**
   * A seq of the conversation that is not shown here: our own accepted message, or a delivery
   * discarded (§12.2) or a duplicate. It takes its place, so the next seq does not wait for it;
   * one above a gap does not close the gap before it.
   */
  observe(conversation: string, seq: number): void {
    this.sweep();
    const c = this.conversations.get(conversation);
    if (c === undefined) {
      this.conversations.set(conversation, this.fresh(seq));
      return;
    }
    c.touched = this.now();
    if (seq <= c.last) return;
    if (seq === c.last + 1) this.advanceTo(c, seq);
    else {
      c.settled.add(seq);
      // Bounded like held: the smallest is dropped (its seq then counts as a gap, one deadline).
      if (c.settled.size > this.maxHeld) c.settled.delete(Math.min(...c.settled));
    }
    this.afterChange(conversation, c);
  }

  /**
   * Whether a delivery with `seq` is shown now or held. "now" records it as shown; a later offer
   * of the same seq (a redelivery) is "now" again. Idempotent for held seqs.
   */
  admit(conversation: string, seq: number): Admission {
    this.sweep();
    const c = this.conversations.get(conversation);
    if (c === undefined) {
      this.conversations.set(conversation, this.fresh(seq));
      return "now";
    }
    c.touched = this.now();
    const smallestHeld = Math.min(seq, ...c.held);
    const inOrder = seq <= c.last + 1;
    const released = seq <= c.releaseUpTo && seq === smallestHeld;
    if (inOrder || released) {
      c.held.delete(seq);
      if (seq > c.last) this.advanceTo(c, seq);
      this.afterChange(conversation, c);
      return "now";
    }
    c.held.add(seq);
    if (c.held.size > this.maxHeld) this.expire(conversation, c);
    else if (c.timer === undefined && !this.stopped) {
      c.timer = setTimeout(() => this.expire(conversation, c), this.holdMs);
      c.timer.unref();
    }
    return "hold";
  }

  /** Held seqs of a conversation, lowest first (tests, diagnostics). */
  heldOf(conversation: string): number[] {
    return [...(this.conversations.get(conversation)?.held ?? [])].sort((a, b) => a - b);
  }

  stop(): void {
    this.stopped = true;
    for (const c of this.conversations.values()) clearTimeout(c.timer);
  }

  private fresh(seq: number): Conversation {
    return {
      last: seq,
      held: new Set(),
      settled: new Set(),
      releaseUpTo: -Infinity,
      timer: undefined,
      touched: this.now(),
    };
  }

  /** `last` moves to `seq`, then over every settled seq right after it. */
  private advanceTo(c: Conversation, seq: number): void {
    c.last = seq;
    while (c.settled.delete(c.last + 1)) c.last += 1;
    for (const s of c.settled) if (s <= c.last) c.settled.delete(s);
  }

  /** The deadline passed (or too much is held): everything held now goes, in seq order. */
  private expire(conversation: string, c: Conversation): void {
    clearTimeout(c.timer);
    c.timer = undefined;
    c.releaseUpTo = Math.max(c.releaseUpTo, ...c.held);
    this.due(conversation);
  }

  private afterChange(conversation: string, c: Conversation): void {
    if (c.held.size === 0) {
      clearTimeout(c.timer);
      c.timer = undefined;
      return;
    }
    const next = Math.min(...c.held);
    if (next <= c.last + 1 || next <= c.releaseUpTo) this.due(conversation);
  }

  private due(conversation: string): void {
    if (this.stopped) return;
    if (this.dueConversations.size === 0) {
      setImmediate(() => {
        const due = [...this.dueConversations];
        this.dueConversations.clear();
        if (this.stopped) return;
        for (const key of due) this.options.onDue(key);
      });
    }
    this.dueConversations.add(conversation);
  }

  /**
   * Forgets conversations with nothing held and no traffic for `idleMs`, so that the map holds
   * the conversations active lately, not every one since the start. At most one pass per `idleMs`.
   */
  private sweep(): void {
    const now = this.now();
    if (now - this.lastSweep < this.idleMs) return;
    this.lastSweep = now;
    for (const [key, c] of this.conversations) {
      if (c.held.size === 0 && c.timer === undefined && now - c.touched >= this.idleMs) {
        this.conversations.delete(key);
      }
    }
  }
}

/**
 * The outbox's events, with the seqs of our accepted messages told to the buffer: they take their
 * place in the conversation's order (the receiver orders deliveries itself, see Receiver).
 */
export function observeAccepted(
  buffer: ReorderBuffer,
  emit: (event: ProviderEvent) => Promise<void>,
): (event: ProviderEvent) => Promise<void> {
  return async (event) => {
    if (event.kind === "accepted" && event.seq !== undefined) {
      buffer.observe(conversationKey(event.local, event.to), event.seq);
    }
    return emit(event);
  };
}

/** The key of a (local user, contact) conversation, as the receiver's conversationOf builds it. */
export const conversationKey = (local: string, contact: string): string => `${local}\n${contact}`;
