import { generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import { canonicalJson } from "./e2ee/signing.js";
import type { JsonObject } from "./types.js";

/** Unpadded standard base64, the spec's encoding of keys and signatures. */
const b64 = (bytes: Buffer): string => bytes.toString("base64").replace(/=+$/, "");

/** An Ed25519 key pair signing JSON the way Matrix clients do (for raw-API tests). */
export class TestSigningKey {
  readonly publicKey: string;
  private readonly privateKey: KeyObject;

  constructor() {
    const pair = generateKeyPairSync("ed25519");
    this.privateKey = pair.privateKey;
    const jwk = pair.publicKey.export({ format: "jwk" });
    this.publicKey = b64(Buffer.from(jwk.x ?? "", "base64url"));
  }

  /** Returns `object` with `signatures[userId][keyId]` added. */
  sign<T extends JsonObject>(object: T, userId: string, keyId: string): T {
    const { signatures, unsigned: _u, ...signed } = object as JsonObject;
    const signature = b64(sign(null, Buffer.from(canonicalJson(signed), "utf8"), this.privateKey));
    const existing = (signatures ?? {}) as Record<string, JsonObject>;
    return {
      ...object,
      signatures: { ...existing, [userId]: { ...existing[userId], [keyId]: signature } },
    };
  }
}

/** A device's identity keys and the signed objects a client uploads for it. */
export class TestDevice {
  readonly signing = new TestSigningKey();
  private nextKey = 0;

  constructor(
    readonly userId: string,
    readonly deviceId: string,
  ) {}

  deviceKeys(): JsonObject {
    return this.signing.sign(
      {
        user_id: this.userId,
        device_id: this.deviceId,
        algorithms: ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
        keys: {
          [`curve25519:${this.deviceId}`]: b64(Buffer.alloc(32, 7)),
          [`ed25519:${this.deviceId}`]: this.signing.publicKey,
        },
      },
      this.userId,
      `ed25519:${this.deviceId}`,
    );
  }

  /** `count` new signed curve25519 keys keyed `signed_curve25519:<id>` (fallback ones marked). */
  curveKeys(count: number, fallback = false): JsonObject {
    const out: JsonObject = {};
    for (let i = 0; i < count; i++) {
      const id = `AAAA${(this.nextKey++).toString().padStart(3, "0")}`;
      const key: JsonObject = { key: b64(Buffer.alloc(32, this.nextKey)) };
      if (fallback) key["fallback"] = true;
      out[`signed_curve25519:${id}`] = this.signing.sign(
        key,
        this.userId,
        `ed25519:${this.deviceId}`,
      );
    }
    return out;
  }
}

/** A cross-signing key object of `usage`, signed by `signer` when given. */
export function crossSigningKey(
  userId: string,
  usage: "master" | "self_signing" | "user_signing",
  key: TestSigningKey,
  signer?: TestSigningKey,
): JsonObject {
  const object: JsonObject = {
    user_id: userId,
    usage: [usage],
    keys: { [`ed25519:${key.publicKey}`]: key.publicKey },
  };
  return signer === undefined ? object : signer.sign(object, userId, `ed25519:${signer.publicKey}`);
}
