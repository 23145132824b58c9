import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { startBridge, type RunningBridge } from "../../src/bridge.js";
import { buildRegistration } from "../../src/cli/registration.js";
import { configSchema, type Config } from "../../src/config/schema.js";
import { InteropConnector } from "../../src/interop/connector/connector.js";
import { OFFERED_FEATURES } from "../../src/interop/connector/factory.js";
import { SignalCrypto } from "../../src/interop/crypto/index.js";
import type { Limits } from "../../src/interop/codec/limits.js";
import { timingFromConfig, type EngineTiming } from "../../src/interop/provider/types.js";
import { ComponentConnection } from "../../src/interop/transport/component.js";
import { silentLogger, type Logger } from "../../src/util/log.js";
import type { Registration } from "../../src/cli/registration.js";
import { startSimulator, type Simulator } from "../../simulator/main.js";
import type { EnlistedProvider } from "../../simulator/config.js";
import {
  createTestHomeserver,
  type AppserviceRegistration,
  type HomeserverProfile,
  type TestHomeserver,
} from "../../test/homeserver/index.js";

export const DOMAIN = "demo.example";
const KEY_ENV = "MWI_DEMO_KEY";
const HELLO_WAIT_MS = 10_000;

export interface DemoWorld {
  readonly hs: TestHomeserver;
  readonly sim: Simulator;
  readonly bridge: RunningBridge;
  readonly config: Config;
  readonly registration: Registration;
  readonly adminUrl: string;
  readonly adminToken: string;
  /** The page that plays the WhatsApp side, token included (simulator/web/). */
  readonly pageUrl: string;
  readonly user: { userId: string; accessToken: string; password: string };
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no free port found");
  return address.port;
}

/** `port` when it is free on 127.0.0.1, else 0 (any). */
async function portOr0(port: number | undefined): Promise<number> {
  if (port === undefined || port === 0) return 0;
  const server = createServer();
  const free = await new Promise<boolean>((resolve) => {
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => resolve(true));
  });
  if (free) await new Promise<void>((resolve) => server.close(() => resolve()));
  return free ? port : 0;
}

export interface DemoWorldOptions {
  /** Config sections merged over the demo's (metrics, provisioning, limits, ...), for tests. */
  config?: Record<string, unknown>;
  /** The bridge's logger; silent by default. */
  log?: Logger;
  /** Limits of the simulated gatekeeper (§8.3), e.g. a low messages-per-minute. */
  simulatorLimits?: Partial<Limits>;
  /** Engine timing overrides (e.g. a short pendingReplayMs). */
  timing?: Partial<EngineTiming>;
  /** The clock of the bridge's per-user limits. */
  now?: () => number;
  /** Which homeserver the test homeserver plays (test/homeserver/README.md); `spec` by default. */
  homeserverProfile?: HomeserverProfile;
  /**
   * Port of the simulator's admin API and page on 127.0.0.1; any free one when unset or when
   * this one is taken.
   */
  webPort?: number;
  /**
   * More providers enlisted at the simulator besides the bridge (a second provider domain whose
   * users a test plays over their own component connection to `sim.service`).
   */
  extraProviders?: readonly EnlistedProvider[];
}

/**
 * The test homeserver, the gatekeeper simulator (with its admin API) and the bridge on SQLite,
 * all in-process with state in a temporary directory; the demo and the e2e tests (test/e2e/) run
 * on it. The simulator is started here rather than by embedded mode so that the demo can script
 * it in-process; its admin API also serves the page that plays the WhatsApp side.
 */
export async function startDemoWorld(
  localpart: string,
  options: DemoWorldOptions = {},
): Promise<DemoWorld> {
  const dir = await mkdtemp(path.join(tmpdir(), "mwi-demo-"));
  const cleanups: (() => Promise<unknown>)[] = [() => rm(dir, { recursive: true, force: true })];
  const stop = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    cleanups.length = 0;
  };
  try {
    process.env[KEY_ENV] = randomBytes(32).toString("base64");
    const port = await freePort();
    const adminToken = randomBytes(12).toString("hex");
    const base = {
      homeserver: { url: "http://127.0.0.1:1", domain: DOMAIN },
      database: { type: "sqlite", uri: path.join(dir, "bridge.db") },
      encryption: { key_env: KEY_ENV },
      permissions: { "*": "none", [DOMAIN]: "user" },
      interop: { allow_insecure_media_on_loopback: true },
      // Clients of these worlds read portals without crypto unless a caller turns it on.
      matrix_encryption: { default: false },
      ...options.config,
    };
    const registration = buildRegistration(configSchema.parse(base), `http://127.0.0.1:${port}`, {
      asToken: randomBytes(16).toString("hex"),
      hsToken: randomBytes(16).toString("hex"),
    });
    const hs = createTestHomeserver({
      serverName: DOMAIN,
      ...(options.homeserverProfile === undefined ? {} : { profile: options.homeserverProfile }),
      appservices: [registration as unknown as AppserviceRegistration],
      retryInitialMs: 20,
      retryMaxMs: 500,
    });
    await hs.start();
    cleanups.push(() => hs.stop());
    const config = configSchema.parse({ ...base, homeserver: { url: hs.url, domain: DOMAIN } });
    const secret = randomBytes(24).toString("hex");
    const sim = await startSimulator({
      providers: [
        {
          id: config.interop.provider_id,
          name: config.appservice.bot.display_name,
          domain: config.interop.component_domain,
          secret,
        },
        ...(options.extraProviders ?? []),
      ],
      dataDir: path.join(dir, "simulator"),
      admin: { token: adminToken, web: true, port: await portOr0(options.webPort) },
      ...(options.simulatorLimits === undefined ? {} : { limits: options.simulatorLimits }),
      tickIntervalMs: 500,
    });
    cleanups.push(() => sim.stop());
    if (sim.admin === undefined) throw new Error("the simulator started without its admin API");
    let connector: InteropConnector | undefined;
    const bridge = await startBridge({
      config,
      registration,
      port,
      log: options.log ?? silentLogger(),
      ...(options.now === undefined ? {} : { now: options.now }),
      createConnector: (callbacks, deps) => {
        const crypto = new SignalCrypto({ knex: deps.db.knex, vault: deps.vault });
        connector = new InteropConnector({
          callbacks,
          log: deps.log,
          engine: {
            connection: new ComponentConnection({
              service: sim.service,
              domain: config.interop.component_domain,
              secret,
              logger: deps.log,
            }),
            knex: deps.db.knex,
            crypto,
            vault: deps.vault,
            providerId: config.interop.provider_id,
            gatekeeperDomain: config.interop.gatekeeper_domain,
            groupDomain: config.interop.group_domain,
            features: OFFERED_FEATURES,
            timing: { ...timingFromConfig(config.interop), ...options.timing },
            allowInsecureMediaOnLoopback: true,
          },
        });
        return connector;
      },
    });
    cleanups.push(() => bridge.stop());
    if (connector === undefined || !(await connector.whenReady(HELLO_WAIT_MS))) {
      throw new Error(`the simulated gatekeeper did not answer hello within ${HELLO_WAIT_MS} ms`);
    }
    const password = "demo-password";
    const registered = hs.registerUser(localpart, password);
    return {
      hs,
      sim,
      bridge,
      config,
      registration,
      adminUrl: sim.admin.url,
      adminToken,
      pageUrl: `${sim.admin.url}/#token=${adminToken}`,
      user: { userId: registered.userId, accessToken: registered.accessToken, password },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
