import type { BareJid, DeviceId } from "../../util/ids.js";

/** One device of a remote user: the Signal address `ProtocolAddress.new(jid, device)` (§5.2). */
export interface DeviceAddress {
  readonly jid: BareJid;
  readonly device: DeviceId;
}

/** A signed public key as published (§11.1); binary fields are base64 (RFC 4648 §4, padded). */
export interface SignedPublicKey {
  readonly id: number;
  readonly publicKey: string;
  readonly signature: string;
}

export interface OneTimePublicKey {
  readonly id: number;
  readonly publicKey: string;
}

/**
 * What a local device publishes with `<bundle>` (§11.2). The codec builds the XML from it:
 * `lastResortKyberPreKey` is the `<kyber-prekey last-resort='true'>` child of `<bundle>`,
 * `preKeys` and `kyberPreKeys` go into `<prekeys>`.
 */
export interface PublishableBundle {
  readonly deviceId: DeviceId;
  readonly registrationId: number;
  readonly identityKey: string;
  readonly signedPreKey: SignedPublicKey;
  readonly lastResortKyberPreKey: SignedPublicKey;
  readonly preKeys: readonly OneTimePublicKey[];
  readonly kyberPreKeys: readonly SignedPublicKey[];
}

/** One-time keys for a replenishment `<prekeys>` set (§11.5). */
export interface PublishablePreKeys {
  readonly deviceId: DeviceId;
  readonly preKeys: readonly OneTimePublicKey[];
  readonly kyberPreKeys: readonly SignedPublicKey[];
}

/** The content of a `<rotate>` set (§11.6). */
export interface PublishableRotation {
  readonly deviceId: DeviceId;
  readonly signedPreKey: SignedPublicKey;
  readonly lastResortKyberPreKey: SignedPublicKey;
}

/** A bundle fetched from the key directory (§11.4), as the codec parsed it. */
export interface RemoteBundle {
  readonly deviceId: DeviceId;
  readonly registrationId: number;
  readonly identityKey: string;
  readonly signedPreKey: SignedPublicKey;
  /** A one-time Kyber prekey, or the last-resort one: the receiver cannot tell and need not. */
  readonly kyberPreKey: SignedPublicKey;
  readonly preKey: OneTimePublicKey | null;
}

/** One `<key>` of an `<encrypted>` header (§12.1). */
export interface EncryptedKey {
  readonly jid: BareJid;
  readonly rid: DeviceId;
  /** True iff the ciphertext is a PreKeySignalMessage. */
  readonly kex: boolean;
  readonly ciphertext: Uint8Array;
}

/** A received `<key>` addressed to this device, with the authenticated sender (§12.4). */
export interface InboundKey {
  readonly senderJid: BareJid;
  readonly senderDevice: DeviceId;
  readonly kex: boolean;
  readonly ciphertext: Uint8Array;
}

/**
 * A contact's identity key changed. Recorded by the transaction that records the new key (see
 * SignalCrypto.recordIdentityChanges), emitted after it committed, so that the portal can show
 * "security code changed".
 */
export interface IdentityChangeEvent {
  /** Unique per change: keys its durable record and, in the core, its one notice. */
  readonly id: string;
  readonly localJid: BareJid;
  readonly remoteJid: BareJid;
  readonly previousKey: Uint8Array;
  readonly currentKey: Uint8Array;
  /** The contact had been marked verified; the mark is now cleared (§12.6). */
  readonly wasVerified: boolean;
  /** In `hold` mode, sending to the contact is blocked until `confirmIdentity`. */
  readonly sendingHeld: boolean;
  readonly at: number;
}

export type IdentityChangePolicy = "warn" | "hold";

export interface SafetyNumber {
  /** 60 digits. */
  readonly digits: string;
  /** The digits in 12 groups of 5, as users compare them. */
  readonly groups: readonly string[];
  /** Bytes for a QR code (`scannableFingerprint().toBuffer()`). */
  readonly scannable: Uint8Array;
}

export interface IdentityStatus {
  readonly identityKey: Uint8Array;
  readonly firstSeenAt: number;
  readonly changedAt: number | null;
  readonly verifiedAt: number | null;
  /** False while a change awaits confirmation in `hold` mode. */
  readonly sendingAllowed: boolean;
}
