import assert from "node:assert/strict";
import { CodecError } from "../../../src/interop/codec/codec-error.js";
import { encodeEnvelope, type Envelope } from "../../../src/interop/codec/envelope.js";
import { eventOf, identityChangeEntry } from "../../../src/interop/provider/events.js";
import { restoreEvent, type PendingEntry } from "../../../src/interop/provider/inbox.js";
import type { DurableEvent, StoredEvent } from "../../../src/interop/provider/types.js";
import type { BareJid, DeviceId, MessageId, PhoneNumber, StanzaId } from "../../../src/util/ids.js";

const local = "alice@matrix.bridge.example" as BareJid;
const bob = "491701234567@wa.example" as BareJid;
const group = "g1@groups.wa.example" as BareJid;
const id = "01HQ7Z3B5MC9D2K7F0R4WQ8XNT" as MessageId;
const stamp = new Date("2026-01-02T03:04:05.678Z");

const envelope: Envelope = {
  id,
  from: bob,
  to: local,
  time: new Date("2026-01-02T03:04:00.000Z"),
  content: [{ kind: "body", text: "hello" }],
};

const message = (envelopeXml: string): Extract<StoredEvent, { kind: "message" }> => ({
  kind: "message",
  local,
  from: bob,
  device: 1 as DeviceId,
  originId: id,
  stanzaId: "s1" as StanzaId,
  seq: 7,
  stamp,
  envelopeXml,
});

const entryOf = (event: StoredEvent, decoded?: Envelope): PendingEntry => ({
  stanzaId: "s1" as StanzaId,
  by: "wa.example",
  event,
  receipt: undefined,
  ...(decoded === undefined ? {} : { envelope: decoded }),
});

/** One of each durable kind: a kind added to DurableEvent without a sample fails to compile. */
const SAMPLES: { [K in DurableEvent["kind"]]: Extract<StoredEvent, { kind: K }> } = {
  message: { ...message("<envelope/>"), group },
  delivered: { kind: "delivered", local, from: bob, refs: [{ id, author: local }], group },
  displayed: { kind: "displayed", local, from: bob, ref: { id, author: local } },
  undecryptable: { kind: "undecryptable", local, from: bob, originId: id, stamp, group },
  "group-info": {
    kind: "group-info",
    local,
    group,
    info: { jid: group, subject: "s", version: 3, participants: [{ jid: bob, role: "admin" }] },
    addedBy: bob,
  },
  "group-event": {
    kind: "group-event",
    local,
    group,
    type: "subject-changed",
    version: 4,
    by: bob,
    participants: [],
    subject: "new",
  },
  "request-accepted": { kind: "request-accepted", local, contact: bob },
  "identity-changed": {
    kind: "identity-changed",
    local,
    contact: bob,
    wasVerified: true,
    changeId: "c1",
  },
  unbound: { kind: "unbound", local, phone: "+491709876543" as PhoneNumber, reason: "rebound" },
  "report-received": { kind: "report-received", reported: local, reason: "spam", stamp },
};

describe("the engine's events as inbound_pending stores them (issue #16)", function () {
  it("every durable kind comes back from its stored JSON as the same event", function () {
    for (const event of Object.values(SAMPLES)) {
      assert.deepEqual(restoreEvent(JSON.parse(JSON.stringify(event))), event, event.kind);
    }
  });

  it("absent fields stay absent: a message without seq or stamp", function () {
    const { seq: _seq, stamp: _stamp, ...bare } = message("<envelope/>");
    const restored = restoreEvent(JSON.parse(JSON.stringify(bare)));
    assert.deepEqual(restored, bare);
    assert.equal("seq" in restored || "stamp" in restored, false);
  });

  it("a row of the previous version (nulls for absent values, ISO stamps) is read as the same event", function () {
    // The JSON the PendingRecord of the previous version stored for these events.
    const old = [
      {
        json: { ...message("<envelope/>"), seq: null, stamp: null },
        event: (({ seq: _s, stamp: _t, ...rest }) => rest)(message("<envelope/>")),
      },
      {
        json: { ...message("<envelope/>"), stamp: stamp.toISOString() },
        event: message("<envelope/>"),
      },
      {
        json: { ...SAMPLES["group-info"], addedBy: null },
        event: (({ addedBy: _a, ...rest }) => rest)(SAMPLES["group-info"]),
      },
      {
        json: { ...SAMPLES["group-event"], subject: null },
        event: (({ subject: _s, ...rest }) => rest)(SAMPLES["group-event"]),
      },
      { json: SAMPLES["report-received"], event: SAMPLES["report-received"] },
    ];
    for (const { json, event } of old) {
      assert.deepEqual(restoreEvent(JSON.parse(JSON.stringify(json))), event, event.kind);
    }
  });

  it("a message's hand-over takes the envelope decoded at decrypt time and does not decode its bytes again", function () {
    // Bytes that would not decode: only the in-memory envelope can make this event.
    const event = eventOf(entryOf(message("not an envelope"), envelope), 65_536);
    assert.equal(event.kind === "message" && event.envelope, envelope);
  });

  it("a replayed message (no decoded envelope) is decoded from its stored bytes, under the limit of its decrypt time", function () {
    const xml = encodeEnvelope(envelope, { rpad: "x".repeat(200) });
    // A later hello lowered max-envelope-bytes below this envelope's size: it is still shown.
    const event = eventOf(entryOf(message(xml)), 10);
    assert.equal(event.kind, "message");
    if (event.kind !== "message") return;
    assert.deepEqual(event.envelope, envelope);
    assert.equal(event.envelopeXml, xml);
    assert.throws(() => eventOf(entryOf(message("not an envelope")), 65_536), CodecError);
  });

  it("other events are handed over as they were stored", function () {
    const entry = identityChangeEntry({
      id: "c2",
      localJid: local,
      remoteJid: bob,
      previousKey: new Uint8Array(33),
      currentKey: new Uint8Array(33),
      wasVerified: false,
      sendingHeld: false,
      at: 0,
    });
    assert.equal(eventOf(entry, 65_536), entry.event);
    assert.equal(entry.stanzaId, "local:identity:c2");
  });
});
