import assert from "node:assert/strict";
import * as delivery from "../../../src/interop/codec/delivery.js";
import * as e2ee from "../../../src/interop/codec/e2ee.js";
import { classifyMessage, type InboundMessage } from "../../../src/interop/codec/message.js";
import {
  checkProviderMessage,
  findUnencryptedContent,
  unencryptedContentError,
} from "../../../src/interop/codec/message-checks.js";
import * as notifications from "../../../src/interop/codec/key-notifications.js";
import { encodeUnbound, decodeUnbound } from "../../../src/interop/codec/identity.js";
import { decodeReportReceived, encodeReportReceived } from "../../../src/interop/codec/abuse.js";
import { encodeGroupSender, decodeGroupSender } from "../../../src/interop/codec/group-sender.js";
import { parseXml, type XmlElement } from "../../../src/interop/codec/xml.js";
import { elementChildren } from "../../../src/interop/codec/read.js";
import { CT, SPEC, type SpecExample } from "./fixtures.js";
import { assertCodecError, el, roundTrip } from "./helpers.js";

const classify = (example: SpecExample): InboundMessage => classifyMessage(el(SPEC[example]));

function child(message: string, name: string): XmlElement {
  const found = elementChildren(el(message)).find((c) => c.getName() === name);
  assert.ok(found, `<${name}> in fixture`);
  return found;
}

describe("message codecs and classification (§12, §15)", () => {
  describe("encrypted (§12.1)", () => {
    it("classifies the spec's 1:1 message and round-trips <encrypted>", () => {
      const m = classify("encrypted");
      assert.equal(m.originId, "c8f1a0e2-8d6b-4a57-9b1e-0f3d2c7a9e11");
      assert.equal(m.from?.resource, "1");
      assert.ok(m.payload.kind === "encrypted");
      const enc = roundTrip(
        child(SPEC.encrypted, "encrypted"),
        e2ee.decodeEncrypted,
        e2ee.encodeEncrypted,
      );
      assert.equal(enc.sid, 1);
      assert.deepEqual(
        enc.keyGroups[0]?.keys.map((k) => [k.rid, k.kex]),
        [
          [1, true],
          [2, false],
        ],
      );
      assert.equal(enc.retry, undefined);
      assert.equal(e2ee.keyFor(enc, "491701234567@wa.example" as never, 2 as never)?.rid, 2);
      assert.equal(e2ee.keyFor(enc, "491701234567@wa.example" as never, 3 as never), undefined);
    });

    it("reads a delivery with stanza-id and meta, and a group delivery with <sender>", () => {
      const m = classify("delivery");
      assert.deepEqual(m.stanzaId, { id: "01HQ7Y4C2PA8R5E3J0N9WX6KBT", by: "wa.example" });
      assert.equal(m.meta?.seq, 19);
      assert.equal(m.meta?.stamp.toISOString(), "2025-03-01T12:01:10.007Z");
      const g = classify("groupDelivery");
      assert.deepEqual(g.sender, {
        jid: "alice=3amatrix.bridge.example@matrix.bridge.example",
        device: 1,
      });
      assert.ok(g.payload.kind === "encrypted" && g.payload.encrypted.group?.length === 48);
      assert.deepEqual(g.payload.encrypted.keyGroups, []);
      const sender = roundTrip(
        child(SPEC.groupDelivery, "sender"),
        decodeGroupSender,
        encodeGroupSender,
      );
      assert.equal(sender.device, 1);
    });

    it("a header is required even without keys, and the retry counter is 1 or 2", () => {
      assertCodecError(() => e2ee.decodeEncrypted(el("<encrypted xmlns='urn:interop:e2ee:0'/>")), {
        path: /encrypted$/,
      });
      const retry = e2ee.decodeEncrypted(
        el("<encrypted xmlns='urn:interop:e2ee:0' retry='2'><header sid='4'/></encrypted>"),
      );
      assert.equal(retry.retry, 2);
      assertCodecError(() =>
        e2ee.decodeEncrypted(
          el("<encrypted xmlns='urn:interop:e2ee:0' retry='3'><header sid='4'/></encrypted>"),
        ),
      );
    });

    it("a sid that differs from the sending resource, or a non-numeric resource, is bad-request", () => {
      assertCodecError(() => classifyMessage(el(SPEC.encrypted.replace("sid='1'", "sid='2'"))), {
        condition: "bad-request",
        path: /header\/@sid$/,
      });
      assertCodecError(
        () => classifyMessage(el(SPEC.encrypted.replace("example/1'", "example/phone'"))),
        {
          path: /message\/@from$/,
        },
      );
    });

    it("rejects invalid base64 in a key, duplicate rids and keys without rid", () => {
      assertCodecError(() => classifyMessage(el(SPEC.encrypted.replace(CT(31), "RAiH0…"))), {
        condition: "bad-request",
      });
      assertCodecError(() => classifyMessage(el(SPEC.encrypted.replace("rid='2'", "rid='1'"))));
      assertCodecError(() => classifyMessage(el(SPEC.encrypted.replace(" rid='2'", ""))), {
        path: /key\/@rid$/,
      });
    });
  });

  describe("retry requests (§12.5, §17.6)", () => {
    it("round-trips the 1:1 and group retry requests", () => {
      const m = classify("retry");
      assert.ok(m.payload.kind === "retry");
      assert.deepEqual(m.payload.retry, {
        id: "3EB0A91C52",
        count: 1,
        registration: 4711,
        reason: "decrypt-failed",
        author: undefined,
      });
      const g = roundTrip(
        child(SPEC.groupRetry, "retry"),
        e2ee.decodeRetryRequest,
        e2ee.encodeRetryRequest,
      );
      assert.deepEqual(g.author, { jid: "491701234567@wa.example", device: 1 });
      assert.equal(g.reason, "no-sender-key");
    });

    it("rejects a third retry and unknown reasons", () => {
      assertCodecError(() => classifyMessage(el(SPEC.retry.replace("count='1'", "count='3'"))));
      assertCodecError(() => classifyMessage(el(SPEC.retry.replace("decrypt-failed", "bored"))));
    });
  });

  describe("delivery elements (§15)", () => {
    it("round-trips <accepted> and classifies it", () => {
      const m = classify("accepted");
      assert.ok(m.payload.kind === "accepted");
      assert.equal(m.payload.accepted.seq, 18);
      const a = roundTrip(
        child(SPEC.accepted, "accepted"),
        delivery.decodeAccepted,
        delivery.encodeAccepted,
      );
      assert.equal(a.stanzaId, "01HQ7X0B6DZ7P2H9K4T1VC8MGF");
      assert.equal(a.stamp.toISOString(), "2025-03-01T12:00:00.412Z");
      assert.equal(a.conversation, "491701234567@wa.example");
      const noSeq = delivery.decodeAccepted(delivery.encodeAccepted({ ...a, seq: undefined }));
      assert.equal(noSeq.seq, undefined);
    });

    it("classifies a bounce with its echoed origin-id", () => {
      const m = classify("bounce");
      assert.equal(m.id, "c8f1a0e2-8d6b-4a57-9b1e-0f3d2c7a9e11");
      assert.equal(m.originId, m.id);
      assert.ok(m.payload.kind === "bounce");
      assert.equal(m.payload.error.app?.name, "not-reachable");
      assertCodecError(() => classifyMessage(el("<message type='error' id='x'/>")));
    });

    it("round-trips an ack and enforces 1 to max-ack-items items", () => {
      const m = classifyMessage(el(SPEC.ack), { maxAckItems: 100 });
      assert.ok(m.payload.kind === "ack");
      assert.deepEqual(m.payload.items, [
        "01HQ7Y4C2PA8R5E3J0N9WX6KBT",
        "01HQ7W9TZ1B3N6M0QR8K5WD2XE",
      ]);
      assert.deepEqual(delivery.decodeAck(delivery.encodeAck(m.payload.items)), m.payload.items);
      assertCodecError(() => classifyMessage(el(SPEC.ack), { maxAckItems: 1 }));
      assertCodecError(() => delivery.decodeAck(el("<ack xmlns='urn:interop:delivery:0'/>")));
    });

    it("reads receipts up to max-receipt-items, all for one author", () => {
      const m = classify("received");
      assert.ok(m.payload.kind === "receipt");
      assert.deepEqual(m.payload.receipts, [
        { id: "3EB0A91C52", author: "491701234567@wa.example" },
      ]);
      const refs = ["a1", "a2", "a3"].map((id) =>
        delivery.encodeReceived({ id: id as never, author: "491701234567@wa.example" as never }),
      );
      const three = parseXml(
        `<message type='chat' id='rc-2'>${refs.join("")}<origin-id xmlns='urn:xmpp:sid:0' id='rc-2'/></message>`,
      );
      const decoded = classifyMessage(three, { maxReceiptItems: 50 });
      assert.ok(decoded.payload.kind === "receipt" && decoded.payload.receipts.length === 3);
      assertCodecError(() => classifyMessage(three, { maxReceiptItems: 2 }));
      const mixed = SPEC.received.replace(
        "<origin-id",
        "<received xmlns='urn:interop:delivery:0' id='X1' author='491705550000@wa.example'/><origin-id",
      );
      assertCodecError(() => classifyMessage(el(mixed)), { path: /received\/@author$/ });
    });

    it("classifies displayed markers and chat states", () => {
      const d = classify("displayed");
      assert.ok(d.payload.kind === "displayed");
      assert.equal(d.payload.marker.id, "3EB0A91C52");
      const c = classify("composing");
      assert.deepEqual(c.payload, { kind: "chat-state", state: "composing" });
      const gone = classifyMessage(
        el("<message type='chat'><gone xmlns='http://jabber.org/protocol/chatstates'/></message>"),
      );
      assert.deepEqual(gone.payload, {
        kind: "unknown",
        elements: ["{http://jabber.org/protocol/chatstates}gone"],
      });
    });
  });

  describe("notifications", () => {
    it("classifies every notification kind and round-trips them", () => {
      const unbound = classify("unbound");
      assert.ok(
        unbound.payload.kind === "notification" && unbound.payload.notification.type === "unbound",
      );
      assert.deepEqual(unbound.payload.notification.unbound, {
        phone: "+491709876543",
        reason: "rebound",
      });
      roundTrip(child(SPEC.unbound, "unbound"), decodeUnbound, encodeUnbound);

      const low = classify("prekeysLow");
      assert.ok(
        low.payload.kind === "notification" && low.payload.notification.type === "prekeys-low",
      );
      assert.deepEqual(low.payload.notification.prekeysLow, { device: 1, ec: 9, kyber: 3 });
      roundTrip(
        child(SPEC.prekeysLow, "prekeys-low"),
        notifications.decodePreKeysLow,
        notifications.encodePreKeysLow,
      );

      const changed = roundTrip(
        child(SPEC.devicesChanged, "devices-changed"),
        notifications.decodeDevicesChanged,
        notifications.encodeDevicesChanged,
      );
      assert.deepEqual(changed.devices, [
        { id: 1, change: undefined },
        { id: 2, change: "replaced" },
        { id: 3, change: "added" },
      ]);
      assert.deepEqual(changed.removed, [4]);
      assert.equal(changed.version, 8);

      const accepted = classify("requestAccepted");
      assert.deepEqual(accepted.payload, {
        kind: "notification",
        notification: { type: "request-accepted", jid: "491701234567@wa.example" },
      });
      const report = classify("reportReceived");
      assert.ok(
        report.payload.kind === "notification" &&
          report.payload.notification.type === "report-received",
      );
      roundTrip(
        child(SPEC.reportReceived, "report-received"),
        decodeReportReceived,
        encodeReportReceived,
      );
      assert.deepEqual(classify("helloRequestNotice").payload, { kind: "hello-request" });
    });

    it("rejects a device listed twice in devices-changed", () => {
      const twice = SPEC.devicesChanged.replace("<removed id='4'/>", "<removed id='3'/>");
      assertCodecError(() => classifyMessage(el(twice)));
    });
  });

  describe("payload rules", () => {
    it("a stanza with only unknown payload is classified as unknown, keeping its stanza-id for the ack", () => {
      const m = classifyMessage(
        el(
          "<message from='wa.example'><future xmlns='urn:interop:future:0'/><stanza-id xmlns='urn:xmpp:sid:0' id='S1' by='wa.example'/></message>",
        ),
      );
      assert.deepEqual(m.payload, { kind: "unknown", elements: ["{urn:interop:future:0}future"] });
      assert.equal(m.stanzaId?.id, "S1");
    });

    it("two different payloads in one stanza are bad-request", () => {
      const both = SPEC.encrypted.replace(
        "<origin-id",
        "<composing xmlns='http://jabber.org/protocol/chatstates'/><origin-id",
      );
      assertCodecError(() => classifyMessage(el(both)), { condition: "bad-request" });
    });

    it("non-canonical addresses are bad-request", () => {
      assertCodecError(
        () =>
          classifyMessage(
            el(
              SPEC.received.replace("to='491701234567@wa.example'", "to='491701234567@WA.EXAMPLE'"),
            ),
          ),
        {
          path: /message\/@to$/,
        },
      );
    });
  });

  describe("gatekeeper-side checks (§12.1, §15.1)", () => {
    it("accepts the spec's provider stanzas", () => {
      for (const example of [
        "encrypted",
        "received",
        "displayed",
        "composing",
        "retry",
        "ack",
        "groupRetry",
      ] as const) {
        assert.doesNotThrow(() => checkProviderMessage(classify(example), "g.wa.example"), example);
      }
    });

    it("rejects a wrong type, a missing or different origin-id, and a foreign receipt author", () => {
      const m = classify("encrypted");
      assertCodecError(() => checkProviderMessage({ ...m, type: "normal" }, "g.wa.example"), {
        path: /@type$/,
      });
      assertCodecError(() => checkProviderMessage({ ...m, type: "groupchat" }, "g.wa.example"));
      assertCodecError(() => checkProviderMessage({ ...m, originId: undefined }, "g.wa.example"));
      assertCodecError(() => checkProviderMessage({ ...m, id: "other" }, "g.wa.example"));
      const r = classify("received");
      assertCodecError(() =>
        checkProviderMessage(
          { ...r, to: { ...r.to!, bare: "491705550000@wa.example" as never } },
          "g.wa.example",
        ),
      );
      const ack = classify("ack");
      assertCodecError(() => checkProviderMessage({ ...ack, type: "chat" }, "g.wa.example"));
    });

    it("finds content outside <encrypted> and answers it with policy-violation + unencrypted", () => {
      assert.equal(findUnencryptedContent(el(SPEC.encrypted)), undefined);
      for (const extra of [
        "<body>hi</body>",
        "<body xmlns='jabber:client'>hi</body>",
        "<nick xmlns='urn:interop:content:0'>A</nick>",
        "<envelope xmlns='urn:interop:envelope:0'/>",
      ]) {
        const leaked = findUnencryptedContent(
          el(SPEC.encrypted.replace("<origin-id", `${extra}<origin-id`)),
        );
        assert.ok(leaked, extra);
        const err = unencryptedContentError(leaked);
        assert.equal(err.condition, "policy-violation");
        assert.equal(err.appCondition, "unencrypted");
      }
    });
  });
});
