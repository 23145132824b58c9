import { measureFlows } from "./flows.js";
const f = await measureFlows({
  backend: (process.argv[2] ?? "sqlite") as "sqlite",
  portals: 3,
  maxMessages: 100,
  fixedSeconds: 0.5,
  progress: (l) => console.log(l),
});
console.log(JSON.stringify(f, null, 1));
process.exit(0);
