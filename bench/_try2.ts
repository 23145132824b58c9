import { measureMemory } from "./memory.js";
console.log(
  await measureMemory((process.argv[2] ?? "sqlite") as "sqlite", [0, 1000, 10000], (l) =>
    console.log(l),
  ),
);
process.exit(0);
