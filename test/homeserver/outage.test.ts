import assert from "node:assert/strict";
import { eventsOf, sendText, setUp, type Setup } from "./appserviceFixture.js";
import { api } from "./testHelpers.js";

describe("test homeserver outage switch", function () {
  let s: Setup | undefined;
  afterEach(async function () {
    await s?.hs.stop();
    await s?.as.stop();
    s = undefined;
  });

  it("answers every request 500 while down, and normally again once it ends", async function () {
    s = await setUp("spec");
    const end = s.hs.outage({});
    const down = await api(s.hs.url, "GET", "/_matrix/client/versions");
    assert.equal(down.status, 500);
    assert.equal(down.json["errcode"], "M_UNKNOWN");
    end();
    const up = await api(s.hs.url, "GET", "/_matrix/client/versions");
    assert.equal(up.status, 200);
  });

  it("drops connections unanswered when unreachable", async function () {
    s = await setUp("spec");
    const end = s.hs.outage({ unreachable: true });
    await assert.rejects(api(s.hs.url, "GET", "/_matrix/client/versions"));
    end();
    assert.equal((await api(s.hs.url, "GET", "/_matrix/client/versions")).status, 200);
  });

  it("holds pushes to the appservice while down and delivers them once afterwards", async function () {
    const setup = await setUp("spec");
    s = setup;
    const before = setup.as.transactions().length;
    // The outage starts right after the event is stored, before its first push attempt.
    let end: (() => void) | undefined;
    setup.hs.failAppservicePushes(() => {
      end ??= setup.hs.outage({ status: 503 });
      return { status: 500 };
    });
    const eventId = await sendText(setup, "during the outage", "o1");
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(setup.as.transactions().length, before, "nothing was pushed while down");
    setup.hs.failAppservicePushes(undefined);
    end?.();
    await setup.hs.appserviceIdle("whatsapp");
    const received = eventsOf(setup.as.transactions().slice(before)).map((e) => e["event_id"]);
    assert.deepEqual(received, [eventId]);
  });
});
