/**
 * libsignal with in-memory stores: the floor any persistent store is compared with, shared by
 * bench/crypto.ts (stores vs floor) and bench/main.ts (the per-message floor of the whole bridge).
 */
import {
  Direction,
  IdentityChange,
  IdentityKeyPair,
  IdentityKeyStore,
  KEMKeyPair,
  KyberPreKeyRecord,
  KyberPreKeyStore,
  PreKeyBundle,
  PreKeyRecord,
  PreKeySignalMessage,
  PreKeyStore,
  PrivateKey,
  ProtocolAddress,
  PublicKey,
  SessionRecord,
  SessionStore,
  SignalMessage,
  SignedPreKeyRecord,
  SignedPreKeyStore,
  processPreKeyBundle,
  signalDecrypt,
  signalDecryptPreKey,
  signalEncrypt,
  CiphertextMessageType,
} from "@signalapp/libsignal-client";

/** libsignal's in-memory stores, the floor any persistent store is compared with. */
export class MemoryParty {
  readonly identity = IdentityKeyPair.generate();
  readonly registrationId = 1 + Math.floor(Math.random() * 16380);
  readonly sessions = new Map<string, SessionRecord>();
  readonly identities = new Map<string, PublicKey>();
  readonly preKeys = new Map<number, PreKeyRecord>();
  readonly signed = new Map<number, SignedPreKeyRecord>();
  readonly kyber = new Map<number, KyberPreKeyRecord>();
  readonly address: ProtocolAddress;

  constructor(name: string, device: number) {
    this.address = ProtocolAddress.new(name, device);
  }

  readonly sessionStore = ((party: MemoryParty) =>
    new (class extends SessionStore {
      async saveSession(a: ProtocolAddress, r: SessionRecord) {
        party.sessions.set(a.toString(), r);
      }
      async getSession(a: ProtocolAddress) {
        return party.sessions.get(a.toString()) ?? null;
      }
      async getExistingSessions(as: ProtocolAddress[]) {
        return as.map((a) => party.sessions.get(a.toString()) as SessionRecord);
      }
    })())(this);

  readonly identityStore = ((party: MemoryParty) =>
    new (class extends IdentityKeyStore {
      async getIdentityKey() {
        return party.identity.privateKey;
      }
      async getLocalRegistrationId() {
        return party.registrationId;
      }
      async saveIdentity(a: ProtocolAddress, key: PublicKey) {
        const old = party.identities.get(a.name());
        party.identities.set(a.name(), key);
        return old !== undefined && !old.equals(key)
          ? IdentityChange.ReplacedExisting
          : IdentityChange.NewOrUnchanged;
      }
      async isTrustedIdentity(_a: ProtocolAddress, _k: PublicKey, _d: Direction) {
        return true;
      }
      async getIdentity(a: ProtocolAddress) {
        return party.identities.get(a.name()) ?? null;
      }
    })())(this);

  readonly preKeyStore = ((party: MemoryParty) =>
    new (class extends PreKeyStore {
      async savePreKey(id: number, r: PreKeyRecord) {
        party.preKeys.set(id, r);
      }
      async getPreKey(id: number) {
        const r = party.preKeys.get(id);
        if (r === undefined) throw new Error(`no prekey ${id}`);
        return r;
      }
      async removePreKey(id: number) {
        party.preKeys.delete(id);
      }
    })())(this);

  readonly signedStore = ((party: MemoryParty) =>
    new (class extends SignedPreKeyStore {
      async saveSignedPreKey(id: number, r: SignedPreKeyRecord) {
        party.signed.set(id, r);
      }
      async getSignedPreKey(id: number) {
        return party.signed.get(id) as SignedPreKeyRecord;
      }
    })())(this);

  readonly kyberStore = ((party: MemoryParty) =>
    new (class extends KyberPreKeyStore {
      async saveKyberPreKey(id: number, r: KyberPreKeyRecord) {
        party.kyber.set(id, r);
      }
      async getKyberPreKey(id: number) {
        return party.kyber.get(id) as KyberPreKeyRecord;
      }
      async markKyberPreKeyUsed() {}
    })())(this);

  bundle(): PreKeyBundle {
    const spkPriv = PrivateKey.generate();
    const spk = SignedPreKeyRecord.new(
      1,
      Date.now(),
      spkPriv.getPublicKey(),
      spkPriv,
      this.identity.privateKey.sign(spkPriv.getPublicKey().serialize()),
    );
    this.signed.set(1, spk);
    const kp = KEMKeyPair.generate();
    const kyber = KyberPreKeyRecord.new(
      1,
      Date.now(),
      kp,
      this.identity.privateKey.sign(kp.getPublicKey().serialize()),
    );
    this.kyber.set(1, kyber);
    return PreKeyBundle.new(
      this.registrationId,
      this.address.deviceId(),
      null,
      null,
      1,
      spk.publicKey(),
      spk.signature(),
      this.identity.publicKey,
      1,
      kp.getPublicKey(),
      kyber.signature(),
    );
  }

  async processBundle(to: ProtocolAddress, bundle: PreKeyBundle): Promise<void> {
    await processPreKeyBundle(bundle, to, this.address, this.sessionStore, this.identityStore);
  }

  async encrypt(to: ProtocolAddress, text: Uint8Array<ArrayBuffer>) {
    const m = await signalEncrypt(text, to, this.address, this.sessionStore, this.identityStore);
    return { kex: m.type() === CiphertextMessageType.PreKey, ciphertext: m.serialize() };
  }

  async decrypt(from: ProtocolAddress, m: { kex: boolean; ciphertext: Uint8Array<ArrayBuffer> }) {
    return m.kex
      ? signalDecryptPreKey(
          PreKeySignalMessage.deserialize(m.ciphertext),
          from,
          this.address,
          this.sessionStore,
          this.identityStore,
          this.preKeyStore,
          this.signedStore,
          this.kyberStore,
        )
      : signalDecrypt(
          SignalMessage.deserialize(m.ciphertext),
          from,
          this.address,
          this.sessionStore,
          this.identityStore,
        );
  }
}

/** A Signal message on the wire: PreKey (key exchange) or a plain SignalMessage. */
export interface Wire {
  kex: boolean;
  ciphertext: Uint8Array<ArrayBuffer>;
}

/** The bridge side of a relay: decrypts from one peer, encrypts to another. */
export interface Relay {
  readonly address: ProtocolAddress;
  bundleFor(peer: MemoryParty): Promise<PreKeyBundle>;
  processBundle(peer: MemoryParty, bundle: PreKeyBundle): Promise<void>;
  decrypt(peer: MemoryParty, m: Wire): Promise<Uint8Array<ArrayBuffer>>;
  encrypt(peer: MemoryParty, text: Uint8Array<ArrayBuffer>): Promise<Wire>;
}

export function memoryRelay(): Relay {
  const me = new MemoryParty("bridge@matrix.bridge.example", 1);
  return {
    address: me.address,
    bundleFor: async () => me.bundle(),
    processBundle: (peer, bundle) => me.processBundle(peer.address, bundle),
    decrypt: (peer, m) => me.decrypt(peer.address, m),
    encrypt: (peer, text) => me.encrypt(peer.address, text),
  };
}

/**
 * Two in-memory peers with steady-state sessions through `relay` (p1 -> relay -> p2, both out of
 * the PreKey phase), so that the timed messages are ordinary SignalMessages.
 */
export async function connectPeers(relay: Relay): Promise<{ p1: MemoryParty; p2: MemoryParty }> {
  const p1 = new MemoryParty("491700000001@wa.example", 1);
  const p2 = new MemoryParty("491700000002@wa.example", 1);
  const hello = new Uint8Array(Buffer.from("<envelope>hello</envelope>"));
  // p1 -> relay, relay replies: both sides leave the PreKey phase.
  await p1.processBundle(relay.address, await relay.bundleFor(p1));
  await relay.decrypt(p1, await p1.encrypt(relay.address, hello));
  await p1.decrypt(relay.address, await relay.encrypt(p1, hello));
  // relay -> p2, p2 replies.
  await relay.processBundle(p2, p2.bundle());
  await p2.decrypt(relay.address, await relay.encrypt(p2, hello));
  await relay.decrypt(p2, await p2.encrypt(relay.address, hello));
  return { p1, p2 };
}
