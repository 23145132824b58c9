import assert from "node:assert/strict";
import { loginStateOf, mapProviderEvent } from "../../../src/interop/connector/events.js";
import type { BareJid, MessageId, PhoneNumber } from "../../../src/util/ids.js";

const local = "alice@matrix.bridge.example" as BareJid;
const bob = "491701234567@wa.example" as BareJid;
const id = "01HQ7Z3B5MC9D2K7F0R4WQ8XNT" as MessageId;
const ctx = {
  openMedia: () => async () => {
    throw new Error("no media in these tests");
  },
};

describe("mapping engine events to the core's events", function () {
  it("a displayed marker from the contact becomes a read receipt up to that message", function () {
    const mapped = mapProviderEvent(
      { kind: "displayed", local, from: bob, ref: { id, author: local } },
      ctx,
    );
    assert.deepEqual(mapped, {
      local,
      events: [{ kind: "read", from: bob, upTo: { author: local, id } }],
    });
  });

  it("a send failure names the user's own message and keeps the engine's reason", function () {
    const mapped = mapProviderEvent(
      {
        kind: "send-failed",
        local,
        to: bob,
        originId: id,
        reason: "rate-limited",
        message: "slow down",
        eventId: undefined,
      },
      ctx,
    );
    assert.deepEqual(mapped?.events, [
      {
        kind: "send-failed",
        target: { author: local, id },
        reason: { code: "rate-limited", message: "slow down" },
      },
    ]);
  });

  it("an identity change says that sending is held when interop.identity_change is hold", function () {
    const change = {
      kind: "identity-changed" as const,
      local,
      contact: bob,
      wasVerified: true,
      changeId: "c1",
    };
    assert.deepEqual(mapProviderEvent(change, { ...ctx, identityChangeHolds: true })?.events, [
      {
        kind: "identity-changed",
        contact: bob,
        verifiedMarkCleared: true,
        sendingHeld: true,
        changeId: "c1",
      },
    ]);
    assert.deepEqual(mapProviderEvent(change, ctx)?.events, [
      { kind: "identity-changed", contact: bob, verifiedMarkCleared: true, changeId: "c1" },
    ]);
  });

  it("an unbound notification logs the user out", function () {
    const mapped = mapProviderEvent(
      { kind: "unbound", local, phone: "+491709876543" as PhoneNumber, reason: "rebound" },
      ctx,
    );
    const [event] = mapped?.events ?? [];
    assert.equal(event?.kind === "state" && event.state.code, "logged-out");
  });

  it("a message's seq is its order and the gatekeeper's stamp its server time", function () {
    const stamp = new Date("2026-01-02T03:04:05Z");
    const mapped = mapProviderEvent(
      {
        kind: "message",
        local,
        from: bob,
        device: 1 as never,
        originId: id,
        stanzaId: "s1" as never,
        seq: 42,
        stamp,
        envelope: {
          id,
          from: bob,
          to: local,
          time: new Date("2026-01-02T03:04:00Z"),
          content: [{ kind: "body", text: "hi" }],
        },
        envelopeXml: "<envelope/>",
      },
      ctx,
    );
    const [event] = mapped?.events ?? [];
    assert.equal(event?.kind, "message");
    if (event?.kind !== "message") return;
    assert.equal(event.order, 42);
    assert.deepEqual(event.serverTime, stamp);
    assert.equal(event.isRequest, true);
  });

  it("accepted outcomes and gatekeeper-wide state give no per-user event", function () {
    assert.equal(
      mapProviderEvent(
        {
          kind: "accepted",
          local,
          to: bob,
          originId: id,
          stanzaId: "s" as never,
          seq: 1,
          stamp: new Date(),
          eventId: undefined,
        },
        ctx,
      ),
      undefined,
    );
  });

  it("an offline gatekeeper is reported as unreachable, an unenlisted bridge as an error", function () {
    const at = { message: "x", since: new Date(), retryAt: undefined };
    assert.equal(
      loginStateOf({ code: "gatekeeper-offline", ...at }).code,
      "gatekeeper-unreachable",
    );
    assert.equal(loginStateOf({ code: "not-enlisted", ...at }).code, "unknown-error");
    assert.equal(loginStateOf({ code: "ready", ...at }).code, "connected");
  });
});
