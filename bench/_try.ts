import { measureFlows } from "./flows.js";
const f = await measureFlows({
  backend: (process.argv[2] ?? "sqlite") as "sqlite",
  portals: 3,
  maxMessages: 20,
  fixedSeconds: 0.2,
  progress: (l) => console.log(l),
});
console.log(JSON.stringify(f, null, 1));
process.exit(0);
