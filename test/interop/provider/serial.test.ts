import assert from "node:assert/strict";
import { KeyedQueue } from "../../../src/interop/provider/serial.js";

/** A job that records its start and end and finishes when `finish` is called. */
function gate(log: string[], name: string): { job: () => Promise<void>; finish: () => void } {
  let finish!: () => void;
  const done = new Promise<void>((resolve) => {
    finish = resolve;
  });
  return {
    job: async () => {
      log.push(`${name} start`);
      await done;
      log.push(`${name} end`);
    },
    finish,
  };
}

const turns = async (n = 5): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise<void>((resolve) => setImmediate(resolve));
};

describe("KeyedQueue", function () {
  it("runs one key's jobs in order and another key's job while the first key's is unfinished", async function () {
    const queue = new KeyedQueue();
    const log: string[] = [];
    const a1 = gate(log, "a1");
    const a2 = gate(log, "a2");
    const b1 = gate(log, "b1");
    const done = [queue.run("a", a1.job), queue.run("a", a2.job), queue.run("b", b1.job)];
    await turns();
    assert.deepEqual(log, ["a1 start", "b1 start"], "a2 waits for a1; b1 does not");
    b1.finish();
    a1.finish();
    await turns();
    a2.finish();
    await Promise.all(done);
    assert.deepEqual(log, ["a1 start", "b1 start", "b1 end", "a1 end", "a2 start", "a2 end"]);
  });

  it("an exclusive job waits for every job before it, and every job after it waits for it", async function () {
    const queue = new KeyedQueue();
    const log: string[] = [];
    const a1 = gate(log, "a1");
    const b1 = gate(log, "b1");
    const all = gate(log, "all");
    const c1 = gate(log, "c1");
    const done = [
      queue.run("a", a1.job),
      queue.run("b", b1.job),
      queue.runExclusive(all.job),
      queue.run("c", c1.job),
    ];
    await turns();
    assert.deepEqual(log, ["a1 start", "b1 start"]);
    a1.finish();
    await turns();
    assert.deepEqual(log, ["a1 start", "b1 start", "a1 end"], "the exclusive job waits for b1");
    b1.finish();
    await turns();
    assert.deepEqual(log.slice(3), ["b1 end", "all start"], "c1, of a new key, waits for it");
    all.finish();
    await turns();
    c1.finish();
    await Promise.all(done);
    assert.deepEqual(log.slice(5), ["all end", "c1 start", "c1 end"]);
  });

  it("a failed job rejects its caller only, and its key goes on", async function () {
    const queue = new KeyedQueue();
    const failed = queue.run("a", () => Promise.reject(new Error("broken")));
    const next = queue.run("a", () => Promise.resolve("after"));
    await assert.rejects(failed, /broken/);
    assert.equal(await next, "after");
  });

  it("idle resolves once every job submitted so far has finished", async function () {
    const queue = new KeyedQueue();
    const log: string[] = [];
    const a1 = gate(log, "a1");
    const all = gate(log, "all");
    void queue.run("a", a1.job);
    void queue.runExclusive(all.job);
    let idle = false;
    void queue.idle().then(() => {
      idle = true;
    });
    a1.finish();
    await turns();
    assert.equal(idle, false, "the exclusive job still runs");
    all.finish();
    await turns();
    assert.equal(idle, true);
  });
});
