/**
 * Per-message crypto cost of the bridge: receive from a peer device, decrypt, re-encrypt to another
 * peer device. Measured with the bridge's stores on SQLite and PostgreSQL, and against the floor:
 * raw libsignal with in-memory stores. Peers always use in-memory stores (they are not measured).
 *
 *   npx tsx bench/crypto.ts [messages] [sqlite|postgres]
 */
import { PreKeyBundle, ProtocolAddress, PublicKey } from "@signalapp/libsignal-client";
import { KeyVault } from "../src/vault/key-vault.js";
import { SignalCrypto, type DeviceCrypto } from "../src/interop/crypto/signal-crypto.js";
import type { PublishableBundle } from "../src/interop/crypto/types.js";
import type { BareJid, DeviceId } from "../src/util/ids.js";
import { createTestDatabase } from "../test/helpers/db.js";
import {
  connectPeers,
  memoryRelay,
  type MemoryParty,
  type Relay,
  type Wire,
} from "./signal-memory.js";

const MESSAGES = Number(process.argv[2] ?? 2000);
/** Optional backend filter: `sqlite` or `postgres`. */
const ONLY = process.argv[3];
const WARMUP = Math.min(200, Math.floor(MESSAGES / 5));

async function dbRelay(crypto: SignalCrypto): Promise<Relay> {
  const jid = "bridge@matrix.bridge.example" as BareJid;
  const { device, bundle } = await crypto.createLocalIdentity(jid, {
    deviceId: 1 as DeviceId,
    oneTimePreKeys: 0,
  });
  return {
    address: ProtocolAddress.new(jid, 1),
    bundleFor: async () => toPreKeyBundle(bundle),
    processBundle: (peer, b) =>
      device.sessions.processBundle(peer.address.name() as BareJid, fromPreKeyBundle(b)),
    decrypt: (peer, m) =>
      device.sessions.decrypt(
        {
          senderJid: peer.address.name() as BareJid,
          senderDevice: peer.address.deviceId() as DeviceId,
          kex: m.kex,
          ciphertext: m.ciphertext,
        },
        async (plain) => new Uint8Array(plain),
      ),
    encrypt: async (peer, text) => {
      const [key] = await encryptOne(device, peer, text);
      return { kex: key.kex, ciphertext: new Uint8Array(key.ciphertext) };
    },
  };
}

async function encryptOne(device: DeviceCrypto, peer: MemoryParty, text: Uint8Array) {
  const keys = await device.sessions.encryptForDevices(text, [
    { jid: peer.address.name() as BareJid, device: peer.address.deviceId() as DeviceId },
  ]);
  const key = keys[0];
  if (key === undefined) throw new Error("no key");
  return [key] as const;
}

const b64 = (b: Uint8Array) => Buffer.from(b).toString("base64");

function fromPreKeyBundle(b: PreKeyBundle) {
  return {
    deviceId: b.deviceId() as DeviceId,
    registrationId: b.registrationId(),
    identityKey: b64(b.identityKey().serialize()),
    signedPreKey: {
      id: b.signedPreKeyId(),
      publicKey: b64(b.signedPreKeyPublic().serialize()),
      signature: b64(b.signedPreKeySignature()),
    },
    kyberPreKey: {
      id: b.kyberPreKeyId(),
      publicKey: b64(b.kyberPreKeyPublic().serialize()),
      signature: b64(b.kyberPreKeySignature()),
    },
    preKey: null,
  };
}

async function toPreKeyBundle(p: PublishableBundle): Promise<PreKeyBundle> {
  const { decodeBase64: d } = await import("../src/interop/crypto/base64.js");
  const { KEMPublicKey } = await import("@signalapp/libsignal-client");
  return PreKeyBundle.new(
    p.registrationId,
    p.deviceId,
    null,
    null,
    p.signedPreKey.id,
    PublicKey.deserialize(d(p.signedPreKey.publicKey)),
    d(p.signedPreKey.signature),
    PublicKey.deserialize(d(p.identityKey)),
    p.lastResortKyberPreKey.id,
    KEMPublicKey.deserialize(d(p.lastResortKyberPreKey.publicKey)),
    d(p.lastResortKyberPreKey.signature),
  );
}

/** Sets up steady-state sessions p1 -> relay -> p2, then times decrypt + re-encrypt per message. */
interface Cost {
  /** Wall-clock time per message. */
  readonly wall: number;
  /** CPU time of the whole process (all threads, including SQLite's) per message. */
  readonly cpu: number;
}

async function run(relay: Relay): Promise<Cost> {
  const { p1, p2 } = await connectPeers(relay);
  const body = new Uint8Array(Buffer.from(`<envelope>${"x".repeat(300)}</envelope>`));
  const inbound: Wire[] = [];
  for (let i = 0; i < WARMUP + MESSAGES; i++) inbound.push(await p1.encrypt(relay.address, body));
  const outbound: Wire[] = [];
  let start = 0;
  let cpuStart = process.cpuUsage();
  for (let i = 0; i < inbound.length; i++) {
    if (i === WARMUP) {
      start = performance.now();
      cpuStart = process.cpuUsage();
    }
    const plain = await relay.decrypt(p1, inbound[i] as Wire);
    outbound.push(await relay.encrypt(p2, plain));
  }
  const wall = ((performance.now() - start) * 1000) / MESSAGES;
  const used = process.cpuUsage(cpuStart);
  const cpu = (used.user + used.system) / MESSAGES;
  // The relay's output must be readable, or the numbers mean nothing.
  for (const m of outbound.slice(-3)) await p2.decrypt(relay.address, m);
  return { wall, cpu };
}

async function main(): Promise<void> {
  const results: [string, Cost][] = [];
  results.push(["raw libsignal, in-memory stores", await run(memoryRelay())]);
  for (const type of ["sqlite", "postgres"] as const) {
    if (ONLY !== undefined && ONLY !== type) continue;
    let test;
    try {
      test = await createTestDatabase(type);
    } catch (err) {
      console.log(`${type}: skipped (${err instanceof Error ? err.message : String(err)})`);
      continue;
    }
    try {
      const crypto = new SignalCrypto({
        knex: test.db.knex,
        vault: KeyVault.fromKey(KeyVault.generateKey()),
      });
      results.push([`bridge stores on ${type}`, await run(await dbRelay(crypto))]);
    } finally {
      await test.dispose();
    }
  }
  const floor = results[0]?.[1] ?? { wall: 1, cpu: 1 };
  console.log(`decrypt + re-encrypt, ${MESSAGES} messages (after ${WARMUP} warm-up):`);
  console.log(
    `  ${"".padEnd(34)} ${"wall µs/msg".padStart(12)} ${"ratio".padStart(7)} ${"cpu µs/msg".padStart(12)} ${"ratio".padStart(7)}`,
  );
  for (const [name, cost] of results) {
    console.log(
      `  ${name.padEnd(34)} ${cost.wall.toFixed(0).padStart(12)} ${(cost.wall / floor.wall).toFixed(2).padStart(6)}x ${cost.cpu.toFixed(0).padStart(12)} ${(cost.cpu / floor.cpu).toFixed(2).padStart(6)}x`,
    );
  }
}

await main();
