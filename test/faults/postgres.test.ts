import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import knexFactory, { type Knex } from "knex";
import { TEST_POSTGRES_URI } from "../helpers/db.js";
import { assertExactlyOnce, Burst } from "./counting.js";
import { TcpProxy } from "./tcp-proxy.js";
import { FaultWorld, openConversation, sleep, type Conversation } from "./world.js";

const TOTAL = 200;
const CUT_FOR_MS = 5000;

/**
 * The bridge runs on PostgreSQL through a TCP proxy; mid-burst the proxy resets every connection
 * and refuses new ones for a few seconds, as a database restart or a network failure would. The
 * bridge must ride it out (not crash, not lose or duplicate anything) and carry on once the
 * database is back.
 */
describe("fault: the PostgreSQL connection is lost and restored", function () {
  this.timeout(300_000);
  let world: FaultWorld;
  let conversation: Conversation;
  let proxy: TcpProxy;
  let admin: Knex;
  const schema = `faults_${randomBytes(5).toString("hex")}`;

  before(async function () {
    admin = knexFactory({ client: "pg", connection: TEST_POSTGRES_URI });
    await admin.raw(`create schema "${schema}"`);
    const target = new URL(TEST_POSTGRES_URI);
    proxy = new TcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
    await proxy.start();
    const viaProxy = new URL(TEST_POSTGRES_URI);
    viaProxy.host = `127.0.0.1:${proxy.port}`;
    viaProxy.searchParams.set("options", `-csearch_path=${schema}`);
    world = await FaultWorld.start({ postgresUri: viaProxy.toString() });
    await world.startBridge();
    conversation = await openConversation(world, "alice", "+491700000001", "+491701111111");
  });

  after(async function () {
    await world?.stop();
    await proxy?.stop();
    await admin?.raw(`drop schema if exists "${schema}" cascade`);
    await admin?.destroy();
  });

  it("delivers every message exactly once and in order after the database is back", async function () {
    const burst = new Burst(conversation, TOTAL);
    let outage: Promise<void> = Promise.resolve();
    let reset = 0;
    await burst.send(0, TOTAL, async (n) => {
      if (n !== 60) return;
      outage = (async () => {
        reset = proxy.openConnections;
        proxy.cut();
        await sleep(CUT_FOR_MS);
        proxy.restore();
      })();
    });
    await outage;
    const tally = await burst.settle(world);
    process.stdout.write(
      `      ${reset / 2} database connections reset, database unreachable for ${CUT_FOR_MS} ms\n`,
    );
    assert.ok(reset > 0, "the bridge had database connections open through the proxy");
    assert.ok(world.bridgeRunning, "the bridge is still running");
    assertExactlyOnce(tally, { world });
  });
});
