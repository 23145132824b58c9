import assert from "node:assert/strict";
import {
  buildChatState,
  buildDisplayed,
  classifyMessage,
  decodeAccepted,
} from "../../src/interop/codec/index.js";
import type { BareJid, MessageId } from "../../src/util/ids.js";
import { ALICE, child, childNamed } from "./harness.js";
import { text } from "./provider-user.js";
import { delivery, eventually, GK, makeWorld, PHONE, type World } from "./world.js";

describe("simulator: receipts, read markers and typing (§15.7, §15.8)", function () {
  this.timeout(30000);
  let w: World;

  beforeEach(async function () {
    w = await makeWorld();
  });
  afterEach(async function () {
    await w.close();
  });

  const marker = (id: string) =>
    buildDisplayed({
      type: "chat",
      originId: `dm-${id}` as MessageId,
      from: w.alice.full,
      to: GK,
      marker: { id: id as MessageId, author: GK },
    });

  it("drops markers and typing during a pending request, and routes them once accepted", async function () {
    const { stanza } = await w.alice.message(GK, text("hello?"));
    await w.provider.outcome(stanza);
    await w.provider.send(
      buildChatState({ type: "chat", from: w.alice.full, to: GK, state: "composing" }),
    );
    // The marker's answer also proves the typing notification (sent before it) was handled.
    const pending = decodeAccepted(child(await w.provider.outcome(marker("m1"))));
    assert.equal(pending.seq, undefined);
    await w.sim.users.acceptRequest(PHONE, w.alice.jid);
    await w.provider.outcome(marker("m2"));
    await w.provider.send(
      buildChatState({ type: "chat", from: w.alice.full, to: GK, state: "paused" }),
    );
    const logged = await eventually(async () => {
      const all = await w.sim.users.received(PHONE);
      const kinds = all.map((e) => e.kind).filter((k) => k === "displayed" || k === "chat-state");
      return kinds.length >= 2 ? all : undefined;
    });
    const displayed = logged.filter((e) => e.kind === "displayed");
    assert.deepEqual(
      displayed.map((e) => (e.data.ref as { id: string }).id),
      ["m2"],
    );
    assert.deepEqual(
      logged.filter((e) => e.kind === "chat-state").map((e) => e.data.state),
      ["paused"],
    );
  });

  it("delivers a gatekeeper user's markers and typing, and honours disabled read markers", async function () {
    const sent = await w.sim.users.send(PHONE, ALICE as BareJid, text("hi"));
    await delivery(w.provider, "encrypted");
    const mark = w.provider.received.length;
    assert.equal(await w.sim.users.sendTyping(PHONE, ALICE as BareJid, "composing"), true);
    const typing = await w.provider.waitFor(
      (s) => childNamed(s, "composing") !== undefined,
      5000,
      mark,
    );
    assert.equal(childNamed(typing, "stanza-id"), undefined);
    assert.equal(typing.attrs.type, "chat");
    const { stanza } = await w.alice.message(GK, text("reply"));
    const accepted = decodeAccepted(child(await w.provider.outcome(stanza)));
    assert.equal(
      await w.sim.users.sendDisplayed(PHONE, ALICE as BareJid, {
        id: accepted.originId,
        author: ALICE as BareJid,
      }),
      true,
    );
    const shown = classifyMessage(await delivery(w.provider, "displayed", mark));
    assert.equal(shown.payload.kind, "displayed");
    assert.equal(shown.meta?.seq, undefined);
    await w.sim.gatekeeper.run(() => w.sim.gatekeeper.accounts.update(GK, { readMarkers: false }));
    assert.equal(
      await w.sim.users.sendDisplayed(PHONE, ALICE as BareJid, {
        id: accepted.originId,
        author: ALICE as BareJid,
      }),
      false,
    );
    const before = (await w.sim.users.received(PHONE, "displayed")).length;
    await w.provider.outcome(marker(sent.originId));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal((await w.sim.users.received(PHONE, "displayed")).length, before);
  });

  it("keeps the gatekeeper's clients to the features the provider negotiated (§7.6)", async function () {
    await w.provider.hello(undefined, []);
    const target = { id: "x" as MessageId, author: ALICE as BareJid };
    await assert.rejects(
      w.sim.users.send(PHONE, ALICE as BareJid, [
        { kind: "reactions", ...target, reactions: ["👍"] },
      ]),
      /feature-not-negotiated|did not negotiate/,
    );
    await assert.rejects(w.sim.users.sendTyping(PHONE, ALICE as BareJid, "composing"), /negotiate/);
    await assert.rejects(w.sim.users.sendDisplayed(PHONE, ALICE as BareJid, target), /negotiate/);
    const plain = await w.sim.users.send(PHONE, ALICE as BareJid, text("plain text is phase 1"));
    assert.equal(typeof plain.seq, "number");
  });
});
