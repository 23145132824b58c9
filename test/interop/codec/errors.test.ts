import assert from "node:assert/strict";
import { CodecError } from "../../../src/interop/codec/codec-error.js";
import {
  APP_CONDITION_DEFAULTS,
  classifyBounce,
  decodeStanzaError,
  encodeStanzaError,
  errorForCodecError,
  interopError,
  type AppCondition,
  type StanzaError,
} from "../../../src/interop/codec/errors.js";
import { classifyMessage } from "../../../src/interop/codec/message.js";
import { parseXml } from "../../../src/interop/codec/xml.js";
import { SPEC } from "./fixtures.js";
import { assertCodecError, el } from "./helpers.js";

const roundTripError = (err: StanzaError): StanzaError =>
  decodeStanzaError(parseXml(encodeStanzaError(err).toString()));

describe("stanza errors (§18)", () => {
  it("decodes the spec's stale-device-list and rate-limited errors", () => {
    const stale = decodeStanzaError(el(SPEC.staleDeviceList));
    assert.equal(stale.type, "modify");
    assert.equal(stale.condition, "conflict");
    assert.deepEqual(stale.app, {
      name: "stale-device-list",
      jid: "491701234567@wa.example",
      devices: [1, 3],
    });
    const limited = decodeStanzaError(el(SPEC.rateLimited));
    assert.deepEqual(limited.app, { name: "rate-limited", scope: "messages", retryAfter: 23 });
    assert.equal(limited.type, "wait");
  });

  it("round-trips every application condition with its attributes and the §18 defaults", () => {
    const apps: Exclude<AppCondition, { name: "unknown" }>[] = [
      { name: "hello-required" },
      { name: "not-enlisted" },
      { name: "unsupported-version", supported: "0.2" },
      { name: "not-reachable" },
      { name: "refused" },
      { name: "request-pending" },
      { name: "rate-limited", scope: "lookup", retryAfter: 3600 },
      { name: "stale-device-list", jid: "491701234567@wa.example" as never, devices: [1 as never] },
      { name: "unknown-device" },
      { name: "unencrypted" },
      { name: "too-large", max: 262144 },
      { name: "bad-signature" },
      { name: "bad-key" },
      { name: "identity-mismatch" },
      { name: "no-bundle", device: 2 as never },
      { name: "too-many-devices" },
      { name: "prekey-limit" },
      { name: "phone-invalid" },
      { name: "code-invalid", attemptsLeft: 0 },
      { name: "code-expired" },
      { name: "locked", until: new Date("2025-03-02T12:00:00.000Z") },
      { name: "handle-invalid" },
      { name: "not-member" },
      { name: "not-admin" },
      { name: "group-full" },
    ];
    assert.equal(apps.length, Object.keys(APP_CONDITION_DEFAULTS).length);
    for (const app of apps) {
      const err = interopError(app, { text: "why" });
      assert.deepEqual(roundTripError(err), { ...err, by: undefined }, app.name);
    }
    assert.equal(interopError({ name: "locked", until: new Date(0) }).type, "wait");
    assert.equal(
      interopError({ name: "too-large", max: 1 }, { condition: "not-acceptable" }).condition,
      "not-acceptable",
    );
  });

  it("keeps an unknown application condition by name", () => {
    const err = decodeStanzaError(
      el(
        "<error type='cancel'><not-allowed xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><future-thing xmlns='urn:interop:errors:0' x='1'/></error>",
      ),
    );
    assert.deepEqual(err.app, { name: "unknown", element: "future-thing" });
  });

  it("rejects errors without a type, without a known condition, or with malformed attributes", () => {
    assertCodecError(() =>
      decodeStanzaError(
        el("<error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>"),
      ),
    );
    assertCodecError(() =>
      decodeStanzaError(
        el("<error type='cancel'><oops xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>"),
      ),
    );
    assertCodecError(() => decodeStanzaError(el("<error type='cancel'/>")));
    assertCodecError(
      () =>
        decodeStanzaError(
          el(
            "<error type='wait'><resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><rate-limited xmlns='urn:interop:errors:0' scope='x'/></error>",
          ),
        ),
      { path: /rate-limited\/@retry-after$/ },
    );
    assertCodecError(() =>
      decodeStanzaError(
        el(
          "<error type='modify'><not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><code-invalid xmlns='urn:interop:errors:0' attempts-left='-1'/></error>",
        ),
      ),
    );
  });

  it("maps a CodecError to the error the spec requires in answer", () => {
    const phone = errorForCodecError(
      new CodecError("bad", { path: "/x", appCondition: "phone-invalid" }),
    );
    assert.deepEqual(phone, {
      type: "modify",
      condition: "bad-request",
      app: { name: "phone-invalid" },
    });
    const plain = errorForCodecError(new CodecError("bad", { path: "/x" }));
    assert.deepEqual(plain, { type: "modify", condition: "bad-request" });
  });

  describe("bounce classification (§8.2, §15.3)", () => {
    const to = "491701234567@wa.example";
    it("a server error for an unconnected gatekeeper is peer offline, not an outcome", () => {
      const offline: StanzaError = { type: "cancel", condition: "service-unavailable" };
      assert.deepEqual(classifyBounce(offline, to, to), { kind: "peer-offline" });
      assert.deepEqual(classifyBounce(offline, "wa.example", to), { kind: "peer-offline" });
      const timeout: StanzaError = { type: "wait", condition: "remote-server-timeout" };
      assert.deepEqual(classifyBounce(timeout, "wa.example", to), { kind: "peer-offline" });
    });

    it("not-reachable from the gatekeeper is final", () => {
      const message = classifyMessage(el(SPEC.bounce));
      assert.ok(message.payload.kind === "bounce");
      assert.deepEqual(classifyBounce(message.payload.error, to, to), { kind: "final" });
    });

    it("wait bounces carry their retry time or wait for request-accepted", () => {
      const limited = decodeStanzaError(el(SPEC.rateLimited));
      assert.deepEqual(classifyBounce(limited, to, to), {
        kind: "wait",
        retryAfterSeconds: 23,
        onRequestAccepted: false,
      });
      const pending = interopError({ name: "request-pending" });
      assert.deepEqual(classifyBounce(pending, to, to), {
        kind: "wait",
        retryAfterSeconds: undefined,
        onRequestAccepted: true,
      });
    });

    it("hello-required asks for hello; other errors are final", () => {
      assert.deepEqual(classifyBounce(interopError({ name: "hello-required" }), "wa.example", to), {
        kind: "hello-required",
      });
      assert.deepEqual(classifyBounce(interopError({ name: "refused" }), to, to), {
        kind: "final",
      });
      const elsewhere: StanzaError = { type: "cancel", condition: "service-unavailable" };
      assert.deepEqual(classifyBounce(elsewhere, "other.example", to), { kind: "final" });
    });
  });
});
