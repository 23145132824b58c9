import assert from "node:assert/strict";
import {
  decodeAccepted,
  decodeLookupResult,
  encodeLookupRequest,
} from "../../src/interop/codec/index.js";
import { phoneNumber } from "../../src/util/ids.js";
import { ALICE, child, errorOf } from "./harness.js";
import { text } from "./provider-user.js";
import { makeWorld, PHONE, type World } from "./world.js";

describe("simulator: reachability and discovery (§10.1, §10.2)", function () {
  this.timeout(30000);
  let w: World;

  beforeEach(async function () {
    w = await makeWorld({ limits: { "lookups-per-day-unverified": 3 } });
  });
  afterEach(async function () {
    await w.close();
  });

  const lookup = (phones: string[]) =>
    w.provider.iq("get", encodeLookupRequest({ phones }), { from: ALICE });

  it("answers only reachable (with the JID) or not-reachable", async function () {
    await w.sim.users.create({
      phone: phoneNumber("+491703333333"),
      allowedProviders: ["other-example"],
    });
    const result = decodeLookupResult(
      child(await lookup([PHONE, "+491703333333", "+491709999999", "not-a-number"])),
    );
    assert.deepEqual(result, [
      { phone: PHONE, status: "reachable", jid: "491701234567@wa.example" },
      { phone: "+491703333333", status: "not-reachable" },
      { phone: "+491709999999", status: "not-reachable" },
      { phone: "not-a-number", status: "not-reachable" },
    ]);
  });

  it("refuses an empty lookup and one above max-lookup-batch with bad-request", async function () {
    assert.equal(errorOf(await lookup([])).condition, "bad-request");
    const six = [
      "+491700000001",
      "+491700000002",
      "+491700000003",
      "+491700000004",
      "+491700000005",
      "+491700000006",
    ];
    assert.equal(errorOf(await lookup(six)).condition, "bad-request");
  });

  it("counts distinct numbers per rolling 24 h, refusing the whole request over the quota", async function () {
    assert.equal((await lookup(["+491700000001", "+491700000002", "bad"])).attrs.type, "result");
    assert.equal((await lookup(["+491700000001"])).attrs.type, "result");
    const over = errorOf(await lookup(["+491700000003", "+491700000004"]));
    assert.deepEqual(
      [over.condition, over.type, over.app?.attrs.scope],
      ["resource-constraint", "wait", "lookup"],
    );
    assert.equal((await lookup(["+491700000003"])).attrs.type, "result");
    assert.equal(errorOf(await lookup(["+491700000004"])).app?.name, "rate-limited");
    w.clock.advance(86_400_001);
    assert.equal((await lookup(["+491700000004"])).attrs.type, "result");
  });

  it("counts a first message to a new number as a lookup", async function () {
    await lookup(["+491700000001", "+491700000002"]);
    // Fetching Bob's keys counts as the third lookup; the message then needs no more.
    const first = await w.alice.message("491701234567@wa.example" as never, text("hi"));
    assert.equal(decodeAccepted(child(await w.provider.outcome(first.stanza))).seq, 1);
    const other = phoneNumber("+491704444444");
    await w.sim.users.create({ phone: other });
    const e = errorOf(
      await w.provider.iq("get", encodeLookupRequest({ phones: [other] }), { from: ALICE }),
    );
    assert.equal(e.app?.attrs.scope, "lookup");
  });
});
