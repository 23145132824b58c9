import knexFactory, { type Knex } from "knex";
import { startSimulator, type Simulator } from "../../simulator/main.js";
import type { Limits } from "../../src/interop/codec/limits.js";
import type { XmlElement } from "../../src/interop/codec/xml.js";
import { migrateToLatest } from "../../src/db/migrate.js";
import { KeyVault } from "../../src/vault/key-vault.js";
import { SignalCrypto } from "../../src/interop/crypto/signal-crypto.js";
import { ProviderEngine } from "../../src/interop/provider/engine.js";
import type { EngineTiming } from "../../src/interop/provider/types.js";
import { ComponentConnection } from "../../src/interop/transport/component.js";
import { phoneNumber, type BareJid, type PhoneNumber } from "../../src/util/ids.js";
import { ENGINE_FEATURES, SIMULATOR_FEATURES } from "../../simulator/config.js";
import { skipUnlessProsody, startProsody, type ProsodyInstance } from "../prosody/harness.js";
import { ALICE, PROVIDER, providerCrypto, TestClock, TestProvider } from "../simulator/harness.js";
import { ProviderUser } from "../simulator/provider-user.js";
import { EventSink, FAST_TIMING } from "../interop/provider/world.js";

export type Transport = "embedded" | "prosody";
export const TRANSPORTS: readonly Transport[] = ["embedded", "prosody"];

export const PHONE = phoneNumber("+491701234567");
export const GK = "491701234567@wa.example" as BareJid;

/**
 * One XMPP server per suite and transport: embedded worlds need none (the simulator runs its
 * own), Prosody worlds share one Prosody whose components reconnect for every world.
 */
export function useTransport(transport: Transport): { service(): string | undefined } {
  let prosody: ProsodyInstance | undefined;
  before(async function () {
    if (transport !== "prosody") return;
    skipUnlessProsody(this);
    this.timeout(20_000);
    prosody = await startProsody();
  });
  after(async function () {
    await prosody?.stop();
    prosody = undefined;
  });
  return { service: () => prosody?.service };
}

export interface WorldOptions {
  limits?: Partial<Limits>;
  gkDevices?: number;
  media?: boolean;
}

/** A simulator on the given transport, with one simulated WhatsApp user (PHONE, GK). */
export interface World {
  readonly sim: Simulator;
  readonly clock: TestClock;
  /** Starts the bridge's provider engine on this world, with a wire tap. */
  engine(options?: { timing?: Partial<EngineTiming>; features?: string[] }): Promise<EngineHandle>;
  /** Connects a protocol-level provider (hello done) with Alice published. */
  provider(): Promise<{ provider: TestProvider; alice: ProviderUser }>;
  close(): Promise<void>;
}

export interface EngineHandle {
  readonly engine: ProviderEngine;
  readonly connection: ComponentConnection;
  readonly sink: EventSink;
  readonly crypto: SignalCrypto;
  readonly knex: Knex;
  /** Stanzas the engine sent, in order. */
  readonly sent: XmlElement[];
  /** Stanzas the engine received, in order. */
  readonly received: XmlElement[];
  readonly user: BareJid;
  /** When set and true for a stanza, the tap records it but does not send it (a lost stanza). */
  drop: ((stanza: XmlElement) => boolean) | undefined;
}

export const VAULT_KEY = Buffer.alloc(32, 5);
let counter = 0;

export async function startWorld(
  transport: Transport,
  service: string | undefined,
  options: WorldOptions = {},
): Promise<World> {
  const clock = new TestClock();
  clock.t = Date.now();
  const sim = await startSimulator({
    providers: [PROVIDER],
    database: ":memory:",
    tickIntervalMs: 0,
    now: clock.now,
    ...(options.media === true ? {} : { media: false }),
    ...(options.limits === undefined ? {} : { limits: options.limits }),
    ...(transport === "prosody" ? { mode: "external" as const, externalService: service } : {}),
  });
  await sim.users.create({ phone: PHONE, devices: options.gkDevices ?? 2 });
  const cleanups: (() => Promise<void>)[] = [];
  const lateCleanups: (() => Promise<void>)[] = [];
  return {
    sim,
    clock,
    async engine(engineOptions = {}) {
      const knex = await memoryKnex();
      const connection = new ComponentConnection({
        service: sim.service,
        domain: PROVIDER.domain,
        secret: PROVIDER.secret ?? "provider-secret",
        reconnect: { initialDelayMs: 20, maxDelayMs: 200, stableAfterMs: 60_000, random: () => 1 },
        connectTimeoutMs: 3000,
      });
      const sent: XmlElement[] = [];
      const received: XmlElement[] = [];
      const send = connection.send.bind(connection);
      const hooks: { drop: EngineHandle["drop"] } = { drop: undefined };
      connection.send = async (stanza: XmlElement): Promise<void> => {
        sent.push(stanza);
        if (hooks.drop?.(stanza) === true) return;
        await send(stanza);
      };
      connection.onStanza((s) => {
        received.push(s);
      });
      const vault = KeyVault.fromKey(VAULT_KEY);
      const crypto = new SignalCrypto({ knex, vault });
      const sink = new EventSink();
      const engine = new ProviderEngine({
        connection,
        knex,
        crypto,
        vault,
        providerId: PROVIDER.id,
        features: engineOptions.features ?? [...ENGINE_FEATURES],
        onEvent: sink.handler,
        allowInsecureMediaOnLoopback: true,
        timing: { ...FAST_TIMING, ...engineOptions.timing },
      });
      engine.start();
      cleanups.push(() => engine.halt());
      // After the simulator stopped: nothing can reach the engine's database any more.
      lateCleanups.push(() => knex.destroy());
      await until(() => engine.state.code === "ready", "the engine to be ready");
      counter++;
      const user = `u${counter}x${process.pid}@${PROVIDER.domain}` as BareJid;
      await engine.createUser(user);
      return Object.assign(hooks, { engine, connection, sink, crypto, knex, sent, received, user });
    },
    async provider() {
      const provider = await TestProvider.connect(sim.service);
      cleanups.push(() => provider.close());
      await provider.hello(PROVIDER, [...SIMULATOR_FEATURES]);
      const { crypto, knex } = await providerCrypto(clock.now);
      cleanups.push(() => knex.destroy());
      const alice = await ProviderUser.create(crypto, provider, ALICE);
      await alice.publish();
      return { provider, alice };
    },
    async close() {
      for (const c of cleanups.reverse()) await c().catch(() => undefined);
      await sim.stop();
      for (const c of lateCleanups) await c().catch(() => undefined);
    },
  };
}

async function memoryKnex(): Promise<Knex> {
  const knex = knexFactory({
    client: "sqlite3",
    connection: { filename: ":memory:" },
    useNullAsDefault: true,
    pool: { min: 1, max: 1 },
  });
  await migrateToLatest(knex);
  return knex;
}

/** Polls `condition` until it holds; fails naming `what`. */
export async function until(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 8000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export const body = (text: string) => [{ kind: "body" as const, text }];
export type { PhoneNumber };

/** Element children named `name`, at any depth. */
export function find(el: XmlElement, name: string): XmlElement | undefined {
  for (const c of el.children) {
    if (typeof c === "string") continue;
    if (c.name === name) return c;
    const deeper = find(c, name);
    if (deeper !== undefined) return deeper;
  }
  return undefined;
}
