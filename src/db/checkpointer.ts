import { statSync } from "node:fs";
import { Worker } from "node:worker_threads";

/**
 * WAL checkpoints off the main thread.
 *
 * Why: with the synchronous driver (node-sqlite.ts), SQLite's automatic checkpoint runs inside the
 * COMMIT that crosses 1,000 WAL pages, on the main thread: it copies pages into the database file
 * and syncs it, 5-50 ms during which nothing else in the bridge runs (measured: p99.9 of a small
 * commit 14.5 ms with it, 3.9 ms without, and half the total commit time). So the bridge's
 * connection has `wal_autocheckpoint = 0`, and this worker, with a connection of its own that only
 * ever checkpoints, runs a PASSIVE checkpoint every `intervalMs`. A passive checkpoint never blocks
 * the writer and never waits for it; it copies what it can, and the writer restarts the WAL from
 * the beginning once everything was copied. A failed checkpoint (a read-only or full disk, the
 * file gone) is only retried at the next interval: the WAL keeps the data safe meanwhile.
 *
 * The worker (a V8 isolate of its own, ~10 MB resident) starts only once the WAL has grown past
 * `startAtWalBytes`: an idle bridge, or one that writes little, never needs it (issue #15's idle
 * memory). Until then the main thread only looks at the WAL file's size once per interval.
 */
const WORKER_SOURCE = `
const { workerData, parentPort } = require("node:worker_threads");
const { DatabaseSync } = require("node:sqlite");
let db;
try {
  db = new DatabaseSync(workerData.filename);
  db.exec("PRAGMA busy_timeout = 0");
} catch {
  db = undefined;
}
const checkpoint = () => {
  if (db === undefined) return;
  try {
    db.prepare("PRAGMA wal_checkpoint(PASSIVE)").all();
  } catch {
    // Busy, read-only, full: the next interval tries again.
  }
};
// Started because the WAL is already long: copy it at once.
checkpoint();
const timer = setInterval(checkpoint, workerData.intervalMs);
parentPort.on("message", (message) => {
  if (message !== "stop") return;
  clearInterval(timer);
  checkpoint();
  try {
    db?.close();
  } catch {}
  parentPort.postMessage("stopped");
});
`;

interface Checkpointer {
  /** A last checkpoint, then the worker ends. */
  stop(): Promise<void>;
  /** Whether the worker was started (the WAL grew past the threshold). */
  readonly started: boolean;
}

/** 1 MB of WAL (256 pages of 4 KB), a quarter of SQLite's own automatic threshold. */
const START_AT_WAL_BYTES = 1 << 20;

export function startCheckpointer(
  filename: string,
  intervalMs = 1000,
  startAtWalBytes = START_AT_WAL_BYTES,
): Checkpointer {
  let worker: Worker | undefined;
  const watch = setInterval(() => {
    let size: number;
    try {
      size = statSync(`${filename}-wal`).size;
    } catch {
      return; // No WAL file yet (nothing written since the last clean close).
    }
    if (size < startAtWalBytes) return;
    clearInterval(watch);
    worker = spawnWorker(filename, intervalMs);
  }, intervalMs);
  watch.unref();
  let stopped: Promise<void> | undefined;
  return {
    get started() {
      return worker !== undefined;
    },
    stop() {
      clearInterval(watch);
      // Without a worker the WAL is short; closing the last connection checkpoints it.
      stopped ??= worker === undefined ? Promise.resolve() : stopWorker(worker);
      return stopped;
    },
  };
}

function spawnWorker(filename: string, intervalMs: number): Worker {
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { filename, intervalMs } });
  // It must not keep a process alive that has nothing else to do.
  worker.unref();
  // A worker that cannot start (no threads left) leaves the WAL to grow until the next start,
  // where SQLite checkpoints it on open: nothing is lost, nothing to report per message.
  worker.on("error", () => undefined);
  return worker;
}

function stopWorker(worker: Worker): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      void worker.terminate().finally(resolve);
    };
    const timeout = setTimeout(done, 2000);
    timeout.unref();
    worker.once("message", () => {
      clearTimeout(timeout);
      done();
    });
    worker.once("exit", () => {
      clearTimeout(timeout);
      resolve();
    });
    worker.postMessage("stop");
  });
}
