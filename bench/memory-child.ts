/**
 * One bridge process for the memory benchmark (bench/memory.ts): starts the bridge on the
 * database and gatekeeper given on the command line, tells the parent when startBridge resolved,
 * then idles until the parent reads its resident memory and disconnects.
 *
 *   node <compiled>/bench/memory-child.js <config.json>   (bench/memory.ts compiles it)
 */
import { readFile } from "node:fs/promises";
import { startBridge } from "../src/bridge.js";
import type { Registration } from "../src/cli/registration.js";
import { configSchema } from "../src/config/schema.js";
import { createInteropConnector } from "../src/interop/connector/factory.js";
import { startEmbeddedGatekeeper } from "../simulator/embedded-gatekeeper.js";
import { silentLogger } from "../src/util/log.js";

interface ChildConfig {
  config: unknown;
  registration: Registration;
  port: number;
}

const loaded = performance.now();
const file = process.argv[2];
if (file === undefined) throw new Error("usage: memory-child.ts <config.json>");
const { config: raw, registration, port } = JSON.parse(await readFile(file, "utf8")) as ChildConfig;
const config = configSchema.parse(raw);
const started = performance.now();
const bridge = await startBridge({
  config,
  registration,
  port,
  log: silentLogger(),
  createConnector: (callbacks, deps) =>
    createInteropConnector(config, callbacks, { ...deps, startEmbedded: startEmbeddedGatekeeper }),
});
const ready = performance.now();
process.send?.({
  type: "ready",
  /** From the start of this module (after Node and tsx loaded it) to startBridge resolved. */
  startBridgeMs: ready - started,
  moduleToReadyMs: ready - loaded,
});
// The parent asks, after the idle period, where the memory is (RSS alone does not say).
process.on("message", (m) => {
  if ((m as { type?: string }).type !== "memory") return;
  const usage = process.memoryUsage();
  process.send?.({
    type: "memory",
    heapUsed: usage.heapUsed,
    heapTotal: usage.heapTotal,
    external: usage.external,
  });
});
process.on("disconnect", () => {
  void bridge.stop().finally(() => process.exit(0));
});
