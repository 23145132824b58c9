import assert from "node:assert/strict";
import v8 from "node:v8";
import { startHeapCompaction, type HeapCompaction } from "../../src/util/heap-compaction.js";
import { silentLogger } from "../../src/util/log.js";

const MB = 1024 * 1024;

/** A compaction on fakes: the test sets the utilisation, the heap's size and the clock. */
function fakeWorld() {
  const world = {
    utilization: 0,
    heap: 150 * MB,
    now: 0,
    collections: 0,
    /** What the heap shrinks to on a collection. */
    compactsTo: 40 * MB,
    compaction: undefined as unknown as HeapCompaction,
  };
  world.compaction = startHeapCompaction({
    log: silentLogger(),
    intervalMs: 3_600_000,
    idleUtilization: 0.05,
    idleLooks: 1,
    minGrowthBytes: 16 * MB,
    minSpacingMs: 60_000,
    utilization: () => world.utilization,
    heapResidentBytes: () => world.heap,
    now: () => world.now,
    collect: () => {
      world.collections++;
      world.heap = world.compactsTo;
      return Promise.resolve();
    },
  });
  return world;
}

describe("idle heap compaction", function () {
  const started: HeapCompaction[] = [];
  afterEach(function () {
    for (const c of started.splice(0)) c.stop();
  });

  it("gives back what start-up left once the process is idle, and not while it is busy", async function () {
    const world = fakeWorld();
    started.push(world.compaction);
    world.utilization = 0.6;
    await world.compaction.check();
    assert.equal(world.collections, 0, "compacted while busy");
    world.utilization = 0.01;
    await world.compaction.check();
    assert.equal(world.collections, 1);
    assert.equal(world.heap, 40 * MB);
  });

  it("compacts again only after the heap grew since the last time, spaced, and idle", async function () {
    const world = fakeWorld();
    started.push(world.compaction);
    world.utilization = 0.01;
    await world.compaction.check();
    assert.equal(world.collections, 1);

    // A burst right after grew the heap: idle again, but too soon after the last compaction.
    world.heap = 140 * MB;
    world.now = 10_000;
    await world.compaction.check();
    assert.equal(world.collections, 1, "compacted twice within a minute");

    // Later, while the burst goes on: no collection.
    world.now = 70_000;
    world.utilization = 0.9;
    await world.compaction.check();
    assert.equal(world.collections, 1, "compacted during a burst");

    // Idle: given back.
    world.utilization = 0.01;
    await world.compaction.check();
    assert.equal(world.collections, 2);

    // Idle, later, little growth: nothing to give back.
    world.now = 200_000;
    world.heap = 50 * MB;
    await world.compaction.check();
    assert.equal(world.collections, 2, "compacted a heap that had not grown");
  });

  it("a short lull in traffic is not taken for idle", async function () {
    const compactions: number[] = [];
    let utilization = 0.01;
    const compaction = startHeapCompaction({
      log: silentLogger(),
      intervalMs: 3_600_000,
      idleLooks: 2,
      utilization: () => utilization,
      heapResidentBytes: () => 150 * MB,
      collect: () => {
        compactions.push(1);
        return Promise.resolve();
      },
    });
    started.push(compaction);
    await compaction.check();
    utilization = 0.3;
    await compaction.check();
    utilization = 0.01;
    await compaction.check();
    assert.equal(compactions.length, 0, "compacted after one quiet interval");
    await compaction.check();
    assert.equal(compactions.length, 1);
  });

  it("a stopped compaction collects nothing", async function () {
    const world = fakeWorld();
    world.compaction.stop();
    world.utilization = 0.01;
    await world.compaction.check();
    assert.equal(world.collections, 0);
  });

  it("the real collection shrinks a young generation a burst of allocations grew", async function () {
    const youngPhysical = (): number =>
      v8.getHeapSpaceStatistics().find((s) => s.space_name === "new_space")?.physical_space_size ??
      0;
    // A burst whose objects survive a few scavenges grows the young generation.
    let keep: unknown[][] = [];
    for (let round = 0; round < 40; round++) {
      keep.push(Array.from({ length: 20_000 }, (_, i) => ({ i, s: `x${i}` })));
      if (keep.length > 8) keep = keep.slice(-8);
    }
    keep = [];
    const before = youngPhysical();
    const compaction = startHeapCompaction({
      log: silentLogger(),
      intervalMs: 3_600_000,
      idleLooks: 1,
      utilization: () => 0,
    });
    started.push(compaction);
    await compaction.check();
    assert.equal(compaction.count, 1);
    const after = youngPhysical();
    assert.ok(
      after < before / 2,
      `young generation ${(before / MB).toFixed(1)} MB -> ${(after / MB).toFixed(1)} MB`,
    );
  });
});
