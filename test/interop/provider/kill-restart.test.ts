import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { phoneNumber, type BareJid } from "../../../src/util/ids.js";
import { createTestDatabase, type TestDatabase } from "../../helpers/db.js";
import { freePort, SimulatorProcess, type ReceivedEntry } from "./kill-restart-world.js";
import { eventually, ready, startBridge, uniqueBridgeJid, type Bridge } from "./world.js";

const TOTAL = 500;
const KILL_AT = 250;

const textOf = (entry: ReceivedEntry): string | undefined =>
  entry.data.content?.find((c) => c.kind === "body")?.text;

/**
 * Crash recovery under load. The simulator runs as a child process and is crashed with a real
 * SIGKILL (no stop(), no flush: the kernel resets the sockets, only committed SQLite transactions
 * survive), then started again on the same port and data dir. The engine must reconnect, hello
 * again, retransmit its unconfirmed outbox and take the redelivered queue, with no loss and no
 * duplicate in either direction. (This test found that the simulator acknowledged a message before
 * its user had it durably: a crash in between lost it; see simulator/delivery/pending.ts.)
 */
describe("provider engine across a gatekeeper crash (kill -9 mid-exchange)", function () {
  this.timeout(240_000);
  let sim: SimulatorProcess;
  let dataDir: string;
  let db: TestDatabase;
  let bridge: Bridge | undefined;
  const phone = phoneNumber("+491701234567");
  const bob = "491701234567@wa.example" as BareJid;

  beforeEach(async function () {
    dataDir = await mkdtemp(path.join(tmpdir(), "wa-sim-kill-"));
    sim = new SimulatorProcess({
      dataDir,
      componentPort: await freePort(),
      adminPort: await freePort(),
      limits: {
        "messages-per-minute": 100_000,
        "request-messages": 100_000,
        "ack-timeout-seconds": 2,
      },
    });
    await sim.start();
    db = await createTestDatabase("sqlite");
  });

  afterEach(async function () {
    await bridge?.engine.halt();
    bridge = undefined;
    await sim.kill();
    await db.dispose();
    await rm(dataDir, { recursive: true, force: true });
  });

  it("1,000 interleaved messages survive a SIGKILL of the gatekeeper: none lost, none twice", async function () {
    await sim.createUser(phone, 1);
    const alice = uniqueBridgeJid();
    const started = startBridge(sim.service, db.db.knex, {
      timing: { retransmitInitialMs: 1000, retransmitMaxMs: 3000 },
    });
    bridge = started;
    await ready(started);
    await started.engine.createUser(alice);

    const inbound = () => started.sink.of("message").filter((e) => e.from === bob);
    const sentOrigins = new Map<string, string>();
    for (let i = 0; i < TOTAL; i++) {
      if (i === KILL_AT) {
        // Both directions have messages in flight here: nothing waited for their acks.
        await sim.kill();
        const handedOver = inbound().length;
        await eventually(() => started.engine.state.code !== "ready", "the engine to notice");
        await sim.start();
        const delivered = (await sim.received(phone, "message")).length;
        console.log(
          `      killed after ${KILL_AT} sends each way: ${KILL_AT - handedOver} WhatsApp->bridge ` +
            `and about ${KILL_AT - delivered} bridge->WhatsApp messages were still in flight`,
        );
        await eventually(() => started.engine.state.code === "ready", "reconnected", 60_000);
      }
      const [, originId] = await Promise.all([
        sim.sendText(phone, alice, `wa-${i}`),
        started.engine.sendMessage({
          from: alice,
          to: bob,
          content: [{ kind: "body", text: `br-${i}` }],
        }),
      ]);
      sentOrigins.set(originId, `br-${i}`);
    }

    const inboundTexts = () =>
      new Set(
        inbound().flatMap((e) =>
          e.envelope.content.flatMap((c) => (c.kind === "body" ? [c.text] : [])),
        ),
      );
    let outbound: ReceivedEntry[] = [];
    try {
      await eventually(
        async () => {
          outbound = await sim.received(phone, "message");
          return inboundTexts().size >= TOTAL && outbound.length >= TOTAL;
        },
        "all 1,000 messages to arrive",
        120_000,
      );
    } catch (err) {
      const missingOut = [...sentOrigins.values()].filter(
        (text) => !outbound.some((e) => e.data.content?.some((c) => c.text === text)),
      );
      throw new Error(
        `${(err as Error).message}: WhatsApp->bridge ${inboundTexts().size}/${TOTAL} ` +
          `bridge->WhatsApp ${outbound.length}/${TOTAL}; missing outbound: ${missingOut.slice(0, 10).join(",")}; ` +
          `engine state ${started.engine.state.code}`,
      );
    }
    // Give a redelivery round (ack timeout 2 s, tick 1 s) and a retransmission the chance to
    // produce a duplicate before counting.
    await new Promise((resolve) => setTimeout(resolve, 4000));
    outbound = await sim.received(phone, "message");

    const events = inbound();
    const eventIds = new Set(events.map((e) => e.originId));
    const outboundIds = new Set(outbound.map((e) => e.data.originId));
    const outboundTexts = new Set(outbound.map(textOf));
    console.log(
      `      WhatsApp->bridge: ${events.length} events, ${eventIds.size} distinct ids, ` +
        `${inboundTexts().size} distinct texts; bridge->WhatsApp: ${outbound.length} received, ` +
        `${outboundIds.size} distinct origin-ids, ${outboundTexts.size} distinct texts`,
    );

    assert.equal(events.length, TOTAL, "every WhatsApp message handed over exactly once");
    assert.equal(eventIds.size, TOTAL);
    for (let i = 0; i < TOTAL; i++) assert.ok(inboundTexts().has(`wa-${i}`), `wa-${i} lost`);

    assert.equal(outbound.length, TOTAL, "every bridge message received exactly once");
    assert.equal(outboundIds.size, TOTAL);
    for (const [originId, text] of sentOrigins) {
      const entry = outbound.find((e) => e.data.originId === originId);
      assert.ok(entry !== undefined, `${text} (${originId}) lost`);
      assert.equal(textOf(entry), text);
    }
  });
});
