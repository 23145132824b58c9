import { createPublicKey, verify } from "node:crypto";
import { isObject } from "../events.js";
import type { JsonObject } from "../types.js";

/**
 * Matrix canonical JSON (spec appendix "Canonical JSON"): object keys sorted by code point, no
 * insignificant whitespace, UTF-8 left unescaped. Numbers here are integers, as the spec requires.
 */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (isObject(value)) {
    const keys = Object.keys(value).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

/** Unpadded standard base64 (the spec's encoding) to bytes; also accepts URL-safe input. */
function unpaddedBase64(text: string): Buffer {
  return Buffer.from(text.replace(/-/g, "+").replace(/_/g, "/"), "base64");
}

/**
 * Checks `object.signatures[signer][keyId]` against the Ed25519 public key `publicKey` (spec
 * appendix "Signing JSON": signatures and unsigned are removed before canonicalising).
 */
export function hasValidSignature(
  object: JsonObject,
  signer: string,
  keyId: string,
  publicKey: string,
): boolean {
  const signatures = object["signatures"];
  const bySigner = isObject(signatures) ? signatures[signer] : undefined;
  const signature = isObject(bySigner) ? bySigner[keyId] : undefined;
  if (typeof signature !== "string") return false;
  const { signatures: _s, unsigned: _u, ...signed } = object;
  const raw = unpaddedBase64(publicKey);
  if (raw.length !== 32) return false;
  try {
    const key = createPublicKey({
      key: { kty: "OKP", crv: "Ed25519", x: raw.toString("base64url") },
      format: "jwk",
    });
    return verify(null, Buffer.from(canonicalJson(signed), "utf8"), key, unpaddedBase64(signature));
  } catch {
    return false;
  }
}

/** The first `ed25519:...` public key of a device-keys or cross-signing-key object. */
export function ed25519Key(keys: unknown, keyId?: string): string | undefined {
  if (!isObject(keys)) return undefined;
  for (const [id, key] of Object.entries(keys)) {
    if (typeof key !== "string") continue;
    if (keyId !== undefined ? id === keyId : id.startsWith("ed25519:")) return key;
  }
  return undefined;
}

/** Merges `signatures` of `from` into a copy of `into` (signatures uploaded later by others). */
export function mergeSignatures(into: JsonObject, from: unknown): JsonObject {
  if (!isObject(from)) return into;
  const merged: Record<string, JsonObject> = {};
  const existing = isObject(into["signatures"]) ? into["signatures"] : {};
  for (const [user, sigs] of Object.entries(existing))
    if (isObject(sigs)) merged[user] = { ...sigs };
  for (const [user, sigs] of Object.entries(from)) {
    if (isObject(sigs)) merged[user] = { ...merged[user], ...sigs };
  }
  return { ...into, signatures: merged };
}
