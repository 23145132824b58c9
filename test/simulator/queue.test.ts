import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import knexFactory from "knex";
import {
  classifyMessage,
  decodeAccepted,
  encodeAck,
  type XmlElement,
} from "../../src/interop/codec/index.js";
import { xml } from "../../src/interop/codec/xml.js";
import type { BareJid, StanzaId } from "../../src/util/ids.js";
import {
  ALICE,
  child,
  childNamed,
  errorOf,
  OTHER_PROVIDER,
  PROVIDER,
  startTestSimulator,
  TestProvider,
} from "./harness.js";
import { text } from "./provider-user.js";
import { ack, delivery, eventually, GK, makeWorld, PHONE, type World } from "./world.js";

const stanzaIdOf = (s: XmlElement): string => String(classifyMessage(s).stanzaId?.id);
const encryptedDeliveries = (p: TestProvider, from = 0): XmlElement[] =>
  p.received
    .slice(from)
    .filter((s) => s.children.some((c) => typeof c !== "string" && c.name === "encrypted"));

describe("simulator: delivery queue and acks (§15.5)", function () {
  this.timeout(30000);
  let w: World;

  beforeEach(async function () {
    w = await makeWorld({ limits: { "ack-timeout-seconds": 10, "max-unacked": 2 } });
  });
  afterEach(async function () {
    await w.close();
  });

  const send = (t: string) => w.sim.users.send(PHONE, ALICE as BareJid, text(t));

  it("redelivers an unacknowledged delivery with the same stanza-id after ack-timeout", async function () {
    await send("one");
    const first = await delivery(w.provider, "encrypted");
    const mark = w.provider.received.length;
    w.clock.advance(9_000);
    await w.sim.tick();
    assert.equal(encryptedDeliveries(w.provider, mark).length, 0);
    w.clock.advance(2_000);
    await w.sim.tick();
    const again = await delivery(w.provider, "encrypted", mark);
    assert.equal(stanzaIdOf(again), stanzaIdOf(first));
    assert.equal(again.toString(), first.toString());
    await ack(w.provider, [again]);
    await eventually(async () =>
      (await w.sim.gatekeeper.services.queue.depth()) <= 1 ? true : undefined,
    );
    const mark2 = w.provider.received.length;
    w.clock.advance(11_000);
    await w.sim.tick();
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(encryptedDeliveries(w.provider, mark2).length, 0);
  });

  it("keeps at most max-unacked deliveries in flight and sends more as acks arrive", async function () {
    // prekeys-low for Alice occupies one slot at first: ack everything that arrives.
    await send("a");
    await send("b");
    await send("c");
    await new Promise((r) => setTimeout(r, 200));
    const inFlight = w.provider.received.filter(
      (s) => s.name === "message" && classifyMessage(s).stanzaId !== undefined,
    );
    assert.equal(inFlight.length, 2);
    await ack(w.provider, inFlight);
    await eventually(async () => (encryptedDeliveries(w.provider).length === 3 ? true : undefined));
  });

  it("counts ack items only from the provider domain the stanza went to, sent to its `by`", async function () {
    await send("x");
    const d = await delivery(w.provider, "encrypted");
    const id = stanzaIdOf(d) as StanzaId;
    const other = await TestProvider.connect(w.sim.service, OTHER_PROVIDER);
    await other.hello(OTHER_PROVIDER);
    await other.send(
      xml(
        "message",
        { id: "ack-x", from: OTHER_PROVIDER.domain, to: "wa.example" },
        encodeAck([id]),
      ),
    );
    await w.provider.send(
      xml("message", { id: "ack-y", from: PROVIDER.domain, to: "g.wa.example" }, encodeAck([id])),
    );
    await w.provider.send(
      xml("message", { id: "ack-z", from: ALICE, to: "wa.example" }, encodeAck([id])),
    );
    await other.close();
    const mark = w.provider.received.length;
    w.clock.advance(11_000);
    await w.sim.tick();
    const again = await delivery(w.provider, "encrypted", mark);
    assert.equal(stanzaIdOf(again), id);
  });

  it("queues while the provider is offline and redelivers everything after the next hello", async function () {
    await send("before");
    const first = await delivery(w.provider, "encrypted");
    await w.provider.close();
    await send("while offline");
    await new Promise((r) => setTimeout(r, 100));
    w.provider = await TestProvider.connect(w.sim.service);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(encryptedDeliveries(w.provider).length, 0, "nothing before hello");
    await w.provider.hello();
    // The prekeys-low notification takes one of the two in-flight slots: ack as things arrive.
    await eventually(async () => {
      await ack(
        w.provider,
        w.provider.received.filter(
          (s) => s.name === "message" && classifyMessage(s).stanzaId !== undefined,
        ),
      );
      return encryptedDeliveries(w.provider).length >= 2 ? true : undefined;
    });
    const ids = encryptedDeliveries(w.provider).map(stanzaIdOf);
    assert.equal(ids[0], stanzaIdOf(first));
  });
});

describe("simulator: hello state gates traffic (§8.2) and queue retention (§15.5)", function () {
  this.timeout(30000);
  let w: World;

  beforeEach(async function () {
    w = await makeWorld({ limits: { "queue-retention-seconds": 600 } });
  });
  afterEach(async function () {
    await w.close();
  });

  it("without hello state bounces messages with hello-required and queues deliveries until hello", async function () {
    const { stanza } = await w.alice.message(GK, text("early"));
    await w.sim.gatekeeper.run(() => w.sim.gatekeeper.services.hello.forget(PROVIDER.domain));
    const e = errorOf(await w.provider.outcome(stanza));
    assert.deepEqual(
      [e.condition, e.type, e.app?.name],
      ["not-authorized", "auth", "hello-required"],
    );
    const mark = w.provider.received.length;
    await w.sim.users.send(PHONE, ALICE as BareJid, text("queued"));
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(encryptedDeliveries(w.provider, mark).length, 0);
    await w.provider.hello();
    // E24: the bounce was not final; the identical stanza sent again after hello is accepted.
    const again = await w.provider.outcome(stanza);
    assert.equal(childNamed(again, "accepted")?.attrs["origin-id"], stanza.attrs.id);
    await eventually(async () => {
      await ack(
        w.provider,
        w.provider.received.filter(
          (s) => s.name === "message" && classifyMessage(s).stanzaId !== undefined,
        ),
      );
      return encryptedDeliveries(w.provider, mark).length > 0 ? true : undefined;
    });
  });

  it("drops deliveries still unacknowledged after queue-retention-seconds", async function () {
    await w.sim.users.send(PHONE, ALICE as BareJid, text("old"));
    await delivery(w.provider, "encrypted");
    assert.ok((await w.sim.gatekeeper.services.queue.depth()) > 0);
    w.clock.advance(600_001);
    await w.sim.tick();
    assert.equal(await w.sim.gatekeeper.services.queue.depth(), 0);
  });

  it("forgets de-duplication records after dedup-window-seconds", async function () {
    const { stanza } = await w.alice.message(GK, text("dup"));
    const first = decodeAccepted(child(await w.provider.outcome(stanza)));
    w.clock.advance(604_800_001);
    await w.sim.tick();
    const again = decodeAccepted(child(await w.provider.outcome(stanza)));
    assert.notEqual(again.stanzaId, first.stanzaId);
  });
});

describe("simulator: restart with queued deliveries (§8.2, §15.5)", function () {
  this.timeout(30000);
  let dataDir: string;
  const dbIn = (dir: string) => path.join(dir, "sim.db");

  beforeEach(async function () {
    dataDir = await mkdtemp(path.join(tmpdir(), "wa-sim-restart-"));
  });
  afterEach(async function () {
    await rm(dataDir, { recursive: true, force: true });
  });

  it("loses nothing queued across a restart", async function () {
    const w = await makeWorld({ dataDir, database: dbIn(dataDir) });
    await w.sim.users.send(PHONE, ALICE as BareJid, text("queued 1"));
    await w.sim.users.send(PHONE, ALICE as BareJid, text("queued 2"));
    await eventually(async () => (encryptedDeliveries(w.provider).length === 2 ? true : undefined));
    const ids = encryptedDeliveries(w.provider).map(stanzaIdOf);
    await w.close();

    const { sim } = await startTestSimulator({ dataDir, database: dbIn(dataDir) });
    const provider = await TestProvider.connect(sim.service);
    await provider.hello();
    await eventually(async () => (encryptedDeliveries(provider).length >= 2 ? true : undefined));
    assert.deepEqual(encryptedDeliveries(provider).map(stanzaIdOf).slice(0, 2), ids);
    // The seq counter survived too.
    const next = await sim.users.send(PHONE, ALICE as BareJid, text("after restart"));
    assert.equal(next.seq, 3);
    await provider.close();
    await sim.stop();
  });

  it("a message accepted just before a crash reaches the user after the restart, once", async function () {
    const w = await makeWorld({ dataDir, database: dbIn(dataDir) });
    // The crash window: the <accepted> went out, the user's device never got to the message.
    w.sim.gatekeeper.setLocalSink(async () => undefined);
    const { stanza, originId } = await w.alice.message(GK, text("accepted, then crash"));
    const accepted = decodeAccepted(child(await w.provider.outcome(stanza)));
    await w.provider.close();
    await w.sim.stop();
    assert.equal(await countMessages(dbIn(dataDir)), 0, "the user had not logged it");

    const { sim } = await startTestSimulator({ dataDir, database: dbIn(dataDir) });
    const provider = await TestProvider.connect(sim.service);
    await provider.hello();
    const log = await eventually(async () => {
      const entries = await sim.users.received(PHONE, "message");
      return entries.length > 0 ? entries : undefined;
    });
    assert.equal(log[0]?.data.originId, originId);
    assert.equal(log[0]?.data.stanzaId, accepted.stanzaId);
    // The provider never saw a receipt it could trust and retransmits: answered, not re-delivered.
    const again = decodeAccepted(child(await provider.outcome(stanza)));
    assert.deepEqual(again, accepted);
    await sim.gatekeeper.run(async () => undefined);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal((await sim.users.received(PHONE, "message")).length, 1);
    assert.equal(await sim.gatekeeper.pending.all().then((p) => p.length), 0);
    await provider.close();
    await sim.stop();
    await w.providerKnex.destroy();
  });
});

async function countMessages(database: string): Promise<number> {
  const knex = knexFactory({
    client: "sqlite3",
    connection: { filename: database },
    useNullAsDefault: true,
  });
  try {
    const rows = (await knex("gk_user_log").where({ kind: "message" }).count({ n: "*" })) as {
      n: number | string;
    }[];
    return Number(rows[0]?.n ?? 0);
  } finally {
    await knex.destroy();
  }
}
