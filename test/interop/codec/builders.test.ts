import assert from "node:assert/strict";
import { interopError } from "../../../src/interop/codec/errors.js";
import { decodeIq, encodeIq } from "../../../src/interop/codec/iq.js";
import { decodeIqRequest } from "../../../src/interop/codec/iq-requests.js";
import * as b from "../../../src/interop/codec/message-builders.js";
import { classifyMessage } from "../../../src/interop/codec/message.js";
import { checkProviderMessage } from "../../../src/interop/codec/message-checks.js";
import { parseXml, type XmlElement } from "../../../src/interop/codec/xml.js";
import type { BareJid, DeviceId, MessageId, StanzaId } from "../../../src/util/ids.js";
import { SPEC, type SpecExample } from "./fixtures.js";
import { assertCodecError, el } from "./helpers.js";

const ALICE = "alice=3amatrix.bridge.example@matrix.bridge.example" as BareJid;
const GK_USER = "491701234567@wa.example" as BareJid;
const reparse = (x: XmlElement): XmlElement => parseXml(x.toString());

describe("stanza builders and IQ request dispatch", () => {
  it("builds provider stanzas that classify back and pass the gatekeeper's checks", () => {
    const common = { from: `${ALICE}/1`, to: GK_USER, type: "chat" as const };
    const stanzas = [
      b.buildEncryptedMessage({
        ...common,
        originId: "m-1" as MessageId,
        encrypted: {
          sid: 1 as DeviceId,
          keyGroups: [
            {
              jid: GK_USER,
              keys: [{ rid: 1 as DeviceId, kex: true, ciphertext: Uint8Array.of(1, 2, 3) }],
            },
          ],
          group: undefined,
          retry: undefined,
        },
      }),
      b.buildReceipt({
        ...common,
        originId: "rc-1" as MessageId,
        receipts: [{ id: "m-0" as MessageId, author: GK_USER }],
      }),
      b.buildDisplayed({
        ...common,
        originId: "dm-1" as MessageId,
        marker: { id: "m-0" as MessageId, author: GK_USER },
      }),
      b.buildRetryRequest({
        ...common,
        to: `${GK_USER}/2`,
        originId: "r-1" as MessageId,
        retry: {
          id: "m-0" as MessageId,
          count: 2,
          registration: 4711,
          reason: "no-session",
          author: undefined,
        },
      }),
      b.buildChatState({ ...common, state: "paused" }),
      b.buildAck({
        from: "matrix.bridge.example",
        to: "wa.example",
        id: "ack-1",
        items: ["S1" as StanzaId],
      }),
    ];
    const kinds = stanzas.map((s) => {
      const m = classifyMessage(reparse(s));
      checkProviderMessage(m, "g.wa.example");
      return m.payload.kind;
    });
    assert.deepEqual(kinds, ["encrypted", "receipt", "displayed", "retry", "chat-state", "ack"]);
  });

  it("builds gatekeeper stanzas: accepted, bounce, delivery and hello-request", () => {
    const accepted = classifyMessage(
      reparse(
        b.buildAccepted({
          from: "wa.example",
          to: `${ALICE}/1`,
          id: "a-1",
          accepted: {
            originId: "m-1" as MessageId,
            stanzaId: "S1" as StanzaId,
            stamp: new Date(0),
            seq: 1,
            conversation: GK_USER,
          },
        }),
      ),
    );
    assert.equal(accepted.payload.kind, "accepted");

    const original = classifyMessage(el(SPEC.encrypted));
    const bounce = classifyMessage(
      reparse(
        b.buildBounce(
          {
            id: original.id,
            from: original.from?.jid,
            to: original.to?.jid,
            originId: original.originId,
          },
          interopError({ name: "refused" }),
        ),
      ),
    );
    assert.equal(bounce.from?.jid, GK_USER);
    assert.equal(bounce.to?.jid, `${ALICE}/1`);
    assert.equal(bounce.originId, original.originId);
    assert.ok(bounce.payload.kind === "bounce" && bounce.payload.error.app?.name === "refused");

    const delivery = classifyMessage(
      reparse(
        b.buildDelivery({
          from: "k3x9q2@g.wa.example",
          to: ALICE,
          id: "d-1",
          type: "groupchat",
          payload: parseXml(
            `<encrypted xmlns='urn:interop:e2ee:0'><header sid='3'/><group>AQID</group></encrypted>`,
          ),
          originId: "m-9" as MessageId,
          stanzaId: { id: "S9" as StanzaId, by: "g.wa.example" as BareJid },
          meta: { stamp: new Date(1000), seq: 43 },
          sender: { jid: GK_USER, device: 3 as DeviceId },
        }),
      ),
    );
    assert.equal(delivery.payload.kind, "encrypted");
    assert.deepEqual(
      [delivery.stanzaId?.id, delivery.meta?.seq, delivery.sender?.device],
      ["S9", 43, 3],
    );
    const raw = el(SPEC.encrypted.replace("sid='1'", "sid='x'"));
    const rawBounce = classifyMessage(
      reparse(b.buildBounceFor(raw, { type: "modify", condition: "bad-request" })),
    );
    assert.equal(rawBounce.originId, "c8f1a0e2-8d6b-4a57-9b1e-0f3d2c7a9e11");
    assert.equal(rawBounce.to?.jid, `${ALICE}/1`);
    const noOrigin = b.buildBounceFor(
      el(
        "<message id='q' from='a@b.example/1'><origin-id xmlns='urn:xmpp:sid:0' id='bad id'/></message>",
      ),
      { type: "modify", condition: "bad-request" },
    );
    assert.equal(classifyMessage(reparse(noOrigin)).originId, undefined);
    assert.equal(
      classifyMessage(
        reparse(b.buildHelloRequest({ from: "wa.example", to: "matrix.bridge.example", id: "h" })),
      ).payload.kind,
      "hello-request",
    );
  });

  it("dispatches every spec IQ request to its kind", () => {
    const expected: [SpecExample, string][] = [
      ["helloRequest", "hello"],
      ["ping", "ping"],
      ["requestCode", "request-code"],
      ["confirmCode", "confirm-code"],
      ["bindingQuery", "binding"],
      ["unbind", "unbind"],
      ["profile", "profile"],
      ["lookup", "lookup"],
      ["bundlePublish", "publish-bundle"],
      ["devicesPublish", "publish-devices"],
      ["devicesFetch", "fetch-devices"],
      ["bundlesFetch", "fetch-bundles"],
      ["prekeysUpload", "upload-prekeys"],
      ["prekeysQuery", "count-prekeys"],
      ["rotate", "rotate"],
      ["slotRequest", "media-slot"],
      ["blocklist", "blocklist"],
      ["block", "block"],
      ["unblock", "unblock"],
      ["report", "report"],
      ["groupCreate", "group-create"],
      ["groupInfo", "group"],
      ["groupAdd", "group"],
      ["groupSubject", "group"],
      ["groupLeave", "group"],
    ];
    for (const [example, kind] of expected) {
      assert.equal(decodeIqRequest(decodeIq(el(SPEC[example]))).kind, kind, example);
    }
  });

  it("an unknown payload is unknown (service-unavailable); a known one in the wrong IQ type is bad-request", () => {
    const unknown = decodeIqRequest(
      decodeIq(
        encodeIq({ type: "get", id: "x" }, parseXml("<version xmlns='jabber:iq:version'/>")),
      ),
    );
    assert.deepEqual(unknown, { kind: "unknown", payload: "{jabber:iq:version}version" });
    const wrongType = SPEC.helloRequest.replace("type='get'", "type='set'");
    assertCodecError(() => decodeIqRequest(decodeIq(el(wrongType))), { condition: "bad-request" });
    assertCodecError(() => decodeIqRequest(decodeIq(el(SPEC.lookup)), { maxLookupBatch: 1 }));
  });
});
