import type { Knex } from "knex";
import { KeyVault } from "../../../src/vault/key-vault.js";
import { SignalCrypto, type DeviceCrypto } from "../../../src/interop/crypto/signal-crypto.js";
import type {
  IdentityChangeEvent,
  IdentityChangePolicy,
  PublishableBundle,
  RemoteBundle,
} from "../../../src/interop/crypto/types.js";
import type { BareJid, DeviceId } from "../../../src/util/ids.js";

let counter = 0;

/** A bare JID unique to this test run, so tests sharing a suite database never collide. */
export function uniqueJid(kind: "provider" | "gatekeeper"): BareJid {
  counter++;
  const tag = `${process.pid}${counter}${Math.floor(Math.random() * 1e6)}`;
  return (
    kind === "gatekeeper" ? `49${tag.slice(0, 12)}@wa.example` : `u${tag}@matrix.bridge.example`
  ) as BareJid;
}

/** A movable clock: tests advance time instead of waiting. */
export class TestClock {
  t = Date.UTC(2026, 0, 1);
  readonly now = (): number => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}

export const TEST_VAULT_KEY = Buffer.alloc(32, 7);

export interface CryptoWorld {
  readonly crypto: SignalCrypto;
  readonly clock: TestClock;
  readonly events: IdentityChangeEvent[];
}

export function makeCrypto(
  knex: Knex,
  options: { policy?: IdentityChangePolicy; clock?: TestClock } = {},
): CryptoWorld {
  const clock = options.clock ?? new TestClock();
  const crypto = new SignalCrypto({
    knex,
    vault: KeyVault.fromKey(TEST_VAULT_KEY),
    identityChange: options.policy ?? "warn",
    now: clock.now,
  });
  const events: IdentityChangeEvent[] = [];
  crypto.onIdentityChange((event) => events.push(event));
  return { crypto, clock, events };
}

/**
 * What the key directory hands out for a published bundle (§11.4): one one-time EC prekey (if
 * `oneTime`), and a one-time Kyber prekey if `oneTime`, else the last-resort Kyber prekey.
 */
export function directoryBundle(
  published: PublishableBundle,
  { oneTime = true, index = 0 }: { oneTime?: boolean; index?: number } = {},
): RemoteBundle {
  const preKey = oneTime ? published.preKeys[index] : undefined;
  const kyber = oneTime ? published.kyberPreKeys[index] : undefined;
  return {
    deviceId: published.deviceId,
    registrationId: published.registrationId,
    identityKey: published.identityKey,
    signedPreKey: published.signedPreKey,
    kyberPreKey: kyber ?? published.lastResortKyberPreKey,
    preKey: preKey ?? null,
  };
}

export const utf8 = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, "utf8"));
export const text = (bytes: Uint8Array): string => Buffer.from(bytes).toString("utf8");

/** Creates a table the tests store "messages" in, to check the one-transaction contract. */
export async function ensureInboxTable(knex: Knex): Promise<void> {
  if (await knex.schema.hasTable("test_crypto_inbox")) return;
  await knex.schema.createTable("test_crypto_inbox", (t) => {
    t.string("receiver", 255).notNullable();
    t.string("body", 255).notNullable();
  });
}

export function address(
  jid: BareJid,
  device: DeviceId | number,
): { jid: BareJid; device: DeviceId } {
  return { jid, device: device as DeviceId };
}

/** A one-device local user with its published bundle. */
export async function newDevice(
  world: CryptoWorld,
  kind: "provider" | "gatekeeper",
  options: { deviceId?: number; oneTimePreKeys?: number; jid?: BareJid } = {},
): Promise<{ device: DeviceCrypto; bundle: PublishableBundle; jid: BareJid }> {
  const jid = options.jid ?? uniqueJid(kind);
  const created = await world.crypto.createLocalIdentity(jid, {
    oneTimePreKeys: options.oneTimePreKeys ?? 3,
    ...(options.deviceId === undefined ? {} : { deviceId: options.deviceId as DeviceId }),
  });
  return { ...created, jid };
}
