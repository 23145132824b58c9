import { randomBytes } from "node:crypto";
import knexFactory, { type Knex } from "knex";
import {
  decodeHelloResult,
  encodeHelloRequest,
  PROTOCOL_VERSION,
  type XmlElement,
} from "../../src/interop/codec/index.js";
import { xml } from "../../src/interop/codec/xml.js";
import { ComponentConnection } from "../../src/interop/transport/component.js";
import { KeyVault } from "../../src/vault/key-vault.js";
import { SignalCrypto } from "../../src/interop/crypto/signal-crypto.js";
import { migrateToLatest } from "../../src/db/migrate.js";
import type { Limits } from "../../src/interop/codec/limits.js";
import { startSimulator, type Simulator, type SimulatorOptions } from "../../simulator/main.js";
import type { EnlistedProvider } from "../../simulator/config.js";

export const PROVIDER: EnlistedProvider = {
  id: "matrix-bridge-example",
  name: "Example Matrix Bridge",
  domain: "matrix.bridge.example",
  secret: "provider-secret",
};
export const OTHER_PROVIDER: EnlistedProvider = {
  id: "other-example",
  name: "Other Provider",
  domain: "other.example",
  secret: "other-secret",
};
export const ALICE = "alice=3amatrix.bridge.example@matrix.bridge.example";
export const BOB = "bob=3amatrix.bridge.example@matrix.bridge.example";

/** A movable clock: tests advance time instead of waiting. */
export class TestClock {
  t = Date.UTC(2026, 0, 1, 12);
  readonly now = (): number => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}

export async function startTestSimulator(
  options: Partial<SimulatorOptions> & { clock?: TestClock; limits?: Partial<Limits> } = {},
): Promise<{ sim: Simulator; clock: TestClock }> {
  const clock = options.clock ?? new TestClock();
  const sim = await startSimulator({
    providers: [PROVIDER, OTHER_PROVIDER],
    database: ":memory:",
    tickIntervalMs: 0,
    now: clock.now,
    ...options,
  });
  return { sim, clock };
}

/**
 * A provider as the bridge would be: one XEP-0114 component connection to the simulator's server,
 * recording every stanza it receives. Tests build stanzas with the codec and read the answers.
 */
export class TestProvider {
  readonly received: XmlElement[] = [];
  private readonly waiters = new Set<() => void>();

  private constructor(
    readonly connection: ComponentConnection,
    readonly domain: string,
  ) {
    connection.onStanza((stanza) => {
      this.received.push(stanza);
      for (const w of [...this.waiters]) w();
    });
  }

  static async connect(service: string, provider = PROVIDER): Promise<TestProvider> {
    const connection = new ComponentConnection({
      service,
      domain: provider.domain,
      secret: provider.secret ?? "provider-secret",
      reconnect: { initialDelayMs: 50, maxDelayMs: 200 },
    });
    const client = new TestProvider(connection, provider.domain);
    // Tests send oversized stanzas on purpose: the simulator, not the client, must refuse them.
    connection.setMaxStanzaBytes(262144 + 16384);
    connection.start();
    try {
      await connection.waitOnline(5000);
    } catch (err) {
      await connection.stop();
      throw err;
    }
    return client;
  }

  async send(stanza: XmlElement): Promise<void> {
    await this.connection.send(stanza);
  }

  /** Waits for a received stanza matching `match` (also among those already received). */
  async waitFor(
    match: (s: XmlElement) => boolean,
    timeoutMs = 5000,
    from = 0,
  ): Promise<XmlElement> {
    const find = (): XmlElement | undefined => this.received.slice(from).find(match);
    const found = find();
    if (found !== undefined) return found;
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const hit = find();
        if (hit === undefined) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(hit);
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`no matching stanza within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.add(check);
    });
  }

  /** Sends an IQ and returns the response (result or error) with the same id. */
  async iq(
    type: "get" | "set",
    payload: XmlElement,
    options: { from?: string; to?: string; id?: string; timeoutMs?: number } = {},
  ): Promise<XmlElement> {
    const id = options.id ?? `iq-${randomBytes(6).toString("hex")}`;
    const mark = this.received.length;
    await this.send(
      xml("iq", { type, id, from: options.from ?? ALICE, to: options.to ?? "wa.example" }, payload),
    );
    return this.waitFor(
      (s) => s.name === "iq" && s.attrs.id === id,
      options.timeoutMs ?? 5000,
      mark,
    );
  }

  async hello(provider = PROVIDER, features: string[] = []): Promise<XmlElement> {
    const response = await this.iq(
      "get",
      encodeHelloRequest({ version: PROTOCOL_VERSION, provider: provider.id, features }),
      { from: provider.domain },
    );
    decodeHelloResult(child(response));
    return response;
  }

  /** Everything received from now on, as the outcome of the sent stanza with `id`. */
  async outcome(stanza: XmlElement, timeoutMs = 5000): Promise<XmlElement> {
    const mark = this.received.length;
    const id = String(stanza.attrs.id);
    await this.send(stanza);
    return this.waitFor(
      (s) =>
        s.name === "message" &&
        (s.attrs.id === id || childNamed(s, "accepted")?.attrs["origin-id"] === id),
      timeoutMs,
      mark,
    );
  }

  async close(): Promise<void> {
    await this.connection.stop();
  }
}

export function childNamed(el: XmlElement, name: string): XmlElement | undefined {
  return el.children.find((c): c is XmlElement => typeof c !== "string" && c.name === name);
}

/** The first element child. */
export function child(el: XmlElement): XmlElement {
  const found = el.children.find((c): c is XmlElement => typeof c !== "string");
  if (found === undefined) throw new Error(`no child in ${el.toString()}`);
  return found;
}

/** `[condition, appCondition]` of an IQ error or bounce, e.g. ["not-acceptable", "code-invalid"]. */
export function errorOf(el: XmlElement): { type: string; condition: string; app?: XmlElement } {
  const error = childNamed(el, "error");
  if (error === undefined || el.attrs.type !== "error") {
    throw new Error(`expected an error, got ${el.toString().slice(0, 400)}`);
  }
  const kids = error.children.filter((c): c is XmlElement => typeof c !== "string");
  const condition = kids.find((k) => k.attrs.xmlns === "urn:ietf:params:xml:ns:xmpp-stanzas");
  const app = kids.find((k) => k.attrs.xmlns === "urn:interop:errors:0");
  return {
    type: String(error.attrs.type),
    condition: condition?.name ?? "none",
    ...(app === undefined ? {} : { app }),
  };
}

/** A provider-side Signal store to make real bundles, on its own in-memory database. */
export async function providerCrypto(
  now: () => number,
): Promise<{ crypto: SignalCrypto; knex: Knex }> {
  const knex = knexFactory({
    client: "sqlite3",
    connection: { filename: ":memory:" },
    useNullAsDefault: true,
    pool: { min: 1, max: 1 },
  });
  await migrateToLatest(knex);
  return {
    crypto: new SignalCrypto({ knex, vault: KeyVault.fromKey(Buffer.alloc(32, 9)), now }),
    knex,
  };
}
