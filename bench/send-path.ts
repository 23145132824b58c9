/**
 * The provider's sending side alone (src/interop/provider/sender.ts and outbox.ts, the Signal
 * stores, the vault): CPU per message of Matrix-event sends through the engine to an in-process
 * fake gatekeeper that accepts each one, on SQLite. Without Matrix, the core or a world process,
 * so that a change to the send path shows in a minute.
 *
 * Given two source trees (e.g. a `git archive` of the base commit with node_modules linked), it
 * runs both in this process and alternates their rounds: on a machine other jobs load, CPU per
 * message drifts by tens of percent from minute to minute, and only the ratio of rounds run side
 * by side says whether a change helped.
 *
 *   npx tsx bench/send-path.ts [--messages 300] [--rounds 12] [--in-flight 50] [tree [tree]]
 *
 * The figure includes the fake gatekeeper's parsing and answering (the same for both trees).
 */
import path from "node:path";
import { parseArgs } from "node:util";
import type { BareJid } from "../src/util/ids.js";

const { values, positionals } = parseArgs({
  args: process.argv.slice(2),
  options: {
    messages: { type: "string", default: "300" },
    rounds: { type: "string", default: "12" },
    "in-flight": { type: "string", default: "50" },
  },
  allowPositionals: true,
});
const MESSAGES = Number(values.messages);
const ROUNDS = Number(values.rounds);
const IN_FLIGHT = Number(values["in-flight"]);
const trees = positionals.length === 0 ? [process.cwd()] : positionals.map((p) => path.resolve(p));
if (trees.length > 2) throw new Error("at most two source trees");

/** One round: `count` sends, IN_FLIGHT at a time; resolves with CPU µs per accepted message. */
type Round = (count: number) => Promise<number>;

/** A bridge of `tree` with one user and one contact device, warmed up (session set up). */
async function start(tree: string): Promise<Round> {
  // Each tree's own modules: the test helpers import that tree's src/.
  const { FakeGatekeeper } = (await import(
    `${tree}/test/interop/provider/fake-gatekeeper.ts`
  )) as typeof import("../test/interop/provider/fake-gatekeeper.js");
  const { GatekeeperUsers } = (await import(
    `${tree}/test/interop/provider/peers.ts`
  )) as typeof import("../test/interop/provider/peers.js");
  const world = (await import(
    `${tree}/test/interop/provider/world.ts`
  )) as typeof import("../test/interop/provider/world.js");
  const { createTestDatabase } = (await import(
    `${tree}/test/helpers/db.ts`
  )) as typeof import("../test/helpers/db.js");
  const db = await createTestDatabase("sqlite");
  const fake = await FakeGatekeeper.start();
  const users = await GatekeeperUsers.create(fake);
  const contact = await users.addUser([1]);
  const bridge = world.startBridge(fake.service, db.db.knex);
  await world.ready(bridge);
  const local: BareJid = world.uniqueBridgeJid();
  await bridge.engine.createUser(local);
  let event = 0;
  const send = () =>
    bridge.engine.sendMessage({
      from: local,
      to: contact.jid,
      content: [{ kind: "body", text: `message number ${event} with some text` }],
      eventId: `$bench${event++}:example.org`,
    });
  // The first message sets the session up; concurrent first messages would each fetch a bundle.
  await send();
  const round: Round = async (count) => {
    const before = bridge.sink.of("accepted").length;
    let next = 0;
    const worker = async () => {
      while (next < count) {
        next++;
        await send();
      }
    };
    const cpu = process.cpuUsage();
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
    await world.eventually(
      () => bridge.sink.of("accepted").length >= before + count,
      "the acceptances",
      60_000,
    );
    const used = process.cpuUsage(cpu);
    return (used.user + used.system) / count;
  };
  await round(MESSAGES);
  return round;
}

const median = (xs: readonly number[]): number =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

const rounds: Round[] = [];
for (const tree of trees) rounds.push(await start(tree));
const figures: number[][] = trees.map(() => []);
for (let i = 0; i < ROUNDS; i++) {
  // Alternating which tree goes first cancels a drift within a pair.
  const order = i % 2 === 0 ? rounds.keys() : [...rounds.keys()].reverse();
  for (const k of order) figures[k]?.push(await rounds[k]!(MESSAGES));
}
for (const [k, tree] of trees.entries()) {
  const f = figures[k] ?? [];
  console.log(
    `${tree}: CPU per message median ${median(f).toFixed(0)} µs, min ${Math.min(...f).toFixed(0)} µs`,
  );
}
const [a, b] = figures;
if (a !== undefined && b !== undefined) {
  const ratios = b.map((x, i) => x / (a[i] ?? Number.NaN));
  console.log(
    `second/first, per round pair: median ${median(ratios).toFixed(3)} (${ratios.map((r) => r.toFixed(2)).join(" ")})`,
  );
}
process.exit(0);
