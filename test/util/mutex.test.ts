import assert from "node:assert/strict";
import { KeyedMutex } from "../../src/util/mutex.js";

describe("keyed mutex", function () {
  it("runs operations on one key one after another, in arrival order", async function () {
    const mutex = new KeyedMutex();
    const log: string[] = [];
    const step = (name: string, ticks: number) =>
      mutex.run(["alice"], async () => {
        log.push(`${name} start`);
        for (let i = 0; i < ticks; i++) await Promise.resolve();
        log.push(`${name} end`);
      });
    await Promise.all([step("a", 5), step("b", 0), step("c", 2)]);
    assert.deepEqual(log, ["a start", "a end", "b start", "b end", "c start", "c end"]);
    assert.equal(mutex.size, 0, "released keys are forgotten");
  });

  it("lets different keys interleave and overlapping key sets wait for each other", async function () {
    const mutex = new KeyedMutex();
    const log: string[] = [];
    let releaseA!: () => void;
    const gate = new Promise<void>((resolve) => (releaseA = resolve));
    const a = mutex.run(["x"], async () => {
      log.push("a holds x");
      await gate;
      log.push("a releases x");
    });
    const b = mutex.run(["y"], async () => {
      log.push("b holds y");
    });
    const c = mutex.run(["y", "x"], async () => {
      log.push("c holds x and y");
    });
    await b;
    assert.deepEqual(log, ["a holds x", "b holds y"]);
    releaseA();
    await Promise.all([a, c]);
    assert.deepEqual(log.slice(2), ["a releases x", "c holds x and y"]);
  });

  it("releases the key when the operation throws", async function () {
    const mutex = new KeyedMutex();
    await assert.rejects(
      mutex.run(["k"], async () => {
        throw new Error("boom");
      }),
      /boom/,
    );
    assert.equal(await mutex.run(["k"], async () => "next runs"), "next runs");
  });
});
