import { AppServiceRegistration, Bridge } from "matrix-appservice-bridge";
import type { Config } from "../config/schema.js";
import type { Registration } from "../cli/registration.js";
import { StartupError, describeError } from "../util/errors.js";
import type { Logger } from "../util/log.js";
import { routeLibraryLogs } from "./library-logs.js";
import { TransactionalAppService, type TransactionHandler } from "./transactions.js";

/** Readiness of one dependency, for /ready and, later, for metrics. */
export type ReadinessCheck = () => Promise<{ name: string; ok: boolean; detail?: string }>;

export interface MatrixSideOptions {
  config: Config;
  registration: Registration;
  port: number;
  log: Logger;
  readiness: ReadinessCheck[];
}

export interface MatrixSide {
  readonly bridge: Bridge;
  /**
   * The listener's express app, for further APIs on the same port (provisioning). Their routes
   * do their own authentication: the hs_token guards only the appservice API.
   */
  readonly app: TransactionalAppService["expressApp"];
  /**
   * Starts handing transactions to `handler`. Until then transactions are answered with an error,
   * so the homeserver keeps them and retries: nothing pushed before the bridge is ready is lost.
   */
  setTransactionHandler(handler: TransactionHandler): void;
  stop(): Promise<void>;
}

/**
 * Starts the appservice listener: the transaction endpoints of matrix-appservice-bridge (both the
 * legacy and the /_matrix/app/v1 paths) plus /health (liveness) and /ready (readiness).
 */
export async function startMatrixSide(options: MatrixSideOptions): Promise<MatrixSide> {
  const { config, registration, log } = options;
  routeLibraryLogs(log);
  const appService = new TransactionalAppService(registration.hs_token, log);
  appService.expressApp.get("/health", (_req, res) => {
    res.status(200).json({ status: "ok" });
  });
  appService.expressApp.get("/ready", (_req, res) => {
    void Promise.all(options.readiness.map((check) => check().catch(failedCheck))).then(
      (checks) => {
        const ready = checks.every((check) => check.ok);
        res.status(ready ? 200 : 503).json({ ready, checks });
      },
    );
  });
  const bridge = new Bridge({
    homeserverUrl: config.homeserver.url,
    domain: config.homeserver.domain,
    registration: registrationForLibrary(registration),
    disableStores: true,
    suppressEcho: true,
    controller: {
      // Transactions go to the TransactionalAppService's handler, never through the library's
      // event queue (which acknowledges before handling).
      onEvent: (request) => {
        request.resolve(undefined);
      },
    },
  });
  await bridge.initialise();
  try {
    await bridge.listen(options.port, config.appservice.bind_address, 10, appService);
  } catch (err) {
    await bridge.close().catch(() => undefined);
    throw new StartupError(
      "port-unusable",
      `cannot listen on ${config.appservice.bind_address}:${options.port}: ${describeError(err)}`,
      err,
    );
  }
  log.debug(
    { address: config.appservice.bind_address, port: options.port },
    "appservice listener bound; transactions wait for the bridge to be ready",
  );
  return {
    bridge,
    app: appService.expressApp,
    setTransactionHandler: (handler) => appService.setTransactionHandler(handler),
    async stop() {
      await appService.close().catch(() => undefined);
      await appService.drain();
      await bridge.close().catch(() => undefined);
    },
  };
}

function failedCheck(err: unknown) {
  return { name: "unknown", ok: false, detail: describeError(err) };
}

/** matrix-appservice-bridge takes the registration as its own class, parsed from the same shape. */
function registrationForLibrary(registration: Registration): AppServiceRegistration {
  const parsed = AppServiceRegistration.fromObject(
    registration as unknown as Parameters<typeof AppServiceRegistration.fromObject>[0],
  );
  if (parsed === null) {
    throw new StartupError(
      "registration-invalid",
      "the registration file is not a valid registration",
    );
  }
  return parsed;
}
