import type { ProviderEvent } from "./types.js";

/**
 * P15 / E23: history in `seq` order for a receiver that cannot insert into the past (a Matrix room
 * is append-only). Per conversation the buffer knows the last `seq` shown or sent (our own
 * messages take seqs too, learned from `<accepted>`); a delivery above the next one is held until
 * the gap fills or `holdMs` passes, then what is held goes out in `seq` order. A gap that never
 * fills (gaps are allowed, §15.6) costs one deadline, never more.
 *
 * The buffer keeps no events, only seqs: the caller keeps what is held durably and offers it again
 * when `onDue` fires (the receiver's `inbound_pending` and `replayPending`), so a crash loses
 * nothing. The first seq seen for a conversation after a start is taken as it comes.
 */
export interface ReorderOptions {
  /** How long a later seq waits for the gap before it (E23: "at most a few seconds"). */
  readonly holdMs?: number;
  /** Held seqs per conversation beyond which the oldest gap is given up at once. */
  readonly maxHeld?: number;
  /** Called (once per turn) when held deliveries may go: offer every held one again. */
  readonly onDue: () => void;
}

export type Admission = "now" | "hold";

interface Conversation {
  /** The highest seq shown or sent. */
  last: number;
  /** Seqs offered and told to wait. */
  readonly held: Set<number>;
  /** After the deadline: held seqs up to here go in order without waiting for gaps. */
  releaseUpTo: number;
  timer: NodeJS.Timeout | undefined;
}

export const DEFAULT_REORDER_HOLD_MS = 2000;
const DEFAULT_MAX_HELD = 256;

export class ReorderBuffer {
  private readonly conversations = new Map<string, Conversation>();
  private readonly holdMs: number;
  private readonly maxHeld: number;
  private dueScheduled = false;
  private stopped = false;

  constructor(private readonly options: ReorderOptions) {
    this.holdMs = options.holdMs ?? DEFAULT_REORDER_HOLD_MS;
    this.maxHeld = options.maxHeld ?? DEFAULT_MAX_HELD;
  }

  /** A seq of the conversation that is not shown here (our own accepted message): fills a gap. */
  observe(conversation: string, seq: number): void {
    const c = this.conversations.get(conversation);
    if (c === undefined) {
      this.conversations.set(conversation, fresh(seq));
      return;
    }
    if (seq > c.last) c.last = seq;
    this.afterChange(c);
  }

  /**
   * Whether a delivery with `seq` is shown now or held. "now" records it as shown; a later offer
   * of the same seq (a redelivery) is "now" again. Idempotent for held seqs.
   */
  admit(conversation: string, seq: number): Admission {
    const c = this.conversations.get(conversation);
    if (c === undefined) {
      this.conversations.set(conversation, fresh(seq));
      return "now";
    }
    const smallestHeld = Math.min(seq, ...c.held);
    const inOrder = seq <= c.last + 1;
    const released = seq <= c.releaseUpTo && seq === smallestHeld;
    if (inOrder || released) {
      c.held.delete(seq);
      if (seq > c.last) c.last = seq;
      this.afterChange(c);
      return "now";
    }
    c.held.add(seq);
    if (c.held.size > this.maxHeld) this.expire(c);
    else if (c.timer === undefined && !this.stopped) {
      c.timer = setTimeout(() => this.expire(c), this.holdMs);
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

  /** The deadline passed (or too much is held): everything held now goes, in seq order. */
  private expire(c: Conversation): void {
    clearTimeout(c.timer);
    c.timer = undefined;
    c.releaseUpTo = Math.max(c.releaseUpTo, ...c.held);
    this.due();
  }

  private afterChange(c: Conversation): void {
    if (c.held.size === 0) {
      clearTimeout(c.timer);
      c.timer = undefined;
      return;
    }
    const next = Math.min(...c.held);
    if (next <= c.last + 1 || next <= c.releaseUpTo) this.due();
  }

  private due(): void {
    if (this.dueScheduled || this.stopped) return;
    this.dueScheduled = true;
    setImmediate(() => {
      this.dueScheduled = false;
      if (!this.stopped) this.options.onDue();
    });
  }
}

const fresh = (seq: number): Conversation => ({
  last: seq,
  held: new Set(),
  releaseUpTo: -Infinity,
  timer: undefined,
});

/** Thrown to the receiver for a held delivery: it keeps the event and offers it again later. */
export class HeldForOrderError extends Error {
  readonly deferred = true;
  constructor(seq: number) {
    super(`delivery with seq ${seq} held until the gap before it fills (§15.6, E23)`);
    this.name = "HeldForOrderError";
  }
}

/**
 * The hand-over to the core, ordered: our accepted messages fill gaps, a message above the next
 * seq is deferred (the receiver keeps it in `inbound_pending` and offers it again on `onDue`).
 */
export function orderedEmit(
  buffer: ReorderBuffer,
  emit: (event: ProviderEvent) => Promise<void>,
): (event: ProviderEvent) => Promise<void> {
  return async (event) => {
    if (event.kind === "accepted" && event.seq !== undefined) {
      buffer.observe(conversationKey(event.local, event.to), event.seq);
    } else if (event.kind === "message" && event.seq !== undefined) {
      if (buffer.admit(conversationKey(event.local, event.from), event.seq) === "hold") {
        throw new HeldForOrderError(event.seq);
      }
    }
    return emit(event);
  };
}

const conversationKey = (local: string, contact: string): string => `${local}\n${contact}`;
