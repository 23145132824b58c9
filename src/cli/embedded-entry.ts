import type { StartEmbeddedGatekeeper } from "../interop/connector/factory.js";
import { StartupError } from "../util/errors.js";

/**
 * The embedded gatekeeper's entry point, `simulator/embedded-gatekeeper.ts`, is an optional part of the
 * build: the product build (`npm run build`, `prepare`, the Docker image by default) leaves it and
 * `simulator/` out, the embedded build (`npm run build:embedded`, `npm start`, the demo image) adds
 * them. The specifier is a variable on purpose: a literal would make tsc pull the file (and through
 * it the simulator) into the product build.
 */
const ENTRY = "../../simulator/embedded-gatekeeper.js";

/**
 * Loads the embedded gatekeeper; asked for only when `interop.mode` is embedded, before the bridge
 * starts, so a product build says what to do instead of failing half-way through the start.
 */
export async function loadEmbeddedGatekeeper(
  entry: string = ENTRY,
): Promise<StartEmbeddedGatekeeper> {
  let loaded: { startEmbeddedGatekeeper?: unknown };
  try {
    loaded = (await import(entry)) as { startEmbeddedGatekeeper?: unknown };
  } catch (err) {
    // Only the entry point itself missing is "not built"; anything else is a bug to show as is.
    const code = (err as NodeJS.ErrnoException | undefined)?.code;
    const missing = code === "ERR_MODULE_NOT_FOUND" && String(err).includes("embedded-gatekeeper");
    if (!missing) throw err;
    throw new StartupError(
      "embedded-gatekeeper-not-built",
      "interop.mode is embedded, but this build has no embedded gatekeeper (the product build " +
        "leaves the simulator out): run `npm run build:embedded` in the checkout (or use `npm " +
        "start`, the demo image), or set interop.mode to external",
      err,
    );
  }
  if (typeof loaded.startEmbeddedGatekeeper !== "function") {
    throw new StartupError(
      "embedded-gatekeeper-not-built",
      `${entry} does not export startEmbeddedGatekeeper`,
    );
  }
  return loaded.startEmbeddedGatekeeper as StartEmbeddedGatekeeper;
}
