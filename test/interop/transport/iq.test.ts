import assert from "node:assert/strict";
import { parseXml, xml, type XmlElement } from "../../../src/interop/codec/xml.js";
import { IqError, IqTimeoutError, TransportError } from "../../../src/interop/transport/errors.js";
import { IqCaller, IqReplyError, IqResponder, newIqId } from "../../../src/interop/transport/iq.js";
import { childElements } from "./helpers.js";

const NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas";

/** Records what is sent; `fail` makes the next sends reject like an offline connection. */
function fakeWire() {
  const sent: XmlElement[] = [];
  const wire = {
    sent,
    fail: false,
    send: async (stanza: XmlElement): Promise<void> => {
      if (wire.fail) throw new TransportError("transport-offline", "offline");
      sent.push(stanza);
    },
  };
  return wire;
}

const ping = (to = "wa.example"): XmlElement =>
  xml(
    "iq",
    { type: "get", to, from: "matrix.bridge.example" },
    xml("ping", { xmlns: "urn:xmpp:ping" }),
  );

const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe("IQ caller", function () {
  it("gives every request a fresh 96-bit base64url id", function () {
    const ids = new Set(Array.from({ length: 1000 }, () => newIqId()));
    assert.equal(ids.size, 1000);
    for (const id of ids) assert.match(id, /^[A-Za-z0-9_-]{16}$/);
  });

  it("resolves with the result that comes from the addressed JID with the same id", async function () {
    const wire = fakeWire();
    const caller = new IqCaller({ send: wire.send });
    const pending = caller.request(ping());
    await flush();
    const id = String(wire.sent[0]?.attrs.id);
    assert.equal(caller.handleStanza(xml("iq", { type: "result", id, from: "wa.example" })), true);
    const result = await pending;
    assert.equal(result.attrs.id, id);
    assert.equal(caller.pendingCount, 0);
  });

  it("ignores a response with the right id from another address", async function () {
    const wire = fakeWire();
    const caller = new IqCaller({ send: wire.send, timeoutMs: 50 });
    const pending = caller.request(ping()).catch((e: unknown) => e);
    await flush();
    const id = String(wire.sent[0]?.attrs.id);
    const spoof = xml("iq", { type: "result", id, from: "mallory@matrix.bridge.example" });
    assert.equal(caller.handleStanza(spoof), false);
    assert.ok((await pending) instanceof IqTimeoutError);
  });

  it("accepts a server bounce from the domain of a user JID it addressed", async function () {
    const wire = fakeWire();
    const caller = new IqCaller({ send: wire.send });
    const pending = caller.request(ping("491701234567@wa.example")).catch((e: unknown) => e);
    await flush();
    const id = String(wire.sent[0]?.attrs.id);
    const bounce = parseXml(
      `<iq type='error' id='${id}' from='wa.example'><error type='cancel'>` +
        `<service-unavailable xmlns='${NS_STANZAS}'/></error></iq>`,
    );
    assert.equal(caller.handleStanza(bounce), true);
    const err = await pending;
    assert.ok(err instanceof IqError);
    assert.equal(err.error.condition, "service-unavailable");
  });

  it("decodes an error answer into type, condition, app condition and text", async function () {
    const wire = fakeWire();
    const caller = new IqCaller({ send: wire.send });
    const pending = caller.request(ping()).catch((e: unknown) => e);
    await flush();
    const id = String(wire.sent[0]?.attrs.id);
    caller.handleStanza(
      parseXml(
        `<iq type='error' id='${id}' from='wa.example'><error type='wait'>` +
          `<resource-constraint xmlns='${NS_STANZAS}'/>` +
          `<text xmlns='${NS_STANZAS}'>slow down</text>` +
          `<rate-limited xmlns='urn:interop:errors:0' scope='lookup' retry-after='30'/>` +
          `</error></iq>`,
      ),
    );
    const err = await pending;
    assert.ok(err instanceof IqError);
    assert.equal(err.code, "iq-error");
    assert.equal(err.error.type, "wait");
    assert.equal(err.error.condition, "resource-constraint");
    assert.equal(err.error.text, "slow down");
    assert.equal(err.error.appCondition?.name, "rate-limited");
    assert.equal(err.error.appCondition?.attrs["retry-after"], "30");
  });

  it("resends unchanged with the same id on timeout, then fails with iq-timeout", async function () {
    const wire = fakeWire();
    const caller = new IqCaller({ send: wire.send, timeoutMs: 30, retries: 2 });
    const err = await caller.request(ping()).catch((e: unknown) => e);
    assert.ok(err instanceof IqTimeoutError);
    assert.equal(err.attempts, 3);
    assert.equal(wire.sent.length, 3);
    assert.equal(new Set(wire.sent.map((s) => s.toString())).size, 1);
    assert.equal(caller.pendingCount, 0);
  });

  it("keeps an id the caller chose, so a request can be repeated after a restart", async function () {
    const wire = fakeWire();
    const caller = new IqCaller({ send: wire.send });
    const iq = ping();
    iq.attrs.id = "h1";
    const pending = caller.request(iq);
    await flush();
    caller.handleStanza(xml("iq", { type: "result", id: "h1", from: "wa.example" }));
    assert.equal((await pending).attrs.id, "h1");
  });

  it("rejects at once with the transport error when sending fails", async function () {
    const wire = fakeWire();
    wire.fail = true;
    const caller = new IqCaller({ send: wire.send, timeoutMs: 10_000 });
    const err = await caller.request(ping()).catch((e: unknown) => e);
    assert.ok(err instanceof TransportError);
    assert.equal(err.code, "transport-offline");
    assert.equal(caller.pendingCount, 0);
  });

  it("refuses a request that is not an IQ get or set with a to address", async function () {
    const caller = new IqCaller({ send: fakeWire().send });
    const noTo = await caller.request(xml("iq", { type: "get" })).catch((e: unknown) => e);
    assert.ok(noTo instanceof TransportError);
    assert.equal(noTo.code, "stanza-invalid");
    const result = await caller
      .request(xml("iq", { type: "result", to: "wa.example" }))
      .catch((e: unknown) => e);
    assert.ok(result instanceof TransportError);
  });

  it("fails every pending request on failAll", async function () {
    const caller = new IqCaller({ send: fakeWire().send, timeoutMs: 10_000 });
    const a = caller.request(ping()).catch((e: unknown) => e);
    const b = caller.request(ping()).catch((e: unknown) => e);
    caller.failAll(new TransportError("transport-offline", "connection lost"));
    assert.equal(((await a) as TransportError).code, "transport-offline");
    assert.equal(((await b) as TransportError).code, "transport-offline");
    assert.equal(caller.pendingCount, 0);
  });
});

describe("IQ responder", function () {
  async function ask(responder: IqResponder, wire: ReturnType<typeof fakeWire>, iq: XmlElement) {
    assert.equal(responder.handleStanza(iq), true);
    for (let i = 0; i < 20 && wire.sent.length === 0; i++) await flush();
    const reply = wire.sent.shift();
    assert.ok(reply, "no reply sent");
    return reply;
  }

  function errorOf(reply: XmlElement): { type: unknown; condition: string | undefined } {
    const error = childElements(reply).find((c) => c.name === "error");
    assert.ok(error, `no <error> in ${reply.toString()}`);
    return {
      type: error.attrs.type,
      condition: childElements(error).find((c) => c.attrs.xmlns === NS_STANZAS)?.name,
    };
  }

  const request = (payloads: XmlElement[], type = "get"): XmlElement =>
    xml("iq", { type, id: "q1", from: "wa.example", to: "matrix.bridge.example" }, ...payloads);

  it("answers a ping with an empty result addressed back to the sender", async function () {
    const wire = fakeWire();
    const responder = new IqResponder({ send: wire.send });
    const reply = await ask(responder, wire, request([xml("ping", { xmlns: "urn:xmpp:ping" })]));
    assert.equal(reply.attrs.type, "result");
    assert.equal(reply.attrs.id, "q1");
    assert.equal(reply.attrs.to, "wa.example");
    assert.equal(reply.attrs.from, "matrix.bridge.example");
    assert.equal(childElements(reply).length, 0);
  });

  it("answers an unknown payload with service-unavailable (cancel)", async function () {
    const wire = fakeWire();
    const responder = new IqResponder({ send: wire.send });
    const reply = await ask(responder, wire, request([xml("query", { xmlns: "urn:x:unknown" })]));
    assert.deepEqual(errorOf(reply), { type: "cancel", condition: "service-unavailable" });
  });

  it("routes by namespace and name, and returns the handler's payload", async function () {
    const wire = fakeWire();
    const responder = new IqResponder({ send: wire.send });
    responder.register("urn:x:a", "thing", ({ payload, type }) =>
      xml("thing", { xmlns: "urn:x:a", seen: `${type}:${String(payload.attrs.n)}` }),
    );
    const other = await ask(responder, wire, request([xml("thing", { xmlns: "urn:x:b", n: "1" })]));
    assert.equal(errorOf(other).condition, "service-unavailable");
    const reply = await ask(
      responder,
      wire,
      request([xml("thing", { xmlns: "urn:x:a", n: "7" })], "set"),
    );
    assert.equal(reply.attrs.type, "result");
    assert.equal(childElements(reply)[0]?.attrs.seen, "set:7");
  });

  it("answers internal-server-error (wait) when a handler throws or rejects", async function () {
    const wire = fakeWire();
    const responder = new IqResponder({ send: wire.send });
    responder.register("urn:x:a", "sync", () => {
      throw new Error("bug");
    });
    responder.register("urn:x:a", "async", async () => {
      throw new Error("async bug");
    });
    for (const name of ["sync", "async"]) {
      const reply = await ask(responder, wire, request([xml(name, { xmlns: "urn:x:a" })]));
      assert.deepEqual(errorOf(reply), { type: "wait", condition: "internal-server-error" });
    }
  });

  it("answers with the error an IqReplyError names, app condition and text included", async function () {
    const wire = fakeWire();
    const responder = new IqResponder({ send: wire.send });
    responder.register("urn:x:a", "confirm", () => {
      throw new IqReplyError("modify", "not-acceptable", {
        appCondition: xml("code-invalid", { xmlns: "urn:interop:errors:0", "attempts-left": "2" }),
        text: "wrong code",
      });
    });
    const reply = await ask(
      responder,
      wire,
      request([xml("confirm", { xmlns: "urn:x:a" })], "set"),
    );
    assert.deepEqual(errorOf(reply), { type: "modify", condition: "not-acceptable" });
    const error = childElements(reply)[0]!;
    const app = childElements(error).find((c) => c.attrs.xmlns === "urn:interop:errors:0");
    assert.equal(app?.attrs["attempts-left"], "2");
    assert.equal(
      childElements(error)
        .find((c) => c.name === "text")
        ?.getText(),
      "wrong code",
    );
  });

  it("answers bad-request to an IQ without exactly one payload", async function () {
    const wire = fakeWire();
    const responder = new IqResponder({ send: wire.send });
    const none = await ask(responder, wire, request([]));
    assert.deepEqual(errorOf(none), { type: "modify", condition: "bad-request" });
    const two = await ask(
      responder,
      wire,
      request([xml("ping", { xmlns: "urn:xmpp:ping" }), xml("ping", { xmlns: "urn:xmpp:ping" })]),
    );
    assert.equal(errorOf(two).condition, "bad-request");
  });

  it("never answers results or errors", async function () {
    const wire = fakeWire();
    const responder = new IqResponder({ send: wire.send });
    assert.equal(
      responder.handleStanza(xml("iq", { type: "result", id: "x", from: "wa.example" })),
      false,
    );
    assert.equal(
      responder.handleStanza(xml("iq", { type: "error", id: "y", from: "wa.example" })),
      false,
    );
    await flush();
    assert.equal(wire.sent.length, 0);
  });

  it("refuses a second handler for the same payload", function () {
    const responder = new IqResponder({ send: fakeWire().send });
    assert.throws(
      () => responder.register("urn:xmpp:ping", "ping", () => undefined),
      /already registered/,
    );
  });
});
