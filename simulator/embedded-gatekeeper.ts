import { randomBytes } from "node:crypto";
import type { Config } from "../src/config/schema.js";
import type { EmbeddedGatekeeper } from "../src/interop/connector/factory.js";
import { StartupError } from "../src/util/errors.js";
import type { Logger } from "../src/util/log.js";

/**
 * The embedded gatekeeper for `interop.mode: embedded`: the simulator, started in-process on a free
 * loopback port. The simulator's entry point for the bridge: nothing under src/ imports it (the lint
 * rule refuses every import of simulator/ there); the command line loads it by path
 * (src/cli/embedded-entry.ts) only when an embedded bridge starts, and injects it into the
 * interop connector. The product build leaves it out with the rest of simulator/.
 */
export async function startEmbeddedGatekeeper(
  config: Config,
  log: Logger,
): Promise<EmbeddedGatekeeper> {
  const interop = config.interop;
  const { startSimulator } = await import("./main.js");
  const secret = randomBytes(24).toString("hex");
  const web = config.simulator.web;
  const token = randomBytes(24).toString("base64url");
  const sim = await startSimulator({
    providers: [
      {
        id: interop.provider_id,
        name: config.appservice.bot.display_name,
        domain: interop.component_domain,
        secret,
      },
    ],
    dataDir: interop.embedded_data_dir,
    logger: log.child({ component: "embedded-gatekeeper" }),
    // The page and the admin API on loopback; every route behind the token, codes included.
    ...(web ? { admin: { port: config.simulator.port, token, web, publicCodes: false } } : {}),
  }).catch((err: unknown) => {
    // By code, not class: the simulator is loaded apart and may hold its own copy of the class.
    if ((err as { code?: unknown } | undefined)?.code === "port-in-use") {
      throw new StartupError(
        "simulator-port-in-use",
        `simulator.port ${config.simulator.port} on 127.0.0.1 is in use: choose another port or stop what uses it`,
      );
    }
    throw err;
  });
  log.info({ service: sim.service }, "embedded gatekeeper simulator started");
  if (sim.admin !== undefined) {
    // The one place the token is shown, at info on purpose: whoever starts a test deployment
    // needs it to open the page, and it guards simulated users only, on loopback only.
    log.info(
      { url: `${sim.admin.url}/#token=${token}`, adminApi: sim.admin.url },
      "simulator page (play the WhatsApp side): open the url; admin API token after #token=",
    );
  }
  return { service: sim.service, secret, stop: () => sim.stop() };
}
