import { AppServiceRegistration, Bridge } from "matrix-appservice-bridge";
import type { Config } from "../config/schema.js";
import type { Registration } from "../config/registration.js";
import type { NetworkDescription } from "../core/network.js";
import { StartupError, describeError } from "../util/errors.js";
import type { Logger } from "../util/log.js";
import { HomeserverAccessCheck } from "./homeserver-access.js";
import { routeLibraryLogs } from "./library-logs.js";
import { mountThirdPartyRoutes } from "./thirdparty.js";
import type { ReadinessCheck } from "../util/readiness.js";
import { TransactionalAppService, type TransactionHandler } from "./transactions.js";

// Defined in util/ so that metrics/ (which builds most checks) need not import the Matrix side.
export type { ReadinessCheck } from "../util/readiness.js";

export interface MatrixSideOptions {
  config: Config;
  registration: Registration;
  port: number;
  log: Logger;
  readiness: ReadinessCheck[];
  /** The registration's file, named when the homeserver turns out not to have loaded it. */
  registrationFile?: string;
  /**
   * Called once when the bridge cannot work at all: the homeserver rejects the as_token. The
   * caller stops the bridge with the error's line.
   */
  onFatal?: (err: Error) => void;
  /** Backoff of the token check while the homeserver is unreachable (tests shorten it). */
  accessRetryMs?: { initial: number; max: number };
  /**
   * The configured network's self-description, for the third-party lookups (served before the
   * connector exists); without it the bridge serves none.
   */
  network?: NetworkDescription;
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
  const access = new HomeserverAccessCheck({
    homeserverUrl: config.homeserver.url,
    asToken: registration.as_token,
    botUserId: `@${registration.sender_localpart}:${config.homeserver.domain}`,
    registrationFile: options.registrationFile ?? "the registration file",
    log,
    ...(options.accessRetryMs === undefined
      ? {}
      : { retryInitialMs: options.accessRetryMs.initial, retryMaxMs: options.accessRetryMs.max }),
  });
  const readiness: ReadinessCheck[] = [...options.readiness, accessReadiness(access)];
  if (options.network !== undefined) {
    mountThirdPartyRoutes(appService.expressApp, config, options.network, (req, res) =>
      appService.refuseBadToken(req, res),
    );
  }
  appService.expressApp.get("/health", (_req, res) => {
    res.status(200).json({ status: "ok" });
  });
  appService.expressApp.get("/ready", (_req, res) => {
    void Promise.all(readiness.map((check) => check().catch(failedCheck))).then((checks) => {
      const ready = checks.every((check) => check.ok);
      res.status(ready ? 200 : 503).json({ ready, checks });
    });
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
  access.start();
  void access.done().then((state) => {
    if (state.state === "rejected") options.onFatal?.(state.error);
  });
  log.debug(
    { address: config.appservice.bind_address, port: options.port },
    "appservice listener bound; transactions wait for the bridge to be ready",
  );
  return {
    bridge,
    app: appService.expressApp,
    setTransactionHandler: (handler) => appService.setTransactionHandler(handler),
    async stop() {
      access.stop();
      await appService.close().catch(() => undefined);
      await appService.drain();
      await bridge.close().catch(() => undefined);
    },
  };
}

/** Not ready until the homeserver confirmed the as_token: nothing of the bot or ghosts works before. */
function accessReadiness(access: HomeserverAccessCheck): ReadinessCheck {
  return () => {
    const current = access.state;
    const name = "homeserver-appservice";
    if (current.state === "confirmed") return Promise.resolve({ name, ok: true });
    const detail =
      current.state === "rejected"
        ? current.error.message
        : `appservice token not confirmed yet: ${current.detail}`;
    return Promise.resolve({ name, ok: false, detail });
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
