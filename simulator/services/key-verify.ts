import { KEMPublicKey, PublicKey } from "@signalapp/libsignal-client";
import type { KyberPreKey, SignedPreKey } from "../../src/interop/codec/index.js";
import { refuse } from "../errors.js";

const view = (bytes: Uint8Array): Uint8Array<ArrayBuffer> =>
  new Uint8Array(bytes) as Uint8Array<ArrayBuffer>;

/** The user's identity key as libsignal reads it; unreadable bytes are `bad-key` (§11.1). */
export function identityKeyOf(bytes: Uint8Array): PublicKey {
  try {
    return PublicKey.deserialize(view(bytes));
  } catch {
    throw refuse({ name: "bad-key" }, "identity key does not deserialize");
  }
}

/**
 * Verifies a signed prekey or Kyber prekey against the identity key (§11.1): malformed keys are
 * `bad-key`, a wrong signature `bad-signature`.
 */
export function verifySigned(
  identity: PublicKey,
  key: SignedPreKey | KyberPreKey,
  kind: "ec" | "kyber",
): void {
  try {
    if (kind === "ec") PublicKey.deserialize(view(key.publicKey));
    else KEMPublicKey.deserialize(view(key.publicKey));
  } catch {
    throw refuse({ name: "bad-key" }, `${kind} prekey ${key.id} does not deserialize`);
  }
  let ok = false;
  try {
    ok = identity.verify(view(key.publicKey), view(key.signature));
  } catch {
    ok = false;
  }
  if (!ok) throw refuse({ name: "bad-signature" }, `signature of ${kind} prekey ${key.id} invalid`);
}

/** A one-time EC prekey must at least be a readable public key (§11.1). */
export function checkEcKey(key: { id: number; publicKey: Uint8Array }): void {
  try {
    PublicKey.deserialize(view(key.publicKey));
  } catch {
    throw refuse({ name: "bad-key" }, `prekey ${key.id} does not deserialize`);
  }
}
