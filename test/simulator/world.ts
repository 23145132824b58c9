import type { Knex } from "knex";
import { classifyMessage, encodeAck, type XmlElement } from "../../src/interop/codec/index.js";
import { xml } from "../../src/interop/codec/xml.js";
import { phoneNumber, type BareJid, type StanzaId } from "../../src/util/ids.js";
import type { Simulator, SimulatorOptions } from "../../simulator/main.js";
import { SIMULATOR_FEATURES } from "../../simulator/config.js";
import type { Limits } from "../../src/interop/codec/limits.js";
import {
  ALICE,
  PROVIDER,
  providerCrypto,
  startTestSimulator,
  TestClock,
  TestProvider,
} from "./harness.js";
import { ProviderUser } from "./provider-user.js";

export const PHONE = phoneNumber("+491701234567");
export const GK = "491701234567@wa.example" as BareJid;

/** A simulator with a connected, hello'd provider, Alice (published) and one gatekeeper user. */
export interface World {
  sim: Simulator;
  clock: TestClock;
  provider: TestProvider;
  alice: ProviderUser;
  providerKnex: Knex;
  close(): Promise<void>;
}

export async function makeWorld(
  options: {
    limits?: Partial<Limits>;
    gkDevices?: number;
    /** Features the provider lists in hello; all the simulator offers by default. */
    providerFeatures?: readonly string[];
  } & Partial<SimulatorOptions> = {},
): Promise<World> {
  const { sim, clock } = await startTestSimulator(options);
  const provider = await TestProvider.connect(sim.service);
  if (process.env.SIM_DEBUG !== undefined) {
    provider.connection.on("state", (s) => process.stderr.write(`STATE ${s.code} ${s.message}\n`));
  }
  await provider.hello(PROVIDER, [...(options.providerFeatures ?? SIMULATOR_FEATURES)]);
  const { crypto, knex } = await providerCrypto(clock.now);
  const alice = await ProviderUser.create(crypto, provider, ALICE);
  await alice.publish();
  await sim.users.create({ phone: PHONE, devices: options.gkDevices ?? 2 });
  const world: World = {
    sim,
    clock,
    provider,
    alice,
    providerKnex: knex,
    async close() {
      // Tests may replace the provider connection (a reconnect): close the current one.
      await world.provider.close();
      await sim.stop();
      await knex.destroy();
    },
  };
  return world;
}

/** Acks deliveries as the provider does: from its domain JID to the `by` of the stanza-id. */
export async function ack(provider: TestProvider, deliveries: XmlElement[]): Promise<void> {
  const ids = deliveries
    .map((d) => classifyMessage(d).stanzaId)
    .filter((s): s is NonNullable<typeof s> => s !== undefined);
  if (ids.length === 0) return;
  await provider.send(
    xml(
      "message",
      { id: `ack-${Date.now()}`, from: PROVIDER.domain, to: "wa.example" },
      encodeAck(ids.map((s) => s.id as StanzaId)),
    ),
  );
}

/** The next delivery carrying a stanza-id with the given payload element name. */
export function delivery(provider: TestProvider, name: string, from = 0): Promise<XmlElement> {
  return provider.waitFor(
    (s) =>
      s.name === "message" &&
      s.children.some((c) => typeof c !== "string" && c.name === "stanza-id") &&
      s.children.some((c) => typeof c !== "string" && c.name === name),
    8000,
    from,
  );
}

/** Waits until `check` holds, polling (for effects inside the simulator). */
export async function eventually<T>(
  check: () => Promise<T | undefined>,
  timeoutMs = 8000,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error("condition not reached in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}
