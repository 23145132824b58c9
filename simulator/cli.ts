import { createLogger, type LogLevel } from "../src/util/log.js";
import { describeError } from "../src/util/errors.js";
import type { EnlistedProvider } from "./config.js";
import { startSimulator } from "./main.js";

/**
 * Runs the gatekeeper simulator as a process, for the demo and the benchmark:
 * `npx tsx simulator/cli.ts`. Configuration comes from the environment; the defaults are those of
 * PROTOCOL.md Appendix A (component port 5347, `gatekeeper-secret`, one provider
 * `matrix.bridge.example` with `provider-secret`).
 *
 *   SIM_MODE            embedded (default) | external
 *   SIM_XMPP_SERVICE    external mode: the XMPP server's component port, xmpp://127.0.0.1:5347
 *   SIM_COMPONENT_PORT  embedded mode: port of the built-in component server (5347)
 *   SIM_DATA_DIR        database and media blobs (./simulator-data)
 *   SIM_MEDIA_PORT      media store port (0: any)
 *   SIM_ADMIN_PORT      admin API port (8090); SIM_ADMIN_TOKEN its bearer token (required)
 *   SIM_WEB             1: the admin API also serves the page that plays the WhatsApp side
 *   SIM_PROVIDERS       JSON array of {id, name, domain, secret}, instead of the default provider
 *   SIM_LIMITS          JSON object of §8.3 limits to announce instead of the defaults
 *   SIM_SERVER_STANZA_LIMIT  the XMPP server's stanza limit in bytes (external: Prosody's
 *                       component_stanza_size_limit; default 16 MiB there)
 *   SIM_LOG_LEVEL       info (default), debug, warn, ...
 */
async function main(): Promise<void> {
  const env = process.env;
  const log = createLogger({
    level: (env.SIM_LOG_LEVEL ?? "info") as LogLevel,
    format: "text",
  });
  const token = env.SIM_ADMIN_TOKEN;
  if (token === undefined || token.length < 8) {
    log.fatal("SIM_ADMIN_TOKEN must be set (at least 8 characters)");
    process.exitCode = 2;
    return;
  }
  const providers: EnlistedProvider[] =
    env.SIM_PROVIDERS === undefined
      ? [
          {
            id: "matrix-bridge-example",
            name: "Example Matrix Bridge",
            domain: "matrix.bridge.example",
            secret: "provider-secret",
          },
        ]
      : (JSON.parse(env.SIM_PROVIDERS) as EnlistedProvider[]);
  const sim = await startSimulator({
    mode: env.SIM_MODE === "external" ? "external" : "embedded",
    providers,
    dataDir: env.SIM_DATA_DIR ?? "./simulator-data",
    componentPort: Number(env.SIM_COMPONENT_PORT ?? 5347),
    ...(env.SIM_XMPP_SERVICE === undefined ? {} : { externalService: env.SIM_XMPP_SERVICE }),
    media: { port: Number(env.SIM_MEDIA_PORT ?? 0) },
    admin: { port: Number(env.SIM_ADMIN_PORT ?? 8090), token, web: env.SIM_WEB === "1" },
    ...(env.SIM_LIMITS === undefined ? {} : { limits: JSON.parse(env.SIM_LIMITS) as never }),
    ...(env.SIM_SERVER_STANZA_LIMIT === undefined
      ? {}
      : { serverStanzaLimitBytes: Number(env.SIM_SERVER_STANZA_LIMIT) }),
    logger: log,
  });
  log.info(
    { xmpp: sim.service, admin: sim.admin?.url, media: sim.media?.origin },
    "gatekeeper simulator ready",
  );
  // The token was given by whoever started this process; the address alone is enough here.
  if (env.SIM_WEB === "1") log.info({ page: `${sim.admin?.url}/#token=` }, "simulator page");
  const shutdown = (): void => {
    sim.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err: describeError(err) }, "stop failed");
        process.exit(1);
      },
    );
  };
  process.once("SIGINT", shutdown);
  process.once("SIGTERM", shutdown);
}

main().catch((err: unknown) => {
  process.stderr.write(`simulator failed to start: ${describeError(err)}\n`);
  process.exitCode = 1;
});
