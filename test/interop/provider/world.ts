import type { Knex } from "knex";
import { KeyVault } from "../../../src/vault/key-vault.js";
import { SignalCrypto } from "../../../src/interop/crypto/signal-crypto.js";
import { ProviderEngine } from "../../../src/interop/provider/engine.js";
import type {
  EngineState,
  EngineTiming,
  ProviderEvent,
} from "../../../src/interop/provider/types.js";
import { ComponentConnection } from "../../../src/interop/transport/component.js";
import type { BareJid } from "../../../src/util/ids.js";
import { createLogger, type LogLevel } from "../../../src/util/log.js";
import { BRIDGE_DOMAIN, SECRETS } from "./fake-gatekeeper.js";

export const VAULT_KEY = Buffer.alloc(32, 5);

/** Short times so that tests do not wait; retransmission by timer stays off unless asked for. */
export const FAST_TIMING: Partial<EngineTiming> = {
  pingIdleMs: 3_600_000,
  helloInitialMs: 40,
  helloMaxMs: 300,
  retransmitInitialMs: 3_600_000,
  retransmitMaxMs: 3_600_000,
  ackDelayMs: 20,
  tickMs: 30,
  iqTimeoutMs: 2000,
  // §17.4's 60 s wait for a missing sender key, short enough for a test to see the retry.
  senderKeyWaitMs: 300,
  stateRetryInitialMs: 20,
  stateRetryMaxMs: 200,
};

let users = 0;

export function uniqueBridgeJid(): BareJid {
  users++;
  return `u${process.pid}x${users}x${Math.floor(Math.random() * 1e6)}@${BRIDGE_DOMAIN}` as BareJid;
}

/** What the core would do with events: record them, or fail or hang on purpose. */
export class EventSink {
  readonly events: ProviderEvent[] = [];
  /** The connection states the core took, in order (they are not in `events`). */
  readonly states: EngineState[] = [];
  mode: "ok" | "fail" | "hang" = "ok";
  /** Whether the core fails to take connection states, independently of `mode`. */
  failStates = false;

  readonly handler = async (event: ProviderEvent): Promise<void> => {
    if (event.kind === "state") {
      if (this.failStates) throw new Error("the core is down");
      this.states.push(event.state);
      return;
    }
    if (this.mode === "fail") throw new Error("the core is down");
    if (this.mode === "hang") return new Promise<void>(() => undefined);
    this.events.push(event);
  };

  of<K extends ProviderEvent["kind"]>(kind: K): Extract<ProviderEvent, { kind: K }>[] {
    return this.events.filter((e): e is Extract<ProviderEvent, { kind: K }> => e.kind === kind);
  }
}

export interface Bridge {
  readonly engine: ProviderEngine;
  readonly connection: ComponentConnection;
  readonly crypto: SignalCrypto;
  readonly sink: EventSink;
}

export function startBridge(
  service: string,
  knex: Knex,
  options: { timing?: Partial<EngineTiming>; features?: string[]; sink?: EventSink } = {},
): Bridge {
  const connection = new ComponentConnection({
    service,
    domain: BRIDGE_DOMAIN,
    secret: SECRETS[BRIDGE_DOMAIN],
    reconnect: { initialDelayMs: 20, maxDelayMs: 200, stableAfterMs: 60_000, random: () => 0.999 },
    connectTimeoutMs: 3000,
  });
  const vault = KeyVault.fromKey(VAULT_KEY);
  const crypto = new SignalCrypto({ knex, vault });
  const sink = options.sink ?? new EventSink();
  const engine = new ProviderEngine({
    connection,
    knex,
    crypto,
    vault,
    providerId: "matrix-bridge-example",
    features: options.features ?? [],
    onEvent: sink.handler,
    timing: { ...FAST_TIMING, ...options.timing },
    // PROVIDER_TEST_LOG=<level> prints the engine's log to stderr, for a failure's post-mortem.
    ...(process.env.PROVIDER_TEST_LOG === undefined
      ? {}
      : {
          logger: createLogger({
            level: process.env.PROVIDER_TEST_LOG as LogLevel,
            format: "text",
          }),
        }),
  });
  engine.start();
  return { engine, connection, crypto, sink };
}

/** Polls until `condition` holds; fails naming `what` after `timeoutMs`. */
export async function eventually(
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

export async function ready(bridge: Bridge): Promise<void> {
  await eventually(() => bridge.engine.state.code === "ready", "the bridge to be ready");
}
