/**
 * The message flows alone (bench/flows.ts) with the floor of the same run, without memory,
 * encrypted portals or groups: for checking a change to the message path in a minute or two
 * instead of a full bench run. Prints each direction's bridge CPU per message and its ratio to
 * the floor, throughput, latency and statements.
 *
 *   npx tsx bench/flows-only.ts [sqlite|postgres] [--messages 600] [--seconds 2] [--portals 4]
 *                               [--encrypted] [--floor-messages 1000]
 *   BENCH_CPU_PROF=<dir>  also writes a CPU profile of each direction's maximum run there.
 */
import { parseArgs } from "node:util";
import type { DatabaseType } from "../src/db/database.js";
import { measureFloor } from "./floor.js";
import { measureFlows } from "./flows.js";

const { values, positionals } = parseArgs({
  args: process.argv.slice(2),
  options: {
    messages: { type: "string", default: "600" },
    seconds: { type: "string", default: "2" },
    portals: { type: "string", default: "4" },
    "floor-messages": { type: "string", default: "1000" },
    encrypted: { type: "boolean", default: false },
  },
  allowPositionals: true,
});
const backend = (positionals[0] ?? "sqlite") as DatabaseType;
if (backend !== "sqlite" && backend !== "postgres") throw new Error(`unknown backend ${backend}`);
const say = (line: string) => process.stdout.write(`${line}\n`);
const floor = await measureFloor(Number(values["floor-messages"]));
say(`floor ${floor.totalUs.toFixed(0)} µs per message`);
const flows = await measureFlows({
  backend,
  portals: Number(values.portals),
  maxMessages: Number(values.messages),
  fixedSeconds: Number(values.seconds),
  encrypted: values.encrypted,
  progress: say,
});
for (const dir of ["m2w", "w2m"] as const) {
  const cpu = flows.bridgeCpuUsPerMessage[dir];
  say(
    `${dir}: ${flows[dir].throughput.perSecond.toFixed(0)} msg/s ` +
      `(${((flows[dir].throughput.perSecond * floor.totalUs) / 1e6).toFixed(2)}x floor), ` +
      `CPU ${cpu.toFixed(0)} µs/msg (${(cpu / floor.totalUs).toFixed(2)}x floor), ` +
      `${flows.queriesPerMessage[dir].toFixed(1)} statements/msg, at 100 msg/s p50/p99 ` +
      `${flows[dir].at100.p50Ms.toFixed(1)}/${flows[dir].at100.p99Ms.toFixed(1)} ms`,
  );
}
