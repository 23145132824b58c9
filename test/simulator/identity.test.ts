import assert from "node:assert/strict";
import {
  decodeBinding,
  decodeBound,
  decodeCodeSent,
  encodeConfirmCode,
  encodeProfile,
  encodeRequestCode,
  encodeUnbind,
  encodeBinding,
} from "../../src/interop/codec/index.js";
import { xml, type XmlElement } from "../../src/interop/codec/xml.js";
import { phoneNumber, type PhoneNumber } from "../../src/util/ids.js";
import type { Simulator } from "../../simulator/main.js";
import {
  ALICE,
  BOB,
  child,
  childNamed,
  errorOf,
  startTestSimulator,
  TestClock,
  TestProvider,
} from "./harness.js";

const PHONE = phoneNumber("+491709876543");
const PHONE2 = phoneNumber("+491701111111");

describe("simulator: phone verification and bindings (§9, E16)", function () {
  let sim: Simulator;
  let clock: TestClock;
  let provider: TestProvider;

  beforeEach(async function () {
    ({ sim, clock } = await startTestSimulator());
    provider = await TestProvider.connect(sim.service);
    await provider.hello();
  });
  afterEach(async function () {
    await provider.close();
    await sim.stop();
  });

  const request = (phone: string, from = ALICE) =>
    provider.iq(
      "set",
      encodeRequestCode({ phone: phone as PhoneNumber, channel: "sms", lang: undefined }),
      { from },
    );
  const confirm = (phone: PhoneNumber, code: string, from = ALICE) =>
    provider.iq("set", encodeConfirmCode({ phone, code }), { from });
  const codeOf = async (phone: PhoneNumber): Promise<string> => {
    const found = await sim.gatekeeper.services.identity.latestCode(phone);
    assert.ok(found !== undefined, `no code for ${phone}`);
    return found.code;
  };
  const wrong = (code: string) => String((Number(code) + 1) % 1_000_000).padStart(6, "0");

  it("sends a 6-digit code valid 600 s that binds the number on confirmation", async function () {
    const sent = decodeCodeSent(child(await request(PHONE)));
    assert.equal(sent.length, 6);
    assert.equal(sent.expires.getTime(), clock.now() + 600_000);
    assert.equal(sent.resendAfter, 60);
    const code = await codeOf(PHONE);
    assert.match(code, /^[0-9]{6}$/);
    const bound = decodeBound(child(await confirm(PHONE, code)));
    assert.deepEqual(bound, { phone: PHONE, jid: ALICE });
    const binding = await provider.iq("get", encodeBinding());
    assert.equal(decodeBinding(child(binding)).phone, PHONE);
    // Single use.
    assert.equal(errorOf(await confirm(PHONE, code)).app?.name, "code-expired");
  });

  it("a wrong code answers code-invalid with attempts-left, and the 5th invalidates the code", async function () {
    await request(PHONE);
    const code = await codeOf(PHONE);
    const lefts: string[] = [];
    for (let i = 0; i < 5; i++) {
      const e = errorOf(await confirm(PHONE, wrong(code)));
      assert.deepEqual(
        [e.condition, e.type, e.app?.name],
        ["not-acceptable", "modify", "code-invalid"],
      );
      lefts.push(String(e.app?.attrs["attempts-left"]));
    }
    assert.deepEqual(lefts, ["4", "3", "2", "1", "0"]);
    assert.equal(errorOf(await confirm(PHONE, code)).app?.name, "code-expired");
  });

  it("an expired code or another JID's code answers code-expired", async function () {
    await request(PHONE);
    const code = await codeOf(PHONE);
    assert.equal(errorOf(await confirm(PHONE, code, BOB)).app?.name, "code-expired");
    clock.advance(600_001);
    assert.equal(errorOf(await confirm(PHONE, code)).app?.name, "code-expired");
  });

  it("a new request for the same JID and number invalidates the previous code", async function () {
    await request(PHONE);
    const first = await codeOf(PHONE);
    clock.advance(60_000);
    await request(PHONE);
    const second = await codeOf(PHONE);
    if (first !== second)
      assert.equal(errorOf(await confirm(PHONE, first)).app?.name, "code-invalid");
    assert.equal(child(await confirm(PHONE, second)).name, "bound");
  });

  it("spaces requests per (JID, number) and caps them per number and per user in 24 h", async function () {
    await request(PHONE);
    const soon = errorOf(await request(PHONE));
    assert.deepEqual(
      [soon.condition, soon.type, soon.app?.attrs.scope],
      ["resource-constraint", "wait", "verification"],
    );
    assert.equal(soon.app?.attrs["retry-after"], "60");
    // Per number: 5 per provider in 24 h, whoever asks.
    const users = [
      BOB,
      "c@matrix.bridge.example",
      "d@matrix.bridge.example",
      "e@matrix.bridge.example",
    ];
    for (const u of users) assert.equal((await request(PHONE, u)).attrs.type, "result");
    const sixth = errorOf(await request(PHONE, "f@matrix.bridge.example"));
    assert.equal(sixth.app?.attrs.scope, "verification");
    clock.advance(86_400_001);
    assert.equal((await request(PHONE, "f@matrix.bridge.example")).attrs.type, "result");
  });

  it("locks a number for 24 h after 10 wrong attempts, and the 10th failure already locks", async function () {
    for (let round = 0; round < 2; round++) {
      await request(PHONE);
      const code = await codeOf(PHONE);
      for (let i = 0; i < 5; i++) {
        const e = errorOf(await confirm(PHONE, wrong(code)));
        assert.equal(e.app?.name, "code-invalid");
      }
      clock.advance(61_000);
    }
    for (const answer of [await request(PHONE), await confirm(PHONE, "000000")]) {
      const e = errorOf(answer);
      assert.deepEqual([e.condition, e.type, e.app?.name], ["policy-violation", "wait", "locked"]);
      assert.ok(Date.parse(String(e.app?.attrs.until)) > clock.now());
    }
    clock.advance(86_400_000);
    assert.equal((await request(PHONE)).attrs.type, "result");
  });

  it("a malformed number answers bad-request + phone-invalid", async function () {
    const e = errorOf(await request("+0123"));
    assert.deepEqual([e.condition, e.app?.name], ["bad-request", "phone-invalid"]);
  });

  it("moves a number to the JID that confirms it and tells the loser with <unbound reason='rebound'>", async function () {
    await request(PHONE);
    await confirm(PHONE, await codeOf(PHONE));
    await request(PHONE, BOB);
    const mark = provider.received.length;
    await confirm(PHONE, await codeOf(PHONE), BOB);
    const note = await provider.waitFor((s) => childNamed(s, "unbound") !== undefined, 5000, mark);
    assert.equal(note.attrs.to, ALICE);
    assert.deepEqual(childNamed(note, "unbound")?.attrs, {
      xmlns: "urn:interop:identity:0",
      phone: PHONE,
      reason: "rebound",
    });
    assert.equal(childNamed(note, "stanza-id")?.attrs.by, "wa.example");
    assert.equal(decodeBinding(child(await provider.iq("get", encodeBinding()))).phone, undefined);
    // A JID binds one number: a new number replaces Bob's old one.
    await request(PHONE2, BOB);
    const mark2 = provider.received.length;
    await confirm(PHONE2, await codeOf(PHONE2), BOB);
    const replaced = await provider.waitFor(
      (s) => childNamed(s, "unbound") !== undefined,
      5000,
      mark2,
    );
    assert.equal(replaced.attrs.to, BOB);
    assert.equal(childNamed(replaced, "unbound")?.attrs.phone, PHONE);
  });

  it("unbind removes the binding", async function () {
    await request(PHONE);
    await confirm(PHONE, await codeOf(PHONE));
    assert.equal((await provider.iq("set", encodeUnbind())).attrs.type, "result");
    assert.equal(decodeBinding(child(await provider.iq("get", encodeBinding()))).phone, undefined);
  });

  it("refuses handles that look like numbers, hide characters or copy another user's", async function () {
    const set = (handle: string, from = ALICE): Promise<XmlElement> =>
      provider.iq("set", encodeProfile({ handle }), { from });
    assert.equal((await set("alice:matrix.bridge.example")).attrs.type, "result");
    for (const bad of [
      "x".repeat(65),
      "+alice",
      "al\u200bice",
      "bob12345",
      "a123",
      "line\u2028sep",
    ]) {
      const e = errorOf(await set(bad, BOB));
      assert.deepEqual([e.condition, e.app?.name], ["not-acceptable", "handle-invalid"], bad);
    }
    const clash = errorOf(await set("ALICE:matrix.bridge.example", BOB));
    assert.equal(clash.app?.name, "handle-invalid");
    assert.equal((await set("bob1")).attrs.type, "result");
    void xml;
  });

  it("caps request-code per provider user at verification-requests-per-user in 24 h", async function () {
    for (let i = 0; i < 10; i++) {
      const r = await request(`+4917000000${String(i).padStart(2, "0")}`);
      assert.equal(r.attrs.type, "result");
    }
    const e = errorOf(await request("+491700000099"));
    assert.deepEqual([e.condition, e.app?.attrs.scope], ["resource-constraint", "verification"]);
  });
});
