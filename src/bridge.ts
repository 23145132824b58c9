import type { Config } from "./config/schema.js";
import type { Registration } from "./config/registration.js";
import { checkWritable, openDatabase, storageStartupError, type Database } from "./db/database.js";
import { migrateToLatest } from "./db/migrate.js";
import { VaultKeyMismatchError, VaultKeyMissingError } from "./vault/errors.js";
import { openKeyVault, type KeyVault } from "./vault/key-vault.js";
import { startMatrixSide, type MatrixSide } from "./matrix/appservice.js";
import { BridgeCore } from "./core/bridge-core.js";
import type { CoreCallbacks, NetworkConnector, NetworkDescription } from "./core/network.js";
import type { MatrixApi } from "./core/matrix-api.js";
import type { HealthPort } from "./core/ports.js";
import { UnavailableConnector } from "./core/unavailable-connector.js";
import { PortalsTable } from "./db/portals.js";
import { ProcessedEventsTable } from "./db/processed-events.js";
import { UsersTable } from "./db/users.js";
import { IntentMatrixApi } from "./matrix/gateway.js";
import { closeHomeserverPools } from "./matrix/http.js";
import { MatrixEventRouter } from "./matrix/router.js";
import {
  MatrixIngress,
  MatrixInboxTable,
  type IngressHooks,
  type IngressPolicy,
} from "./matrix/ingress/index.js";
import { SqlRunner } from "./db/sql.js";
import { RoomCrypto } from "./matrix/crypto/room-crypto.js";
import { isConnectionHealthReporting } from "./core/network.js";
import { BridgeMetrics, startMetricsServer, type MetricsServer } from "./metrics/index.js";
import {
  databaseCheck,
  gatekeeperCheck,
  homeserverCheck,
  loginsCheck,
} from "./metrics/readiness.js";
import { ProvisioningApi, ProvisioningAuth } from "./provisioning/index.js";
import { StartupError, describeError } from "./util/errors.js";
import { retainHeapCompaction } from "./util/heap-compaction.js";
import type { Logger } from "./util/log.js";

export interface BridgeOptions {
  config: Config;
  registration: Registration;
  port: number;
  log: Logger;
  /**
   * Builds the network connector with the core as its callbacks. Without it the bridge runs with
   * no network: the bot answers, and `login` explains that no WhatsApp connection is configured.
   */
  createConnector?: (
    callbacks: CoreCallbacks,
    deps: { db: Database; vault: KeyVault; log: Logger },
  ) => NetworkConnector;
  /**
   * The configured network's self-description (what `createConnector`'s connector will describe),
   * for what the Matrix side answers before the connector exists: the third-party lookups.
   */
  network?: NetworkDescription;
  /** The registration's file, and what to call when the homeserver rejects its as_token. */
  registrationFile?: string;
  onFatal?: (err: Error) => void;
  /** The clock of the per-user limits; the system's by default (tests move it). */
  now?: () => number;
  /** Matrix-side encryption's hooks into the ingress (#12); none by default. */
  ingressHooks?: IngressHooks;
  /** Retry bound and backoff of Matrix events failing transiently (tests shorten them). */
  ingressPolicy?: Partial<IngressPolicy>;
}

/** How often handled Matrix event ids older than their retention are deleted. */
const PRUNE_INTERVAL_MS = 60 * 60 * 1000;

export interface RunningBridge {
  readonly db: Database;
  readonly core: BridgeCore;
  /** The core's MatrixApi on the appservice's intents (tests drive it directly). */
  readonly matrixApi: MatrixApi;
  readonly vault: KeyVault;
  readonly port: number;
  /** Matrix-side encryption, when matrix_encryption.allow is on. */
  readonly matrixCrypto: RoomCrypto | undefined;
  /** The metrics listener's port, when `metrics.enabled`. */
  readonly metricsPort: number | undefined;
  /** Stops accepting work, lets in-flight work finish, closes connections and the database. */
  stop(): Promise<void>;
}

/**
 * Wires and starts the bridge: database (migrated to the latest schema), then the appservice
 * listener. A failure at any step undoes the steps before it and rethrows, so a failed start
 * leaves nothing open.
 */
export async function startBridge(options: BridgeOptions): Promise<RunningBridge> {
  const { config, log } = options;
  const db = await openDatabase({
    type: config.database.type,
    uri: config.database.uri,
    maxConnections: config.database.max_connections,
  });
  let matrix: MatrixSide | undefined;
  let vault: KeyVault | undefined;
  let core: BridgeCore | undefined;
  let metricsServer: MetricsServer | undefined;
  let ingress: MatrixIngress | undefined;
  let openedMatrixApi: IntentMatrixApi | undefined;
  const inbox = new MatrixInboxTable(SqlRunner.of(db.knex));
  let crypto: RoomCrypto | undefined;
  const processed = new ProcessedEventsTable(db.knex);
  const metrics = config.metrics.enabled ? new BridgeMetrics() : undefined;
  metrics?.observeDatabase(db.knex);
  try {
    let applied: string[];
    try {
      ({ applied } = await migrateToLatest(db.knex));
      await checkWritable(db);
    } catch (err) {
      // A read-only or full database is an operator's matter, not a bug: one clear line.
      throw storageStartupError(err, db.type) ?? err;
    }
    log.info(
      { backend: db.type, applied: applied.length },
      applied.length > 0 ? "database migrated" : "database schema is current",
    );
    vault = await openVault(config, db);
    matrix = await startMatrixSide({
      config,
      registration: options.registration,
      port: options.port,
      log: log.child({ component: "matrix" }),
      ...(options.registrationFile === undefined
        ? {}
        : { registrationFile: options.registrationFile }),
      ...(options.onFatal === undefined ? {} : { onFatal: options.onFatal }),
      ...(options.network === undefined ? {} : { network: options.network }),
      readiness: [
        databaseCheck(db.knex),
        gatekeeperCheck(() => core?.health.connector),
        homeserverCheck(config.homeserver.url),
        loginsCheck(() => core?.health.failedLogins()),
      ],
    });
    const openedVault = vault;
    if (config.matrix_encryption.allow) {
      crypto = await RoomCrypto.start({
        knex: db.knex,
        vault,
        config: config.matrix_encryption,
        homeserverUrl: config.homeserver.url,
        asToken: options.registration.as_token,
        botUserId: matrix.bridge.getBot().getUserId(),
        log: log.child({ component: "matrix-crypto" }),
      });
    }
    const matrixApi = new IntentMatrixApi({
      bridge: matrix.bridge,
      domain: config.homeserver.domain,
      // The Matrix side bounds media by the network's limit. The key stays under `interop`, where
      // existing config files have it: the interop connector is the network this wiring runs.
      mediaMaxBytes: config.interop.media_max_bytes,
      log: log.child({ component: "matrix-api" }),
      encryptor: crypto,
    });
    openedMatrixApi = matrixApi;
    core = new BridgeCore({
      config,
      knex: db.knex,
      matrix: matrixApi,
      createConnector: (callbacks) =>
        options.createConnector?.(callbacks, {
          db,
          vault: openedVault,
          log: log.child({ component: "network" }),
        }) ?? new UnavailableConnector(),
      log: log.child({ component: "core" }),
      ...(metrics === undefined ? {} : { observer: metrics }),
      ...(options.now === undefined ? {} : { now: options.now }),
    });
    await core.start();
    if (metrics !== undefined) {
      metrics.setSources({
        ...scrapeSources(db, core.network.id, core.health),
        deadLetters: () => inbox.countDead(),
      });
      metricsServer = await startMetricsServer(metrics, {
        bindAddress: config.metrics.bind_address,
        port: config.metrics.port,
        log: log.child({ component: "metrics" }),
      });
    }
    const router = new MatrixEventRouter({
      core: core.router,
      processed,
      openMedia: matrixApi.openMedia,
      log: log.child({ component: "router" }),
      decryptor: crypto,
    });
    if (config.provisioning.enabled) {
      const auth = new ProvisioningAuth({
        sharedSecret: config.provisioning.shared_secret,
        homeserverUrl: config.homeserver.url,
        isBridgeUser: (user) => startedCore.isOwnUser(user),
      });
      new ProvisioningApi(core.provisioning, auth, log.child({ component: "provisioning" })).mount(
        matrix.app,
        config.provisioning.prefix,
      );
    }
    matrix.answerUnknownPaths();
    const startedMatrix = matrix;
    const startedCore = core;
    const cryptoForIngress = crypto;
    // RoomCrypto takes the transaction's encryption extensions before anything is recorded;
    // decryption happens in the room worker, through the router (its EventDecryptor).
    // Hooks a caller (a test) gives run after RoomCrypto's, never instead of it.
    const given = options.ingressHooks;
    const ingressHooks: IngressHooks | undefined =
      cryptoForIngress === undefined
        ? given
        : {
            receiveTransactionExtras: async (txn) => {
              await cryptoForIngress.receiveTransactionExtras(txn);
              await given?.receiveTransactionExtras(txn);
            },
            decrypt: (event) => given?.decrypt(event) ?? Promise.resolve(event),
          };
    ingress = new MatrixIngress({
      inbox,
      isOwnUser: (user) => startedCore.isOwnUser(user),
      route: (event, attempt) => router.route(event, attempt),
      ephemeral: (event) => router.handleEphemeral(event),
      notify: async (room, text, replyTo) => {
        await matrixApi.sendNotice(room, text, replyTo);
      },
      log: log.child({ component: "ingress" }),
      ...(ingressHooks === undefined ? {} : { hooks: ingressHooks }),
      ...(options.ingressPolicy === undefined ? {} : { policy: options.ingressPolicy }),
      ...(metrics === undefined ? {} : { observer: metrics }),
    });
    const startedIngress = ingress;
    core.attachDeadLetters({
      list: async (limit) =>
        (await startedIngress.deadLetters(limit)).map((row) => ({
          id: row.seq,
          room: row.roomId,
          eventId: row.eventId,
          attempts: row.attempts,
          error: row.error ?? "unknown",
          receivedAt: row.receivedAt,
        })),
      retry: (id) => startedIngress.retryDeadLetters(id),
    });
    await ingress.start();
    let profileSet = false;
    const startedCrypto = crypto;
    matrix.setTransactionHandler(async (txn) => {
      // Keys and device data first (the ingress's receiveTransactionExtras hook, RoomCrypto),
      // persisted before the 200; then the events, recorded, and decrypted by their room worker.
      await startedIngress.receive(txn);
      // A homeserver that pushes is up: set the bot's profile then, not at start-up, where an
      // unreachable homeserver must not stop the bridge. The bot's encryption device follows
      // (it needs the bot registered), so users' clients share their room keys with it.
      if (!profileSet) {
        profileSet = true;
        void setUpBotProfile(startedMatrix, config, log)
          .then(async (ok) => {
            if (!ok) profileSet = false;
            else await startedCrypto?.ensureBotDevice();
          })
          .catch((err: unknown) => {
            profileSet = false;
            log.warn({ err: describeError(err) }, "the bot's encryption device is not ready yet");
          });
      }
    });
    log.info(
      { address: config.appservice.bind_address, port: options.port },
      "appservice listener ready",
    );
  } catch (err) {
    await ingress?.stop().catch(() => undefined);
    await metricsServer?.stop().catch(() => undefined);
    await core?.stop().catch(() => undefined);
    await matrix?.stop().catch(() => undefined);
    await crypto?.stop().catch(() => undefined);
    await db.close().catch(() => undefined);
    throw err;
  }
  const started = matrix;
  const startedCore = core;
  const startedMetrics = metricsServer;
  const startedIngress = ingress;
  const startedMatrixApi = openedMatrixApi;
  const runningCrypto = crypto;
  const pruning = setInterval(() => {
    Promise.all([processed.prune(), inbox.prune()]).catch((err: unknown) => {
      log.warn({ err: describeError(err) }, "pruning handled event ids failed");
    });
  }, PRUNE_INTERVAL_MS);
  pruning.unref();
  // What start-up left committed to the heap is given back once the bridge is idle.
  const releaseCompaction = retainHeapCompaction(log.child({ component: "memory" }));
  return {
    db,
    core: startedCore,
    matrixApi: startedMatrixApi,
    vault,
    port: options.port,
    matrixCrypto: runningCrypto,
    metricsPort: startedMetrics?.port,
    async stop() {
      log.info("stopping");
      clearInterval(pruning);
      releaseCompaction();
      await startedMetrics?.stop();
      await started.stop().catch((err: unknown) => {
        log.warn({ err: describeError(err) }, "appservice listener did not stop cleanly");
      });
      // Unfinished events stay recorded and are handled after the next start; requests still
      // retrying in place give up now rather than hold the stop.
      await startedMatrixApi?.close();
      await startedIngress?.stop();
      await startedCore.stop();
      await runningCrypto?.stop().catch((err: unknown) => {
        log.warn({ err: describeError(err) }, "the crypto store did not stop cleanly");
      });
      // The keep-alive homeserver connections of event sends (src/matrix/http.ts).
      await closeHomeserverPools().catch(() => undefined);
      await db.close();
      log.info("stopped");
    },
  };
}

/**
 * Figures read at scrape time: from the connector's queues and state, and from the tables (the
 * network's rows only, like the core's own reads).
 */
function scrapeSources(db: Database, network: string, health: HealthPort) {
  const users = new UsersTable(db.knex, network);
  const portals = new PortalsTable(db.knex, network);
  const connector = health.connector;
  const depths = isConnectionHealthReporting(connector) ? () => connector.queueDepths() : undefined;
  return {
    outboxDepth: async () => (depths === undefined ? 0 : (await depths()).outbox),
    inboxDepth: async () => (depths === undefined ? 0 : (await depths()).inbox),
    usersLoggedIn: () => users.countLoggedIn(),
    portals: () => portals.countWithRoom(),
    loginsFailed: () => health.failedLogins(),
    gatekeeper: () =>
      isConnectionHealthReporting(connector) ? connector.connectionHealth() : undefined,
  };
}

/**
 * The bot's name and avatar from the config. Best effort: resolves false when the homeserver
 * refused, so that the next transaction tries again.
 */
async function setUpBotProfile(matrix: MatrixSide, config: Config, log: Logger): Promise<boolean> {
  try {
    const intent = matrix.bridge.getIntent();
    await intent.ensureRegistered();
    await intent.setDisplayName(config.appservice.bot.display_name);
    if (config.appservice.bot.avatar !== "") {
      await intent.setAvatarUrl(config.appservice.bot.avatar);
    }
    return true;
  } catch (err) {
    log.warn({ err: describeError(err) }, "could not set the bot's profile on the homeserver");
    return false;
  }
}

/**
 * The key that encrypts private keys at rest. Without it (or with another one than the database
 * was written with) the bridge cannot use any stored session, so the start stops here with a line
 * that says what to do.
 */
async function openVault(config: Config, db: Database): Promise<KeyVault> {
  const { key_env: envVar, key_file: keyFile } = config.encryption;
  const source = envVar === "" ? { keyFile } : { envVar };
  const where = envVar === "" ? `encryption.key_file (${keyFile})` : `$${envVar}`;
  try {
    return await openKeyVault(db.knex, source);
  } catch (err) {
    if (err instanceof VaultKeyMissingError) {
      throw new StartupError(
        "encryption-key-missing",
        `no usable encryption key in ${where}: ${err.message}; create one with ` +
          "`matrix-whatsapp-interop generate-key -f <file>` (or `init`)",
        err,
      );
    }
    if (err instanceof VaultKeyMismatchError) {
      throw new StartupError(
        "encryption-key-wrong",
        `the encryption key in ${where} is not the one this database was written with: ${err.message}`,
        err,
      );
    }
    throw err;
  }
}
