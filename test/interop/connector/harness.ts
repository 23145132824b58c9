import type { Limits } from "../../../src/interop/codec/limits.js";
import type { CoreCallbacks, RemoteEvent } from "../../../src/core/network.js";
import { KeyVault } from "../../../src/vault/key-vault.js";
import { SignalCrypto } from "../../../src/interop/crypto/signal-crypto.js";
import {
  InteropConnector,
  type InteropConnectorOptions,
} from "../../../src/interop/connector/connector.js";
import { OFFERED_FEATURES } from "../../../src/interop/connector/factory.js";
import { ComponentConnection } from "../../../src/interop/transport/component.js";
import { startSimulator, type Simulator } from "../../../simulator/main.js";
import type { EnlistedProvider } from "../../../simulator/config.js";
import type { MatrixUserId } from "../../../src/util/ids.js";
import { silentLogger } from "../../../src/util/log.js";
import { createTestDatabase, type TestDatabase } from "../../helpers/db.js";
import { BRIDGE_DOMAIN, SECRETS } from "../provider/fake-gatekeeper.js";
import { FAST_TIMING, VAULT_KEY, eventually } from "../provider/world.js";

export { eventually };

/** The core as the connector sees it: records what was reported, or holds it back on purpose. */
export class RecordingCore implements CoreCallbacks {
  readonly reported: { user: MatrixUserId; event: RemoteEvent }[] = [];
  /** While set, `report` waits for it: the core has not durably handled the event yet. */
  gate: Promise<void> | undefined;

  async report(user: MatrixUserId, event: RemoteEvent): Promise<void> {
    if (this.gate !== undefined) await this.gate;
    this.reported.push({ user, event });
  }

  of<K extends RemoteEvent["kind"]>(kind: K): Extract<RemoteEvent, { kind: K }>[] {
    return this.reported
      .map((r) => r.event)
      .filter((e): e is Extract<RemoteEvent, { kind: K }> => e.kind === kind);
  }
}

export interface World {
  readonly sim: Simulator;
  readonly db: TestDatabase;
  readonly core: RecordingCore;
  readonly connector: InteropConnector;
  stop(): Promise<void>;
}

/** The gatekeeper simulator with the test bridge enlisted, on an in-memory database. */
export function startGatekeeper(
  limits: Partial<Limits> = {},
  otherProviders: readonly EnlistedProvider[] = [],
): Promise<Simulator> {
  return startSimulator({
    limits,
    providers: [
      {
        id: "matrix-bridge-example",
        name: "Example Matrix Bridge",
        domain: BRIDGE_DOMAIN,
        secret: SECRETS[BRIDGE_DOMAIN],
      },
      ...otherProviders,
    ],
    database: ":memory:",
    tickIntervalMs: 100,
  });
}

/** A connector (not started) to the simulator, with short engine times. */
export function buildConnector(
  sim: Simulator,
  db: TestDatabase,
  callbacks: CoreCallbacks,
): InteropConnector {
  return new InteropConnector(connectorOptions(sim, db, callbacks));
}

/** What `buildConnector` builds from: for a subclass of the connector (test/core/). */
export function connectorOptions(
  sim: Simulator,
  db: TestDatabase,
  callbacks: CoreCallbacks,
): InteropConnectorOptions {
  const vault = KeyVault.fromKey(VAULT_KEY);
  return {
    callbacks,
    log: silentLogger(),
    engine: {
      connection: new ComponentConnection({
        service: sim.service,
        domain: BRIDGE_DOMAIN,
        secret: SECRETS[BRIDGE_DOMAIN],
        reconnect: { initialDelayMs: 20, maxDelayMs: 200, random: () => 0.999 },
        connectTimeoutMs: 3000,
      }),
      knex: db.db.knex,
      crypto: new SignalCrypto({ knex: db.db.knex, vault }),
      vault,
      providerId: "matrix-bridge-example",
      features: OFFERED_FEATURES,
      timing: FAST_TIMING,
      allowInsecureMediaOnLoopback: true,
    },
  };
}

/** The gatekeeper simulator and a started connector over a fresh SQLite database. */
export async function startWorld(
  limits: Partial<Limits> = {},
  otherProviders: readonly EnlistedProvider[] = [],
  backend: "sqlite" | "postgres" = "sqlite",
): Promise<World> {
  const sim = await startGatekeeper(limits, otherProviders);
  const db = await createTestDatabase(backend);
  const core = new RecordingCore();
  const connector = buildConnector(sim, db, core);
  await connector.start();
  if (!(await connector.whenReady(8000))) throw new Error("the engine never became ready");
  return {
    sim,
    db,
    core,
    connector,
    async stop() {
      await connector.engine.halt();
      await sim.stop();
      await db.dispose();
    },
  };
}
