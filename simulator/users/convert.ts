import type {
  FetchedBundle,
  OneTimePreKeys,
  PublishedBundle,
} from "../../src/interop/codec/index.js";
import { decodeBase64 } from "../../src/interop/crypto/base64.js";
import type { PublishableBundle, RemoteBundle } from "../../src/interop/crypto/types.js";
import { encodeBase64 } from "../../src/interop/codec/index.js";

/** The crypto module speaks base64 strings, the codec bytes: these adapters join the two. */
export function toPublished(b: PublishableBundle, reset = false): PublishedBundle {
  return {
    device: b.deviceId,
    registration: b.registrationId,
    reset,
    identity: decodeBase64(b.identityKey),
    signedPreKey: {
      id: b.signedPreKey.id,
      publicKey: decodeBase64(b.signedPreKey.publicKey),
      signature: decodeBase64(b.signedPreKey.signature),
    },
    lastResortKyberPreKey: {
      id: b.lastResortKyberPreKey.id,
      publicKey: decodeBase64(b.lastResortKyberPreKey.publicKey),
      signature: decodeBase64(b.lastResortKyberPreKey.signature),
      lastResort: true,
    },
    preKeys: toOneTime(b),
  };
}

export function toRemote(b: FetchedBundle): RemoteBundle {
  return {
    deviceId: b.device,
    registrationId: b.registration,
    identityKey: encodeBase64(b.identity),
    signedPreKey: {
      id: b.signedPreKey.id,
      publicKey: encodeBase64(b.signedPreKey.publicKey),
      signature: encodeBase64(b.signedPreKey.signature),
    },
    kyberPreKey: {
      id: b.kyberPreKey.id,
      publicKey: encodeBase64(b.kyberPreKey.publicKey),
      signature: encodeBase64(b.kyberPreKey.signature),
    },
    preKey:
      b.preKey === undefined
        ? null
        : { id: b.preKey.id, publicKey: encodeBase64(b.preKey.publicKey) },
  };
}

export function toOneTime(keys: {
  preKeys: readonly { id: number; publicKey: string }[];
  kyberPreKeys: readonly { id: number; publicKey: string; signature: string }[];
}): OneTimePreKeys {
  return {
    ec: keys.preKeys.map((k) => ({ id: k.id, publicKey: decodeBase64(k.publicKey) })),
    kyber: keys.kyberPreKeys.map((k) => ({
      id: k.id,
      publicKey: decodeBase64(k.publicKey),
      signature: decodeBase64(k.signature),
      lastResort: false,
    })),
  };
}
