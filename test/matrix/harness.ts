import { randomBytes } from "node:crypto";
import { coreTables, type CoreTables } from "../helpers/core-tables.js";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { startBridge, type BridgeOptions, type RunningBridge } from "../../src/bridge.js";
import { openDatabase } from "../../src/db/database.js";
import { configuredNetwork } from "../../src/cli/network.js";
import { buildRegistration } from "../../src/cli/registration.js";
import { configSchema } from "../../src/config/schema.js";
import { silentLogger } from "../../src/util/log.js";
import { FakeNetwork } from "../core/fakes/network.js";
import {
  createTestHomeserver,
  type AppserviceRegistration,
  type HomeserverProfile,
  type TestHomeserver,
} from "../homeserver/index.js";
import { api, enc } from "../homeserver/testHelpers.js";

export const DOMAIN = "example.org";
export const BOT = `@whatsappbot:${DOMAIN}`;
const KEY_ENV = "MWI_MATRIX_TEST_KEY";

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no free port");
  return address.port;
}

export interface MatrixHarness {
  hs: TestHomeserver;
  bridge: RunningBridge;
  /** The core's tables on the running bridge's database, to read what it stored. */
  readonly tables: CoreTables;
  network: FakeNetwork;
  appserviceId: string;
  /** The bridge's appservice port and the homeserver token: for pushing transactions directly. */
  appservicePort: number;
  hsToken: string;
  alice: { userId: string; accessToken: string; deviceId: string };
  /** A client-server API call as alice. */
  asAlice(method: string, pathname: string, body?: unknown): ReturnType<typeof api>;
  /** Sends a text as alice; returns the event id. */
  say(room: string, body: string): Promise<string>;
  /** The latest 1000 m.room.message events of a room as alice sees them, oldest first. */
  messages(
    room: string,
  ): Promise<{ sender: string; body: string; eventId: string; content: Record<string, unknown> }[]>;
  /** Waits until `check` returns a value other than undefined. */
  waitFor<T>(check: () => Promise<T | undefined>, what: string): Promise<T>;
  /** Stops the bridge (cleanly, or abandoned as by a crash with `crash`) and starts it again. */
  restart(options?: { crash?: boolean }): Promise<void>;
  dispose(): Promise<void>;
}

/** Alice's password, for tests that log her in on a further device. */
export const ALICE_PASSWORD = "alice-password";

/** What a crash leaves behind that a clean stop clears: the crypto layer's running marker. */
async function markUnclean(file: string): Promise<void> {
  const db = await openDatabase({ type: "sqlite", uri: file });
  const row = { key: "matrix_crypto_running", value: Buffer.from("1") };
  await db.knex("crypto_meta").insert(row).onConflict("key").merge();
  await db.close();
}

/** The whole bridge in-process against the test homeserver, with the fake network. */
export async function startMatrixHarness(
  profile: HomeserverProfile = "spec",
  bridgeOptions: Pick<BridgeOptions, "ingressPolicy" | "now" | "ingressHooks"> = {},
  /** Top-level config sections replacing the harness's (permissions, metrics...). */
  configOverrides: Record<string, unknown> = {},
  overrides: {
    matrix_encryption?: Record<string, unknown>;
    /** False: the homeserver pushes no to-device events or key counts (the bridge must /sync). */
    appserviceCryptoPushes?: boolean;
  } = {},
): Promise<MatrixHarness> {
  const dir = await mkdtemp(path.join(tmpdir(), "mwi-matrix-"));
  process.env[KEY_ENV] = randomBytes(32).toString("base64");
  const port = await freePort();
  const base = {
    homeserver: { url: "http://127.0.0.1:1", domain: DOMAIN },
    database: { type: "sqlite", uri: path.join(dir, "bridge.db") },
    encryption: { key_env: KEY_ENV },
    permissions: { "*": "none", [DOMAIN]: "user" },
    // These tests read portals as a client without crypto: plaintext unless a test asks.
    matrix_encryption: { default: false, ...overrides.matrix_encryption },
    ...configOverrides,
  };
  const registration = buildRegistration(configSchema.parse(base), `http://127.0.0.1:${port}`, {
    asToken: randomBytes(16).toString("hex"),
    hsToken: randomBytes(16).toString("hex"),
  });
  const hs = createTestHomeserver({
    serverName: DOMAIN,
    profile,
    appservices: [registration as unknown as AppserviceRegistration],
    retryInitialMs: 20,
    retryMaxMs: 200,
    ...(overrides.appserviceCryptoPushes === undefined
      ? {}
      : { appserviceCryptoPushes: overrides.appserviceCryptoPushes }),
  });
  await hs.start();
  const config = configSchema.parse({ ...base, homeserver: { url: hs.url, domain: DOMAIN } });
  const network = new FakeNetwork();
  const start = () =>
    startBridge({
      config,
      registration,
      port,
      log: silentLogger(),
      createConnector: (callbacks) => {
        network.callbacks = callbacks;
        return network;
      },
      network: configuredNetwork(config),
      ...bridgeOptions,
    });
  let bridge = await start();
  const alice = hs.registerUser("alice", ALICE_PASSWORD);
  const asAlice = (method: string, pathname: string, body?: unknown) =>
    api(hs.url, method, pathname, {
      token: alice.accessToken,
      ...(body === undefined ? {} : { body }),
    });
  let txn = 0;
  const harness: MatrixHarness = {
    hs,
    bridge,
    get tables() {
      return coreTables(harness.bridge.db.knex);
    },
    network,
    appserviceId: registration.id,
    appservicePort: port,
    hsToken: registration.hs_token,
    alice,
    asAlice,
    async say(room, body) {
      txn += 1;
      const sent = await asAlice(
        "PUT",
        `/_matrix/client/v3/rooms/${enc(room)}/send/m.room.message/t${txn}-${Date.now()}`,
        { msgtype: "m.text", body },
      );
      if (sent.status !== 200) throw new Error(`send failed: ${JSON.stringify(sent.json)}`);
      return sent.json["event_id"] as string;
    },
    async messages(room) {
      const answer = await asAlice(
        "GET",
        `/_matrix/client/v3/rooms/${enc(room)}/messages?dir=b&limit=1000`,
      );
      const chunk = (answer.json["chunk"] as Record<string, unknown>[] | undefined) ?? [];
      // The latest 1000 (a fuzzed room holds more), oldest first.
      return chunk
        .reverse()
        .filter((e) => e["type"] === "m.room.message")
        .map((e) => {
          const content = e["content"] as Record<string, unknown>;
          return {
            sender: e["sender"] as string,
            body: String(content["body"]),
            eventId: e["event_id"] as string,
            content,
          };
        });
    },
    async waitFor(check, what) {
      const deadline = Date.now() + 10_000;
      for (;;) {
        const value = await check();
        if (value !== undefined) return value;
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    },
    async restart(options = {}) {
      await bridge.stop();
      // A stop after which the next start finds the marker an unclean stop leaves (the kill -9
      // itself is test/faults' matter).
      if (options.crash === true) await markUnclean(path.join(dir, "bridge.db"));
      bridge = await start();
      harness.bridge = bridge;
    },
    async dispose() {
      await harness.bridge.stop();
      await hs.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return harness;
}
