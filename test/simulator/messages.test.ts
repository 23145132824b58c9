import assert from "node:assert/strict";
import { classifyMessage, decodeAccepted } from "../../src/interop/codec/index.js";
import type { BareJid } from "../../src/util/ids.js";
import { child, childNamed, errorOf } from "./harness.js";
import { text } from "./provider-user.js";
import { ack, delivery, eventually, GK, makeWorld, PHONE, type World } from "./world.js";

describe("simulator: the message path (§12, §15, Appendix C)", function () {
  this.timeout(30000);
  let w: World;

  beforeEach(async function () {
    w = await makeWorld();
  });
  afterEach(async function () {
    await w.close();
  });

  it("accepts a first message, the user decrypts it and the first device sends <received>", async function () {
    const { stanza, originId } = await w.alice.message(GK, text("Hi!"));
    const answer = await w.provider.outcome(stanza);
    const accepted = decodeAccepted(child(answer));
    assert.equal(answer.attrs.from, "wa.example");
    assert.equal(answer.attrs.to, w.alice.full);
    assert.equal(accepted.originId, originId);
    assert.equal(accepted.seq, 1);
    assert.equal(accepted.conversation, GK);
    assert.match(accepted.stanzaId, /^[0-9A-Z]{26}$/);
    const log = await eventually(async () => {
      const entries = await w.sim.users.received(PHONE, "message");
      return entries.length > 0 ? entries : undefined;
    });
    assert.equal(log.length, 1);
    assert.equal(log[0]?.data.originId, originId);
    assert.match(String(log[0]?.data.envelope), /Hi!/);
    const receipt = await delivery(w.provider, "received");
    const m = classifyMessage(receipt);
    assert.equal(m.payload.kind, "receipt");
    assert.equal(receipt.attrs.from, `${GK}/${String(log[0]?.data.device)}`);
    assert.equal(receipt.attrs.to, w.alice.jid);
    assert.equal(m.stanzaId?.by, "wa.example");
    assert.equal(m.meta?.seq, undefined);
    assert.ok(m.meta?.stamp instanceof Date);
    await ack(w.provider, [receipt]);
    await eventually(async () =>
      (await w.sim.gatekeeper.services.queue.depth()) === 0 ? true : undefined,
    );
  });

  it("answers a repeated transmission with the original <accepted> and delivers once", async function () {
    const { stanza } = await w.alice.message(GK, text("once"));
    const first = decodeAccepted(child(await w.provider.outcome(stanza)));
    const second = decodeAccepted(child(await w.provider.outcome(stanza)));
    assert.deepEqual(second, first);
    await eventually(async () =>
      (await w.sim.users.received(PHONE, "message")).length === 1 ? true : undefined,
    );
  });

  it("assigns strictly increasing seq across both directions", async function () {
    const a = await w.alice.message(GK, text("1"));
    const s1 = decodeAccepted(child(await w.provider.outcome(a.stanza))).seq;
    const reply = await w.sim.users.send(PHONE, w.alice.jid as BareJid, text("2"));
    const b = await w.alice.message(GK, text("3"));
    const s3 = decodeAccepted(child(await w.provider.outcome(b.stanza))).seq;
    assert.deepEqual([s1, reply.seq, s3], [1, 2, 3]);
    const delivered = await delivery(w.provider, "encrypted");
    const m = classifyMessage(delivered);
    assert.equal(m.meta?.seq, 2);
    assert.equal(m.payload.kind, "encrypted");
    if (m.payload.kind !== "encrypted") return;
    assert.deepEqual(
      m.payload.encrypted.keyGroups.map((g) => g.jid),
      [w.alice.jid],
    );
    const content = await w.alice.decrypt(GK, m.payload.encrypted);
    assert.deepEqual(content, text("2"));
  });

  it("refuses a stale device list with the current devices, only after reachability", async function () {
    const devices = await w.alice.fetchDevices(GK);
    assert.equal(devices.length, 2);
    const { stanza } = await w.alice.message(GK, text("x"), { devices: [devices[0] as never] });
    const e = errorOf(await w.provider.outcome(stanza));
    assert.deepEqual(
      [e.condition, e.type, e.app?.name],
      ["conflict", "modify", "stale-device-list"],
    );
    assert.equal(e.app?.attrs.jid, GK);
    assert.equal(childNamed(e.app as never, "device") !== undefined, true);
  });
});
