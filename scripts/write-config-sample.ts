// Writes config.sample.yaml from the config schema (npm run config:sample).
import { writeFile } from "node:fs/promises";
import { renderSample } from "../src/config/sample.js";

await writeFile(new URL("../config.sample.yaml", import.meta.url), renderSample());
process.stdout.write("wrote config.sample.yaml\n");
