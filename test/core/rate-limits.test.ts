import assert from "node:assert/strict";
import { SlidingWindowLimiter, UserLimits, UserLimitError } from "../../src/core/rate-limits.js";
import { matrixUserId } from "../../src/util/ids.js";

// No network here: the limits count per Matrix user in the core, the same for every network.
describe("per-user rate limits", function () {
  it("allows `limit` takes in any window and says when the next one is allowed", function () {
    let now = 1_000_000;
    const limiter = new SlidingWindowLimiter(2, 60_000, () => now);
    assert.equal(limiter.take("u"), undefined);
    now += 10_000;
    assert.equal(limiter.take("u"), undefined);
    now += 1_000;
    assert.equal(limiter.take("u")?.getTime(), 1_000_000 + 60_000, "free when the first expires");
    assert.equal(limiter.take("other"), undefined, "another user has their own window");
    now = 1_000_000 + 60_001;
    assert.equal(limiter.take("u"), undefined, "one slot freed");
    assert.ok(limiter.take("u") !== undefined, "the second is still inside the window");
  });

  it("a burst across a window boundary cannot double the rate (sliding, not fixed windows)", function () {
    let now = 59_000;
    const limiter = new SlidingWindowLimiter(3, 60_000, () => now);
    for (let i = 0; i < 3; i++) assert.equal(limiter.take("u"), undefined);
    now = 61_000; // a fixed window would have reset at 60 000
    assert.ok(limiter.take("u") !== undefined);
  });

  it("refused takes do not count, so a user who keeps trying is not locked out longer", function () {
    let now = 0;
    const limiter = new SlidingWindowLimiter(1, 1000, () => now);
    assert.equal(limiter.take("u"), undefined);
    for (let i = 0; i < 5; i++) assert.ok(limiter.take("u") !== undefined);
    now = 1001;
    assert.equal(limiter.take("u"), undefined);
  });

  it("new chats over the limit throw a rate-limited error with the time to retry, for the user", function () {
    const limits = new UserLimits(
      { messages_per_minute: 60, new_chats_per_hour: 1, message_requests_per_hour: 20 },
      () => Date.UTC(2026, 0, 1, 12, 0, 0),
    );
    const user = matrixUserId("@alice:example.org");
    limits.takeNewChat(user);
    assert.throws(
      () => limits.takeNewChat(user),
      (err: unknown) =>
        err instanceof UserLimitError &&
        err.code === "rate-limited" &&
        err.retryAt?.toISOString() === "2026-01-01T13:00:00.000Z" &&
        /at most 1 new chats an hour\. Try again after 2026-01-01 13:00:00 UTC\./.test(err.message),
    );
  });
});
