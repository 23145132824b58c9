import type { Config } from "./config/schema.js";
import type { Registration } from "./cli/registration.js";
import { openDatabase, type Database } from "./db/database.js";
import { migrateToLatest } from "./db/migrate.js";
import { startMatrixSide, type MatrixSide } from "./matrix/appservice.js";
import { describeError } from "./util/errors.js";
import type { Logger } from "./util/log.js";

export interface BridgeOptions {
  config: Config;
  registration: Registration;
  port: number;
  log: Logger;
}

export interface RunningBridge {
  readonly db: Database;
  readonly port: number;
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
  try {
    const { applied } = await migrateToLatest(db.knex);
    log.info(
      { backend: db.type, applied: applied.length },
      applied.length > 0 ? "database migrated" : "database schema is current",
    );
    matrix = await startMatrixSide({
      config,
      registration: options.registration,
      port: options.port,
      log: log.child({ component: "matrix" }),
      readiness: [
        async () => {
          await db.knex.raw("select 1");
          return { name: "database", ok: true };
        },
      ],
      onEvent: async (event) => {
        // The portal and command layers are not wired in yet (see README, feature status).
        log.debug({ eventId: event.event_id, type: event.type }, "matrix event received");
      },
    });
  } catch (err) {
    await matrix?.stop().catch(() => undefined);
    await db.close().catch(() => undefined);
    throw err;
  }
  const started = matrix;
  return {
    db,
    port: options.port,
    async stop() {
      log.info("stopping");
      await started.stop().catch((err: unknown) => {
        log.warn({ err: describeError(err) }, "appservice listener did not stop cleanly");
      });
      await db.close();
      log.info("stopped");
    },
  };
}
