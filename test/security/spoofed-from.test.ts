import assert from "node:assert/strict";
import { parseXml, type XmlElement } from "../../src/interop/codec/xml.js";
import { ComponentConnection } from "../../src/interop/transport/component.js";
import {
  GK,
  PHONE,
  body,
  startWorld,
  until,
  type EngineHandle,
  type World,
} from "../conformance/setup.js";
import { skipUnlessProsody, startProsody, type ProsodyInstance } from "../prosody/harness.js";

const EVIL = "evil.example";
const EVIL_SECRET = "evil-secret";

/**
 * Over a real Prosody: the simulator is the gatekeeper (wa.example), the bridge's engine is
 * matrix.bridge.example, and an attacker holds a component of its own (evil.example) on the same
 * server. Whatever the attacker sends, a replay of a genuine delivery included, the bridge takes
 * nothing from it: no event for the core, no ack, no receipt, no outbox change.
 */
describe("only the configured gatekeeper's stanzas are accepted (real component connections)", function () {
  this.timeout(60_000);
  let prosody: ProsodyInstance;
  let world: World;
  let h: EngineHandle;
  let evil: ComponentConnection;
  let genuine: XmlElement;

  before(async function () {
    skipUnlessProsody(this);
    prosody = await startProsody({ extraComponents: { [EVIL]: EVIL_SECRET } });
    world = await startWorld("prosody", prosody.service);
    h = await world.engine();
    evil = new ComponentConnection({ service: prosody.service, domain: EVIL, secret: EVIL_SECRET });
    const online = new Promise<void>((resolve) => evil.once("online", () => resolve()));
    evil.start();
    await online;
    // A genuine delivery, to replay as the attacker.
    await world.sim.users.send(PHONE, h.user, body("genuine"));
    await until(() => h.sink.of("message").length === 1, "the genuine message");
    const delivery =
      h.received.find((s) => s.name === "message" && s.attrs.from === GK + "/1") ??
      h.received.find((s) => s.name === "message" && String(s.attrs.from).startsWith(GK));
    assert.ok(delivery !== undefined, "the genuine delivery was seen on the wire");
    genuine = delivery;
    await until(() => h.sent.some((s) => s.toString().includes("<ack")), "the genuine ack");
  });

  after(async function () {
    await evil?.stop();
    await world?.close();
    await prosody?.stop();
  });

  /** Sends as the attacker, then gives the bridge time to (wrongly) act on it. */
  async function attack(stanza: XmlElement): Promise<void> {
    const sentBefore = h.sent.length;
    // Prosody closes the attacker's stream after a stanza with a foreign from (invalid-from); the
    // connection comes back with backoff, later on a loaded machine: send once it is back.
    for (let attempt = 1; ; attempt++) {
      await evil.waitOnline(30_000);
      try {
        await evil.send(stanza);
        break;
      } catch (err) {
        if (attempt >= 5) throw err;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 700));
    const answers = h.sent.slice(sentBefore).filter((s) => String(s.attrs.to ?? "").includes(EVIL));
    assert.deepEqual(
      answers.map((s) => s.toString()),
      [],
      "nothing is sent back to the attacker",
    );
  }

  function replay(from: string): XmlElement {
    const copy = parseXml(genuine.toString());
    copy.attrs.from = from;
    return copy;
  }

  it("a replayed delivery from the attacker's own domain is ignored: no event, no ack", async function () {
    const acksBefore = h.sent.filter((s) => s.toString().includes("<ack")).length;
    await attack(replay(`491701234567@${EVIL}/1`));
    assert.ok(
      h.received.some((s) => String(s.attrs.from).endsWith(`@${EVIL}/1`)),
      "the attacker's stanza did reach the bridge's component",
    );
    assert.equal(h.sink.of("message").length, 1, "no second message for the core");
    assert.equal(h.sent.filter((s) => s.toString().includes("<ack")).length, acksBefore);
  });

  it("a `from` in the gatekeeper's domain is not deliverable from another component", async function () {
    // Prosody refuses to route a component's stanza whose from is outside its domain; were it to
    // pass, the engine would see GK as sender. It must see nothing new.
    const receivedBefore = h.received.length;
    await attack(replay(`${GK}/1`));
    const arrived = h.received.slice(receivedBefore);
    assert.ok(
      arrived.every((s) => !String(s.attrs.from).startsWith(GK)),
      "no stanza claiming the gatekeeper's JID arrived from the attacker",
    );
    assert.equal(h.sink.of("message").length, 1);
  });

  it("gatekeeper-only signals from the attacker (hello-request, request-accepted) change nothing", async function () {
    const stateBefore = h.engine.state.since.getTime();
    const sentBefore = h.sent.length;
    await attack(
      parseXml(
        `<message from="${EVIL}" to="matrix.bridge.example" id="x1"><hello-request xmlns="urn:interop:core:0"/></message>`,
      ),
    );
    assert.equal(h.engine.state.code, "ready");
    assert.equal(h.engine.state.since.getTime(), stateBefore, "no new hello was run");
    assert.ok(
      !h.sent.slice(sentBefore).some((s) => s.toString().includes("<hello")),
      "no hello sent",
    );
    await attack(
      parseXml(
        `<message from="491701234567@${EVIL}" to="${h.user}" id="x2"><request-accepted xmlns="urn:interop:delivery:0" jid="${GK}"/><stanza-id xmlns="urn:xmpp:sid:0" id="forged-1" by="wa.example"/></message>`,
      ),
    );
    assert.equal(h.sink.of("request-accepted").length, 0);
  });
});
