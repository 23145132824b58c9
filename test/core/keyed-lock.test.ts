import assert from "node:assert/strict";
import { KeyedLock } from "../../src/core/keyed-lock.js";

describe("keyed lock", function () {
  it("runs tasks of one key one at a time in call order, even after a failure", async function () {
    const lock = new KeyedLock();
    const log: string[] = [];
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const first = lock.run("a", async () => {
      log.push("first start");
      await gate;
      log.push("first end");
      throw new Error("first failed");
    });
    const second = lock.run("a", async () => {
      log.push("second");
      return 2;
    });
    const other = lock.run("b", async () => {
      log.push("other key");
      return 3;
    });
    assert.equal(await other, 3);
    assert.deepEqual(log, ["first start", "other key"], "another key is not held up");
    release();
    await assert.rejects(first, /first failed/);
    assert.equal(await second, 2);
    assert.deepEqual(log, ["first start", "other key", "first end", "second"]);
  });
});
