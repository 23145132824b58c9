import type { Config } from "./config/schema.js";
import type { Registration } from "./cli/registration.js";
import { openDatabase, type Database } from "./db/database.js";
import { migrateToLatest } from "./db/migrate.js";
import {
  openKeyVault,
  VaultKeyMismatchError,
  VaultKeyMissingError,
} from "./interop/crypto/index.js";
import type { KeyVault } from "./interop/crypto/index.js";
import { startMatrixSide, type MatrixSide } from "./matrix/appservice.js";
import { StartupError, describeError } from "./util/errors.js";
import type { Logger } from "./util/log.js";

export interface BridgeOptions {
  config: Config;
  registration: Registration;
  port: number;
  log: Logger;
}

export interface RunningBridge {
  readonly db: Database;
  readonly vault: KeyVault;
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
  let vault: KeyVault | undefined;
  try {
    const { applied } = await migrateToLatest(db.knex);
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
    vault,
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
