import { AppServiceRegistration, Bridge } from "matrix-appservice-bridge";
import type { Config } from "../config/schema.js";
import type { Registration } from "../config/registration.js";
import type { NetworkDescription } from "../core/network.js";
import { StartupError, describeError } from "../util/errors.js";
import type { Logger } from "../util/log.js";
import { HomeserverAccessCheck } from "./homeserver-access.js";
import { HomeserverReachCheck } from "./homeserver-reach.js";
import { routeLibraryLogs } from "./library-logs.js";
import { mountThirdPartyRoutes } from "./thirdparty.js";
import type { ReadinessCheck } from "../util/readiness.js";
import { TransactionalAppService, type TransactionHandler } from "./transactions.js";

// Defined in util/ so that metrics/ (which builds most checks) need not import the Matrix side.
export type { ReadinessCheck } from "../util/readiness.js";

interface MatrixSideOptions {
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
  /**
   * Answers every path no route took with a JSON 404 `M_UNRECOGNIZED` (the spec's answer for an
   * unknown endpoint, which homeservers act on), not express's HTML page. Called once, after the
   * last route is mounted: routes added later would never be reached.
   */
  answerUnknownPaths(): void;
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
  const reach = new HomeserverReachCheck({
    homeserverUrl: config.homeserver.url,
    asToken: registration.as_token,
    appserviceId: registration.id,
    registrationUrl: registration.url,
    listening: `${config.appservice.bind_address}:${options.port}`,
    log,
    ...(options.accessRetryMs === undefined
      ? {}
      : { retryInitialMs: options.accessRetryMs.initial, retryMaxMs: options.accessRetryMs.max }),
  });
  const readiness: ReadinessCheck[] = [
    ...options.readiness,
    accessReadiness(access),
    reachReadiness(reach),
  ];
  // The homeserver's half of the appservice ping (spec v1.7): the start-up check below asks the
  // homeserver to call it. The hs_token guard in front of every /_matrix/app path applies.
  appService.expressApp.post("/_matrix/app/v1/ping", (_req, res) => {
    res.status(200).json({});
  });
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
    else reach.start();
  });
  log.debug(
    { address: config.appservice.bind_address, port: options.port },
    "appservice listener bound; transactions wait for the bridge to be ready",
  );
  return {
    bridge,
    app: appService.expressApp,
    setTransactionHandler: (handler) => appService.setTransactionHandler(handler),
    answerUnknownPaths: () => answerUnknownPaths(appService.expressApp),
    async stop() {
      access.stop();
      reach.stop();
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

/**
 * Failing only when the homeserver tried to reach the bridge and could not: not yet asked, or a
 * homeserver without the ping, passes (with a detail), since nothing says the bridge is cut off.
 */
function reachReadiness(reach: HomeserverReachCheck): ReadinessCheck {
  return () => {
    const current = reach.state;
    const name = "homeserver-reaches-bridge";
    switch (current.state) {
      case "reached":
        return Promise.resolve({ name, ok: true });
      case "unreachable":
        return Promise.resolve({ name, ok: false, detail: current.detail });
      default:
        return Promise.resolve({ name, ok: true, detail: current.detail });
    }
  };
}

function answerUnknownPaths(app: MatrixSide["app"]): void {
  app.use((_req, res) => {
    res.status(404).json({ errcode: "M_UNRECOGNIZED", error: "Unrecognized request" });
  });
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
