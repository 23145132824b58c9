import type { Server } from "node:http";
import { silentLogger, type Logger } from "../../src/util/log.js";
import { HomeserverCore } from "./core.js";
import { dumpRoom, type RoomDump } from "./inspect.js";
import { registerMediaRoutes } from "./media/routes.js";
import { registerAccountRoutes } from "./routes/account.js";
import { registerUserRoutes } from "./routes/user.js";
import { registerAppserviceAndSyncRoutes } from "./routes/appservice.js";
import { registerDeviceRoutes } from "./routes/devices.js";
import { registerDirectoryRoutes } from "./routes/directory.js";
import { registerEphemeralRoutes } from "./routes/ephemeral.js";
import { registerKeyRoutes } from "./routes/keys.js";
import { registerMembershipRoutes } from "./routes/membership.js";
import { registerProfileRoutes } from "./routes/profile.js";
import { registerRoomEventRoutes } from "./routes/roomEvents.js";
import { RouteContext, serverUrl, startHttpServer } from "./server.js";
import type {
  AppserviceRegistration,
  HomeserverProfile,
  Outage,
  ClientFaultInjector,
  PushFault,
  PushFaultInjector,
  RoomEvent,
  EphemeralEvent,
  JsonObject,
} from "./types.js";

export type {
  AppserviceRegistration,
  ClientFault,
  ClientFaultInjector,
  ClientRequest,
  HomeserverProfile,
  Outage,
  PushAttempt,
  PushFault,
  PushFaultInjector,
} from "./types.js";
export type { HomeserverCore } from "./core.js";
export type { RoomDump, StoredMedia } from "./inspect.js";

export interface TestHomeserverOptions {
  serverName?: string;
  /** Which homeserver to imitate where they differ; default `spec`. */
  profile?: HomeserverProfile;
  appservices?: readonly AppserviceRegistration[];
  host?: string;
  /** 0 (the default) picks a free port. */
  port?: number;
  /** Largest accepted upload; default 50 MiB. Larger ones answer 413 M_TOO_LARGE. */
  maxUploadBytes?: number;
  /** How long one push to an appservice may take before it counts as failed; default 5 s. */
  pushTimeoutMs?: number;
  /** First retry delay of a failed push, doubled per attempt up to `retryMaxMs`; default 100 ms. */
  retryInitialMs?: number;
  retryMaxMs?: number;
  /**
   * Whether appservice transactions carry to-device events (MSC2409) and device lists, one-time
   * key counts and unused fallback key types (MSC3202) for registrations that ask for them, as
   * Synapse with its `experimental_features` does. Default true; false imitates a homeserver
   * without them, where a bridge must /sync as its devices instead.
   */
  appserviceCryptoPushes?: boolean;
  /** Make legacy unauthenticated downloads answer 404, as a Synapse with frozen legacy media. */
  freezeLegacyMedia?: boolean;
  logger?: Logger;
}

export interface RegisteredUser {
  userId: string;
  accessToken: string;
  deviceId: string;
}

export interface DeliveredTransaction {
  txnId: string;
  events: RoomEvent[];
  ephemeral: EphemeralEvent[];
  /** MSC2409 to-device events it carried. */
  toDevice: JsonObject[];
  /** The body as pushed, extensions (MSC2409/MSC3202 keys) included. */
  body: JsonObject;
}

export interface TestHomeserver {
  /** Base URL (`http://127.0.0.1:port`); only valid after start(). */
  readonly url: string;
  readonly serverName: string;
  readonly profile: HomeserverProfile;
  /** The server's state, for assertions a client could not make. */
  readonly core: HomeserverCore;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Registers a password user and logs it in on a new device. */
  registerUser(localpart: string, password?: string): RegisteredUser;
  /**
   * Fault injection for pushes to appservices: `injector` decides per attempt (500, 429, timeout,
   * lost acknowledgement); undefined removes it. Returns a function that removes it too.
   */
  failAppservicePushes(injector: PushFaultInjector | undefined): () => void;
  /**
   * Plays dead until the returned function is called (or `outage(undefined)`): every request is
   * answered 500 (or `status`), or dropped with `{ unreachable: true }`; pushes wait. Events
   * created meanwhile (none can be, except by the server itself) are pushed afterwards.
   */
  outage(outage: Outage | undefined): () => void;
  /**
   * Fault injection for client-server and media requests (the bridge's calls): `injector` decides
   * per request whether to answer 500 or 429 instead of handling it; undefined removes it. Returns
   * a function that removes it too. A faulted request has no effect on the server's state.
   */
  failClientRequests(injector: ClientFaultInjector | undefined): () => void;
  /** Resolves once every event queued for the appservice has been acknowledged by it. */
  appserviceIdle(appserviceId: string): Promise<void>;
  /** Transactions the appservice acknowledged, in order. */
  deliveredTransactions(appserviceId: string): readonly DeliveredTransaction[];
  /**
   * Everything stored that relates to a room (events, state, to-device messages of its members,
   * their uploads), as strings and bytes, for scanning for plaintext (see inspect.ts).
   */
  inspectRoom(roomId: string): RoomDump;
}

/** Fails the first `count` push attempts (of any transaction) with `fault`, then delivers normally. */
export function failFirstPushes(count: number, fault: PushFault): PushFaultInjector {
  let remaining = count;
  return () => {
    if (remaining <= 0) return undefined;
    remaining -= 1;
    return fault;
  };
}

/** An in-process Matrix homeserver for the bridge's tests (see the README beside this file). */
export function createTestHomeserver(options: TestHomeserverOptions = {}): TestHomeserver {
  const logger = options.logger ?? silentLogger();
  const core = new HomeserverCore({
    serverName: options.serverName ?? "localhost",
    profile: options.profile ?? "spec",
    appservices: options.appservices ?? [],
    maxUploadBytes: options.maxUploadBytes ?? 50 * 1024 * 1024,
    pushTimeoutMs: options.pushTimeoutMs ?? 5000,
    retryInitialMs: options.retryInitialMs ?? 100,
    retryMaxMs: options.retryMaxMs ?? 5000,
    appserviceCryptoPushes: options.appserviceCryptoPushes ?? true,
    logger,
  });
  const ctx = new RouteContext(core);
  registerAccountRoutes(ctx);
  registerUserRoutes(ctx);
  registerMembershipRoutes(ctx);
  registerRoomEventRoutes(ctx);
  registerEphemeralRoutes(ctx);
  registerProfileRoutes(ctx);
  registerDirectoryRoutes(ctx);
  registerAppserviceAndSyncRoutes(ctx);
  registerKeyRoutes(ctx);
  registerDeviceRoutes(ctx);
  registerMediaRoutes(ctx, { freezeLegacyMedia: options.freezeLegacyMedia ?? false });

  let server: Server | undefined;
  const pusher = (id: string) => {
    const p = core.pushers.get(id);
    if (p === undefined) throw new Error(`No appservice ${id} is registered`);
    return p;
  };

  return {
    get url() {
      if (server === undefined) throw new Error("The test homeserver is not started");
      return serverUrl(server);
    },
    serverName: core.serverName,
    profile: core.profile,
    core,
    async start() {
      if (server !== undefined) return;
      server = await startHttpServer(ctx, {
        host: options.host ?? "127.0.0.1",
        port: options.port ?? 0,
        logger,
      });
    },
    async stop() {
      core.stop();
      const s = server;
      server = undefined;
      if (s === undefined) return;
      await new Promise<void>((resolve) => {
        s.close(() => resolve());
        s.closeAllConnections();
      });
    },
    registerUser(localpart, password = "password") {
      const user = core.users.create(localpart, { password });
      const session = core.startSession(user.userId);
      return { userId: user.userId, accessToken: session.accessToken, deviceId: session.deviceId };
    },
    failAppservicePushes(injector) {
      core.faultInjector = injector;
      return () => {
        if (core.faultInjector === injector) core.faultInjector = undefined;
      };
    },
    outage(outage) {
      core.outage = outage;
      return () => {
        if (core.outage === outage) core.outage = undefined;
      };
    },
    failClientRequests(injector) {
      core.clientFaultInjector = injector;
      return () => {
        if (core.clientFaultInjector === injector) core.clientFaultInjector = undefined;
      };
    },
    appserviceIdle: (id) => pusher(id).whenIdle(),
    deliveredTransactions: (id) => pusher(id).delivered,
    inspectRoom: (roomId) => dumpRoom(core, roomId),
  };
}
