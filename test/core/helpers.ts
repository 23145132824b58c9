import { BridgeCore } from "../../src/core/bridge-core.js";
import { configSchema, type Config } from "../../src/config/schema.js";
import type { DatabaseType } from "../../src/db/database.js";
import { matrixUserId, roomId, type MatrixUserId, type RoomId } from "../../src/util/ids.js";
import { silentLogger, type Logger } from "../../src/util/log.js";
import { coreTables, type CoreTables } from "../helpers/core-tables.js";
import { createTestDatabase, type TestDatabase } from "../helpers/db.js";
import { FakeMatrix } from "./fakes/matrix.js";
import { FakeNetwork } from "./fakes/network.js";
import type { NetworkConnector } from "../../src/core/network.js";

export const ALICE = matrixUserId("@alice:example.org");
export const ADMIN = matrixUserId("@boss:example.org");
export const STRANGER = matrixUserId("@eve:elsewhere.example");
export const MGMT = roomId("!mgmt:example.org");

export function testConfig(overrides: Record<string, unknown> = {}): Config {
  return configSchema.parse({
    homeserver: { url: "http://localhost:8008", domain: "example.org" },
    permissions: { "*": "none", "example.org": "user", "@boss:example.org": "admin" },
    ...overrides,
  });
}

export interface CoreHarness {
  core: BridgeCore;
  /** The config the core was built with. */
  config: Config;
  /** The core's tables, to read what it stored (helpers/core-tables.ts). */
  tables: CoreTables;
  matrix: FakeMatrix;
  network: FakeNetwork;
  db: TestDatabase;
  /** Sends a line in the user's management room and returns the bot's answers to it. */
  say(text: string, user?: MatrixUserId, room?: RoomId): Promise<string[]>;
  dispose(): Promise<void>;
}

/**
 * A second core on the harness's database, homeserver and network, started: what a restart of
 * the bridge finds (stored logins loaded again, or failing to).
 */
export async function restartedCore(
  h: Pick<CoreHarness, "config" | "db" | "matrix"> & { network: NetworkConnector },
  loginRetry?: { initialMs: number; maxMs: number },
): Promise<BridgeCore> {
  const again = new BridgeCore({
    config: h.config,
    knex: h.db.db.knex,
    matrix: h.matrix,
    createConnector: () => h.network,
    log: silentLogger(),
    ...(loginRetry === undefined ? {} : { loginRetry }),
  });
  await again.start();
  return again;
}

/** The core on a fresh database (SQLite unless told) with a fake homeserver API and a fake network. */
export async function createCore(
  config: Config = testConfig(),
  log: Logger = silentLogger(),
  backend: DatabaseType = "sqlite",
): Promise<CoreHarness> {
  const db = await createTestDatabase(backend, { reuse: true });
  const matrix = new FakeMatrix();
  const network = new FakeNetwork();
  const core = new BridgeCore({
    config,
    knex: db.db.knex,
    matrix,
    createConnector: (callbacks) => {
      network.callbacks = callbacks;
      return network;
    },
    log,
  });
  await core.start();
  return {
    core,
    config,
    tables: coreTables(db.db.knex, core.network.id),
    matrix,
    network,
    db,
    async say(text, user = ALICE, room = MGMT) {
      const before = matrix.notices(room).length;
      await core.handleManagementMessage(user, room, text);
      return matrix.notices(room).slice(before);
    },
    async dispose() {
      await core.stop();
      await db.dispose();
    },
  };
}

/** Logs ALICE in with the phone flow: warning, number, code. */
export async function logIn(h: CoreHarness, phone = "+491709876543"): Promise<void> {
  await h.core.onBotInvited(ALICE, MGMT);
  await h.say("login");
  await h.say("phone");
  await h.say(phone);
  await h.say("123456");
}
