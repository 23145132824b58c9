import assert from "node:assert/strict";
import type { RemoteEvent } from "../../../src/core/network.js";
import type { InteropLogin } from "../../../src/interop/connector/login.js";
import { matrixUserId, phoneNumber, type MatrixUserId } from "../../../src/util/ids.js";
import { buildConnector, eventually, RecordingCore, startWorld, type World } from "./harness.js";

type Message = Extract<RemoteEvent, { kind: "message" }>;

/**
 * The receiver's `firstHandOver` (issue #15): the core skips its look-up of a message's mapping
 * only for it, so it must be on a message's first report and on nothing that repeats one.
 */
for (const backend of ["sqlite", "postgres"] as const)
  describe(`the connector's first hand-over of a message [${backend}]`, function () {
    this.timeout(30_000);
    let world: World;
    let next: ReturnType<typeof buildConnector> | undefined;
    const alice = matrixUserId("@alice:example.org");
    const alicePhone = phoneNumber("+491709876543");
    const bobPhone = phoneNumber("+491701234567");

    beforeEach(async function () {
      world = await startWorld({ "verification-interval-seconds": 0 }, [], backend);
      await world.sim.users.create({ phone: bobPhone, devices: 1 });
    });
    afterEach(async function () {
      await next?.engine.halt();
      next = undefined;
      await world.stop();
    });

    async function login(): Promise<InteropLogin> {
      const process = world.connector.createLogin(alice, "phone");
      await process.start();
      await process.submit("phone", { phone: alicePhone });
      const sent = await world.sim.gatekeeper.services.identity.latestCode(alicePhone);
      const done = await process.submit("code", { code: sent?.code ?? "" });
      return done.type === "complete" ? (done.login as InteropLogin) : assert.fail();
    }

    /** Every report of a message the core got, failed ones included: `<text> <firstHandOver>`. */
    function attemptsOf(core: RecordingCore, fail: (m: Message) => boolean): string[] {
      const attempts: string[] = [];
      const report = core.report.bind(core);
      core.report = async (user: MatrixUserId, event: RemoteEvent): Promise<void> => {
        if (event.kind === "message") {
          const body = event.content.type === "text" ? event.content.text.text : "?";
          attempts.push(`${body} ${event.firstHandOver ?? "-"}`);
          if (fail(event)) throw new Error("the homeserver is down");
        }
        await report(user, event);
      };
      return attempts;
    }

    const pendingRows = async (): Promise<number> =>
      Number((await world.db.db.knex("inbox").whereNotNull("pending_since").count("* as n"))[0]?.n);

    it("is flagged first; its retry after a failed report is not", async function () {
      const mine = await login();
      let failures = 1;
      const attempts = attemptsOf(world.core, () => failures-- > 0);
      await world.sim.users.send(bobPhone, mine.jid, [{ kind: "body", text: "flaky" }]);
      await eventually(() => world.core.of("message").length === 1, "reported after the retry");
      await world.sim.users.send(bobPhone, mine.jid, [{ kind: "body", text: "next" }]);
      await eventually(() => world.core.of("message").length === 2, "the next message reported");
      assert.deepEqual(attempts, ["flaky true", "flaky -", "next true"]);
      await eventually(async () => (await pendingRows()) === 0, "both handed over");
    });

    it("is not flagged when a message committed by an earlier run is handed over after a restart", async function () {
      const mine = await login();
      // Never taken by this run's core: it stays committed pending in inbox, unacked.
      world.core.gate = new Promise(() => undefined);
      await world.sim.users.send(bobPhone, mine.jid, [{ kind: "body", text: "left over" }]);
      await eventually(async () => (await pendingRows()) === 1, "decrypted and pending");
      await world.connector.engine.halt();

      const core = new RecordingCore();
      const attempts = attemptsOf(core, () => false);
      next = buildConnector(world.sim, world.db, core);
      await next.start();
      await next.loadLogin(alice);
      await eventually(() => core.of("message").length === 1, "handed over by the next run");
      assert.deepEqual(attempts, ["left over -"]);
    });
  });
