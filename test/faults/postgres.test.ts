import assert from "node:assert/strict";
import knexFactory, { type Knex } from "knex";
import { TEST_POSTGRES_URI } from "../helpers/db.js";
import { assertExactlyOnce, Burst } from "./counting.js";
import { dropDatabase, freshDatabase, setReadOnly } from "./pg.js";
import { TcpProxy } from "./tcp-proxy.js";
import { FaultWorld, openConversation, sleep, waitFor, type Conversation } from "./world.js";

const TOTAL = 150;
const CUT_FOR_MS = 5000;

/**
 * The bridge on PostgreSQL (a database of its own, reached through a TCP proxy), under database
 * faults in the middle of a burst: the connection lost, then the database read-only. The bridge
 * must ride them out (not crash, not lose or duplicate anything, keep the order) and carry on
 * once the database is back.
 */
describe("fault tests on one bridge (PostgreSQL)", function () {
  this.timeout(300_000);
  let world: FaultWorld;
  let conversation: Conversation;
  let proxy: TcpProxy;
  let admin: Knex;
  let database: { name: string; uri: string } | undefined;

  before(async function () {
    admin = knexFactory({ client: "pg", connection: TEST_POSTGRES_URI, pool: { min: 0, max: 2 } });
    database = await freshDatabase(admin);
    const target = new URL(TEST_POSTGRES_URI);
    proxy = new TcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
    await proxy.start();
    const viaProxy = new URL(database.uri);
    viaProxy.host = `127.0.0.1:${proxy.port}`;
    world = await FaultWorld.start({ postgresUri: viaProxy.toString() });
    await world.startBridge();
    conversation = await openConversation(world, "alice", "+491700000001", "+491701111111");
  });

  after(async function () {
    await world?.stop();
    await proxy?.stop();
    if (database !== undefined) await dropDatabase(admin, database.name).catch(() => undefined);
    await admin?.destroy();
  });

  /**
   * The proxy resets every connection and refuses new ones for a few seconds, as a database
   * restart or a network failure would.
   */
  it("connection lost and restored: every message once, in order", async function () {
    const burst = new Burst(conversation, TOTAL);
    let outage: Promise<void> = Promise.resolve();
    let reset = 0;
    await burst.send(0, TOTAL, async (n) => {
      if (n !== 50) return;
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

  /**
   * `default_transaction_read_only` is switched on (and the bridge's sessions ended, so that its
   * pool reconnects into read-only sessions) for a few seconds: the work must wait, with the
   * database's refusal in the log, and nothing may be dropped or reported as failed.
   */
  it("database read-only for a while: a clear error, then every message once, in order", async function () {
    const name = database?.name ?? "";
    const burst = new Burst(conversation, 100);
    let logBefore = 0;
    let readOnlyPhase: Promise<void> = Promise.resolve();
    await burst.send(0, 100, async (n) => {
      if (n !== 30) return;
      logBefore = world.bridgeLog.length;
      await setReadOnly(admin, name, true);
      readOnlyPhase = (async () => {
        await waitFor("the bridge to report the read-only database", () =>
          /read-only transaction/.test(world.bridgeLog.slice(logBefore)),
        );
        await sleep(3000);
        await setReadOnly(admin, name, false);
      })();
    });
    await readOnlyPhase;
    const tally = await burst.settle(world);
    const line = world.bridgeLog
      .slice(logBefore)
      .split("\n")
      .find((l) => /read-only transaction/.test(l));
    process.stdout.write(`      ${line?.slice(0, 160) ?? ""}...\n`);
    assert.ok(world.bridgeRunning, "the bridge kept running");
    assertExactlyOnce(tally, { world });
  });
});
