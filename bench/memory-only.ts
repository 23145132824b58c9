/**
 * The memory and start-up figures alone (bench/memory.ts), without the message flows: for
 * checking a change to start-up or to what is loaded in a minute instead of a full bench run.
 *
 *   npx tsx bench/memory-only.ts [sqlite|postgres ...] [--users 0,10000]
 */
import { measureMemory } from "./memory.js";
import type { DatabaseType } from "../src/db/database.js";

const args = process.argv.slice(2);
const backends: DatabaseType[] = [];
let sizes = [0, 10_000];
for (let i = 0; i < args.length; i++) {
  const arg = args[i];
  if (arg === "--users") sizes = (args[++i] ?? "").split(",").map(Number);
  else if (arg === "sqlite" || arg === "postgres") backends.push(arg);
  else throw new Error(`unknown argument ${arg}`);
}
for (const backend of backends.length === 0 ? (["sqlite", "postgres"] as const) : backends) {
  const figures = await measureMemory(backend, sizes, (line) => console.log(line));
  console.log(JSON.stringify({ backend, figures }));
}
