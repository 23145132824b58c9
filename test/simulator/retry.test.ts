import assert from "node:assert/strict";
import {
  buildRetryRequest,
  classifyMessage,
  decodeAccepted,
  decodeSlot,
  encodeSlotRequest,
} from "../../src/interop/codec/index.js";
import type { BareJid, DeviceId, MessageId } from "../../src/util/ids.js";
import { ALICE, child, errorOf } from "./harness.js";
import { text } from "./provider-user.js";
import { delivery, GK, makeWorld, PHONE, type World } from "./world.js";

describe("simulator: retry routing (§12.5, E20) and upload slots (§14.1)", function () {
  this.timeout(30000);
  let w: World;

  beforeEach(async function () {
    w = await makeWorld({ limits: { "uploads-per-hour": 1 } });
  });
  afterEach(async function () {
    await w.close();
  });

  const retry = (id: string, toDevice: number, origin = `r-${id}-${toDevice}`) =>
    buildRetryRequest({
      type: "chat",
      originId: origin as MessageId,
      from: w.alice.full,
      to: `${GK}/${toDevice}`,
      retry: {
        id: id as MessageId,
        count: 1,
        registration: w.alice.device.registrationId,
        reason: "decrypt-failed",
        author: undefined,
      },
    });

  it("forwards a retry request for a message the addressed device sent, and the user re-sends", async function () {
    const sent = await w.sim.users.send(PHONE, ALICE as BareJid, text("please retry"));
    const original = await delivery(w.provider, "encrypted");
    const from = String(original.attrs.from);
    const device = Number(from.slice(from.indexOf("/") + 1));
    const mark = w.provider.received.length;
    const answer = await w.provider.outcome(retry(sent.originId, device));
    assert.equal(child(answer).name, "accepted");
    const resend = await delivery(w.provider, "encrypted", mark);
    const m = classifyMessage(resend);
    assert.equal(m.originId, sent.originId);
    assert.equal(resend.attrs.to, w.alice.full);
    assert.equal(m.meta?.seq, sent.seq);
    assert.notEqual(m.stanzaId?.id, sent.stanzaId);
    assert.equal(m.payload.kind, "encrypted");
    if (m.payload.kind !== "encrypted") return;
    assert.equal(m.payload.encrypted.retry, 1);
    assert.deepEqual(await w.alice.decrypt(GK, m.payload.encrypted), text("please retry"));
  });

  it("bounces a retry request for a message the device never sent with forbidden", async function () {
    const sent = await w.sim.users.send(PHONE, ALICE as BareJid, text("x"));
    const other = (await w.sim.users.activeDevices(PHONE)).find((d) => d !== 0) as DeviceId;
    const devices = await w.sim.users.activeDevices(PHONE);
    const original = await delivery(w.provider, "encrypted");
    const sender = Number(String(original.attrs.from).split("/")[1]);
    const notSender = devices.find((d) => d !== sender) ?? other;
    for (const stanza of [retry("never-sent", sender), retry(sent.originId, notSender)]) {
      const e = errorOf(await w.provider.outcome(stanza));
      assert.deepEqual([e.condition, e.type], ["forbidden", "cancel"]);
    }
  });

  it("refuses a re-send of a message never accepted from that sender with bad-request", async function () {
    const { stanza, encrypted } = await w.alice.message(GK, text("m"));
    const accepted = decodeAccepted(child(await w.provider.outcome(stanza)));
    const device = encrypted.keyGroups[0]?.keys[0]?.rid ?? 1;
    const resend = (originId: string) => {
      const e = {
        ...encrypted,
        retry: 1,
        keyGroups: [{ jid: GK, keys: encrypted.keyGroups[0]?.keys.slice(0, 1) ?? [] }],
      };
      return { e, originId };
    };
    const { buildEncryptedMessage } = await import("../../src/interop/codec/index.js");
    const good = resend(accepted.originId);
    const ok = await w.provider.outcome(
      buildEncryptedMessage({
        type: "chat",
        originId: accepted.originId,
        from: w.alice.full,
        to: `${GK}/${device}`,
        encrypted: good.e,
      }),
    );
    const again = decodeAccepted(child(ok));
    assert.equal(again.seq, accepted.seq);
    assert.notEqual(again.stanzaId, accepted.stanzaId);
    const bad = await w.provider.outcome(
      buildEncryptedMessage({
        type: "chat",
        originId: "unknown-origin" as MessageId,
        from: w.alice.full,
        to: `${GK}/${device}`,
        encrypted: good.e,
      }),
    );
    assert.equal(errorOf(bad).condition, "bad-request");
  });

  it("issues upload slots within the media origin, refusing oversize and over-quota requests", async function () {
    const slot = decodeSlot(
      child(await w.provider.iq("get", encodeSlotRequest({ kind: "document", size: 1018 }))),
    );
    assert.ok(slot.put.url.startsWith(String(w.sim.media?.origin)));
    assert.ok(slot.get.url.startsWith(String(w.sim.media?.origin)));
    assert.ok(slot.expires.getTime() >= w.clock.now() + 300_000);
    const big = errorOf(
      await w.provider.iq("get", encodeSlotRequest({ kind: "image", size: 16777217 })),
    );
    assert.deepEqual(
      [big.condition, big.app?.name, big.app?.attrs.max],
      ["not-acceptable", "too-large", "16777216"],
    );
    const quota = errorOf(
      await w.provider.iq("get", encodeSlotRequest({ kind: "image", size: 100 })),
    );
    assert.deepEqual([quota.condition, quota.app?.attrs.scope], ["resource-constraint", "upload"]);
  });
});
