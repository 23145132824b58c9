import assert from "node:assert/strict";
import { Backoff } from "../../../src/interop/transport/backoff.js";

describe("reconnect backoff", function () {
  it("doubles its cap from the initial delay up to the maximum", function () {
    const backoff = new Backoff({ initialMs: 1000, maxMs: 60_000, random: () => 0.999999 });
    const delays = Array.from({ length: 9 }, () => backoff.next());
    assert.deepEqual(delays, [999, 1999, 3999, 7999, 15999, 31999, 59999, 59999, 59999]);
  });

  it("draws each delay uniformly below the cap (full jitter)", function () {
    const draws = [0, 0.5, 0.25];
    const backoff = new Backoff({ initialMs: 1000, maxMs: 60_000, random: () => draws.shift()! });
    assert.deepEqual([backoff.next(), backoff.next(), backoff.next()], [0, 1000, 1000]);
  });

  it("starts over from the initial delay after a reset", function () {
    const backoff = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 0.999999 });
    backoff.next();
    backoff.next();
    backoff.next();
    assert.equal(backoff.attempts, 3);
    backoff.reset();
    assert.equal(backoff.attempts, 0);
    assert.equal(backoff.next(), 99);
  });

  it("stays finite after a very long outage", function () {
    const backoff = new Backoff({ initialMs: 1000, maxMs: 60_000, random: () => 0.5 });
    for (let i = 0; i < 10_000; i++) backoff.next();
    assert.equal(backoff.next(), 30_000);
  });

  it("rejects a maximum below the initial delay", function () {
    assert.throws(() => new Backoff({ initialMs: 1000, maxMs: 10 }), RangeError);
  });
});
