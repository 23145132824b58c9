import assert from "node:assert/strict";
import { transactionId } from "../../src/matrix/gateway.js";
import { matrixUserId, roomId } from "../../src/util/ids.js";
import { BOT, startMatrixHarness, type MatrixHarness } from "./harness.js";

const text = (t: string) => ({ type: "text" as const, text: { text: t, spans: [] } });

describe("the bridge's homeserver calls under faults", function () {
  this.timeout(30_000);
  let h: MatrixHarness;
  let room: string;

  beforeEach(async function () {
    h = await startMatrixHarness();
    const created = await h.asAlice("POST", "/_matrix/client/v3/createRoom", { invite: [BOT] });
    room = created.json["room_id"] as string;
    await h.waitFor(async () => {
      const members = await h.asAlice(
        "GET",
        `/_matrix/client/v3/rooms/${encodeURIComponent(room)}/joined_members`,
      );
      const joined = members.json["joined"] as Record<string, unknown> | undefined;
      return joined?.[BOT] === undefined ? undefined : true;
    }, "the bot to join");
  });

  afterEach(async function () {
    await h.dispose();
  });

  it("a send repeated with the same idempotency key posts one event", async function () {
    const api = h.bridge.matrixApi;
    const first = await api.sendContent(matrixUserId(BOT), roomId(room), text("once"), {}, "k1");
    const again = await api.sendContent(matrixUserId(BOT), roomId(room), text("once"), {}, "k1");
    assert.equal(again, first);
    const other = await api.sendContent(matrixUserId(BOT), roomId(room), text("once"), {}, "k2");
    assert.notEqual(other, first);
    const bodies = (await h.messages(room)).filter((m) => m.body === "once");
    assert.equal(bodies.length, 2);
  });

  it("500 and 429 answers are retried, honouring retry_after_ms, and post the event once", async function () {
    const answers = [{ status: 500 as const }, { status: 429 as const, retryAfterMs: 300 }];
    const faulted: string[] = [];
    // When each attempt of this event reached the homeserver (performance.now: monotonic,
    // sub-millisecond). Attempts of one event share its transaction id; another event the bridge
    // sends meanwhile (seen under load: it took the injected 500) is not an attempt of this one.
    const arrivals: number[] = [];
    const txnId = encodeURIComponent(transactionId(matrixUserId(BOT), `${room}\nk3`));
    h.hs.failClientRequests((request) => {
      if (
        request.appserviceId === undefined ||
        !request.path.endsWith(`/send/m.room.message/${txnId}`)
      )
        return undefined;
      arrivals.push(performance.now());
      const next = answers.shift();
      if (next !== undefined) faulted.push(String(next.status));
      return next;
    });
    await h.bridge.matrixApi.sendContent(matrixUserId(BOT), roomId(room), text("late"), {}, "k3");
    assert.deepEqual(faulted, ["500", "429"]);
    // The gap between the 429 and the next attempt is what retry_after_ms asks for. Node's timers
    // count from the event loop's cached clock, which can lag the real one by a few milliseconds
    // on a loaded machine, so the wait may look slightly short; a retry that ignored the 429's
    // retry_after_ms would come after the harness's backoff (20 ms doubling, at most 200 ms).
    const gap = (arrivals[2] ?? 0) - (arrivals[1] ?? 0);
    assert.equal(arrivals.length, 3);
    assert.ok(gap >= 280, `waited for retry_after_ms (${gap.toFixed(1)} ms)`);
    assert.equal((await h.messages(room)).filter((m) => m.body === "late").length, 1);
  });
});
