import { performance, type EventLoopUtilization } from "node:perf_hooks";
import v8 from "node:v8";
import { describeError } from "./errors.js";
import type { Logger } from "./log.js";

/**
 * Gives back the memory a burst of work left committed to the V8 heap, once the process is idle.
 *
 * Why: start-up (tens of thousands of logins reporting their state, a few thousand modules
 * compiled) and any burst of messages grow V8's young generation to its maximum, and V8 keeps it
 * committed. Its own memory reducer is meant to shrink it when the process goes idle, but it
 * judges the allocation rate from samples taken at garbage collections, and an idle bridge
 * collects nothing: it was seen to answer "high allocation rate" every 8 s for minutes while the
 * process allocated ~0.1 MB/s. So the bridge's idle RSS stayed 35-80 MB above its live heap
 * (bench/memory.ts: 155 MB with nothing to do, 206 MB with 10,000 users). One memory-reducing
 * collection (what V8 does on a low-memory notification) once the event loop is idle returns it.
 *
 * Cost: a look every `intervalMs` (the event loop's utilisation and the heap's size, no walk of
 * the heap); a collection (~0.1-0.4 s, once) only after the heap grew by `minGrowthBytes` since the
 * last one and only when the last `idleLooks` intervals were idle, at most once per
 * `minSpacingMs`. Busy processes are never collected this way: per-message CPU is untouched.
 */
interface HeapCompactionOptions {
  log: Logger;
  /** How often the process is looked at. */
  intervalMs?: number;
  /** Event loop utilisation (0-1) over an interval below which the process is idle. */
  idleUtilization?: number;
  /**
   * Consecutive idle intervals before a compaction: a bridge under light traffic (100 messages
   * a second is a few per cent) is not paused for one in a short lull.
   */
  idleLooks?: number;
  /** Growth of the heap's resident size since the last compaction that is worth one. */
  minGrowthBytes?: number;
  /** Least time between two compactions (the first, after start-up, has no wait). */
  minSpacingMs?: number;
  /** Tests: the collection, the heap's resident size, the utilisation, the clock. */
  collect?: () => Promise<void>;
  heapResidentBytes?: () => number;
  utilization?: () => number;
  now?: () => number;
}

export interface HeapCompaction {
  /** How many compactions ran (tests and logs). */
  readonly count: number;
  /** Looks once now (what the timer does); resolves when a compaction it started finished. */
  check(): Promise<void>;
  stop(): void;
}

export function startHeapCompaction(options: HeapCompactionOptions): HeapCompaction {
  const intervalMs = options.intervalMs ?? 2_000;
  const idleUtilization = options.idleUtilization ?? 0.02;
  const idleLooks = options.idleLooks ?? 2;
  const minGrowthBytes = options.minGrowthBytes ?? 16 * 1024 * 1024;
  const minSpacingMs = options.minSpacingMs ?? 60_000;
  const collect = options.collect ?? collectWithLowMemoryNotification;
  const heapResidentBytes =
    options.heapResidentBytes ?? (() => v8.getHeapStatistics().total_physical_size);
  const utilization = options.utilization ?? utilizationSinceLastLook();
  const now = options.now ?? (() => performance.now());
  const { log } = options;

  // Undefined until the first compaction: whatever start-up left is worth one.
  let baseline: number | undefined;
  let lastAt = -Infinity;
  let count = 0;
  let idleInARow = 0;
  let running = false;
  let stopped = false;

  async function check(): Promise<void> {
    if (running || stopped) return;
    idleInARow = utilization() < idleUtilization ? idleInARow + 1 : 0;
    if (idleInARow < idleLooks || now() - lastAt < minSpacingMs) return;
    const before = heapResidentBytes();
    if (baseline !== undefined && before - baseline < minGrowthBytes) return;
    running = true;
    const started = now();
    try {
      await collect();
      count++;
      baseline = heapResidentBytes();
      log.debug(
        {
          heapBeforeMb: Math.round(before / 1e6),
          heapAfterMb: Math.round(baseline / 1e6),
          ms: Math.round(now() - started),
        },
        "idle: heap compacted",
      );
    } catch (err) {
      // Not available (a Node built without the inspector): the bridge runs as before.
      stopped = true;
      log.debug({ err: describeError(err) }, "idle heap compaction is not available");
    } finally {
      lastAt = now();
      running = false;
    }
  }

  const timer = setInterval(() => void check(), intervalMs);
  timer.unref();
  return {
    get count() {
      return count;
    },
    check,
    stop() {
      stopped = true;
      clearInterval(timer);
    },
  };
}

/** The event loop's utilisation since the previous call (the first: since this one was made). */
function utilizationSinceLastLook(): () => number {
  let last: EventLoopUtilization = performance.eventLoopUtilization();
  return () => {
    const current = performance.eventLoopUtilization();
    const delta = performance.eventLoopUtilization(current, last);
    last = current;
    return delta.utilization;
  };
}

let shared: { compaction: HeapCompaction; users: number } | undefined;

/** How many running bridges hold the process's heap compaction (tests). */
export function heapCompactionHolders(): number {
  return shared?.users ?? 0;
}

/**
 * The process's one heap compaction, started by the first caller and stopped when the last one
 * releases it: the heap is the process's, and a test process runs many bridges.
 */
export function retainHeapCompaction(log: Logger): () => void {
  shared ??= { compaction: startHeapCompaction({ log }), users: 0 };
  shared.users++;
  let released = false;
  return () => {
    if (released || shared === undefined) return;
    released = true;
    if (--shared.users === 0) {
      shared.compaction.stop();
      shared = undefined;
    }
  };
}

/**
 * A full collection that also shrinks the young generation and releases pooled pages: the
 * inspector protocol's HeapProfiler.collectGarbage (a low-memory notification to V8). Through an
 * in-process session (no port is opened), connected only for the call.
 */
async function collectWithLowMemoryNotification(): Promise<void> {
  const { Session } = await import("node:inspector");
  const session = new Session();
  session.connect();
  try {
    await new Promise<void>((resolve, reject) => {
      session.post("HeapProfiler.collectGarbage", (err) =>
        err === null ? resolve() : reject(err),
      );
    });
  } finally {
    // Not from inside the protocol callback: disconnecting there was seen to stall the process.
    await new Promise<void>((resolve) => setImmediate(resolve));
    session.disconnect();
  }
}
