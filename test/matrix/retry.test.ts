import assert from "node:assert/strict";
import { silentLogger } from "../../src/util/log.js";
import { rateLimitWait, transientWait, withMatrixRetries } from "../../src/matrix/retry.js";

const fast = { initialDelayMs: 5, maxDelayMs: 20, maxRetryAfterMs: 200, giveUpAfterMs: 2000 };

describe("retrying homeserver requests", function () {
  it("treats 429 (with its retry_after_ms), 5xx and lost connections as transient, other 4xx not", function () {
    assert.equal(transientWait({ statusCode: 429, retryAfterMs: 700 }), 700);
    assert.equal(transientWait({ statusCode: 429 }), 0);
    assert.equal(transientWait({ statusCode: 500 }), 0);
    assert.equal(transientWait({ statusCode: 503 }), 0);
    assert.equal(transientWait(Object.assign(new Error("x"), { code: "ECONNREFUSED" })), 0);
    assert.equal(transientWait({ statusCode: 403, errcode: "M_FORBIDDEN" }), undefined);
    assert.equal(transientWait({ statusCode: 400 }), undefined);
    assert.equal(transientWait(new Error("bug")), undefined);
    assert.equal(rateLimitWait({ statusCode: 500 }), undefined, "500 may have acted: no repeat");
    assert.equal(rateLimitWait({ statusCode: 429, retryAfterMs: 50 }), 50);
  });

  it("repeats until the homeserver answers, waiting at least what a 429 asks", async function () {
    const answers: unknown[] = [{ statusCode: 500 }, { statusCode: 429, retryAfterMs: 120 }];
    const times: number[] = [];
    const result = await withMatrixRetries(
      "send",
      async () => {
        times.push(Date.now());
        const next = answers.shift();
        if (next !== undefined) throw next;
        return "$event";
      },
      silentLogger(),
      fast,
    );
    assert.equal(result, "$event");
    assert.equal(times.length, 3);
    assert.ok((times[2] ?? 0) - (times[1] ?? 0) >= 115, "waited for retry_after_ms");
  });

  it("gives up with the homeserver's error after giveUpAfterMs, and at once on a 4xx", async function () {
    let attempts = 0;
    await assert.rejects(
      withMatrixRetries(
        "send",
        async () => {
          attempts += 1;
          throw { statusCode: 502 };
        },
        silentLogger(),
        { ...fast, giveUpAfterMs: 100 },
      ),
      (err: unknown) => (err as { statusCode: number }).statusCode === 502,
    );
    assert.ok(attempts >= 2);
    attempts = 0;
    await assert.rejects(
      withMatrixRetries(
        "send",
        async () => {
          attempts += 1;
          throw { statusCode: 403 };
        },
        silentLogger(),
        fast,
      ),
    );
    assert.equal(attempts, 1);
  });
});
