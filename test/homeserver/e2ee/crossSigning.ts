import type { Requester } from "../auth.js";
import type { HomeserverCore } from "../core.js";
import { MatrixError, invalidParam } from "../errors.js";
import { isObject } from "../events.js";
import type { JsonObject } from "../types.js";
import { publicKeyOf, type CrossSigningUsage } from "./devices.js";
import { canonicalJson, ed25519Key, hasValidSignature } from "./signing.js";
import { requireUserInteractiveAuth } from "./uia.js";

/** Cross-signing keys and signatures (spec "Cross-signing"), as the /keys routes apply them. */

const USAGE_FIELDS: [string, CrossSigningUsage][] = [
  ["master_key", "master"],
  ["self_signing_key", "self_signing"],
  ["user_signing_key", "user_signing"],
];

/**
 * `POST /keys/device_signing/upload`: the first upload needs no user-interactive auth (MSC3967,
 * spec v1.11), re-uploading the same keys neither; replacing keys does. Sub-keys must be signed by
 * the (new or existing) master key.
 */
export function uploadCrossSigningKeys(
  core: HomeserverCore,
  who: Requester,
  body: JsonObject,
): void {
  const devices = core.e2ee.devices;
  const uploads: [CrossSigningUsage, JsonObject][] = [];
  for (const [field, usage] of USAGE_FIELDS) {
    const key = body[field];
    if (key === undefined) continue;
    if (!isObject(key)) throw invalidParam(`${field} must be an object`);
    assertCrossSigningKey(who.userId, usage, key, field);
    uploads.push([usage, key]);
  }
  if (uploads.length === 0) return;
  const replacing = uploads.some(([usage, key]) => {
    const existing = devices.rawCrossSigningKey(who.userId, usage);
    return existing !== undefined && canonicalJson(existing) !== canonicalJson(key);
  });
  if (replacing && devices.rawCrossSigningKey(who.userId, "master") !== undefined) {
    requireUserInteractiveAuth(core, who, body);
  }
  const newMaster = uploads.find(([usage]) => usage === "master")?.[1];
  const master = newMaster ?? devices.rawCrossSigningKey(who.userId, "master");
  const masterKey = master === undefined ? undefined : publicKeyOf(master);
  for (const [usage, key] of uploads) {
    if (usage === "master") continue;
    if (masterKey === undefined) throw invalidParam(`A ${usage} key needs a master key`);
    if (!hasValidSignature(key, who.userId, `ed25519:${masterKey}`, masterKey)) {
      throw new MatrixError(
        400,
        "M_INVALID_SIGNATURE",
        `The ${usage} key is not signed by the master key`,
      );
    }
  }
  for (const [usage, key] of uploads) devices.setCrossSigningKey(who.userId, usage, key);
  core.e2ee.deviceListChanged(who.userId);
}

function assertCrossSigningKey(
  userId: string,
  usage: CrossSigningUsage,
  key: JsonObject,
  field: string,
): void {
  const usages = key["usage"];
  if (key["user_id"] !== userId) throw invalidParam(`${field}.user_id must be ${userId}`);
  if (!Array.isArray(usages) || !usages.includes(usage))
    throw invalidParam(`${field}.usage must include ${usage}`);
  const keys = key["keys"];
  const entries = isObject(keys) ? Object.entries(keys) : [];
  const [id, value] = entries[0] ?? [];
  if (entries.length !== 1 || typeof value !== "string" || id !== `ed25519:${value}`) {
    throw invalidParam(`${field}.keys must hold exactly one ed25519:<public key> entry`);
  }
}

/**
 * `POST /keys/signatures/upload`: the requester's signatures of its own devices (by its
 * self-signing key), of its own master key (by a device) and of others' master keys (by its
 * user-signing key), each verified against the stored key before it is added.
 */
export function uploadSignatures(
  core: HomeserverCore,
  who: Requester,
  body: JsonObject,
): JsonObject {
  const devices = core.e2ee.devices;
  const failures: Record<string, JsonObject> = {};
  const changedUsers = new Set<string>();
  const fail = (userId: string, keyId: string, errcode: string, error: string): void => {
    (failures[userId] ??= {})[keyId] = { errcode, error };
  };
  for (const [targetUser, byKey] of Object.entries(body)) {
    if (!isObject(byKey)) continue;
    for (const [keyId, signed] of Object.entries(byKey)) {
      if (!isObject(signed)) {
        fail(targetUser, keyId, "M_INVALID_PARAM", "Not an object");
        continue;
      }
      const stored = storedKeyObject(core, targetUser, keyId);
      if (stored === undefined) {
        fail(targetUser, keyId, "M_NOT_FOUND", "No such device or cross-signing key");
        continue;
      }
      if (signedPart(stored) !== signedPart(signed)) {
        fail(
          targetUser,
          keyId,
          "M_INVALID_SIGNATURE",
          "The signed object differs from the stored key",
        );
        continue;
      }
      const mine = isObject(signed["signatures"]) ? signed["signatures"][who.userId] : undefined;
      if (!isObject(mine)) {
        fail(targetUser, keyId, "M_INVALID_SIGNATURE", `No signature by ${who.userId}`);
        continue;
      }
      const valid: JsonObject = {};
      const storedSigs = isObject(stored["signatures"])
        ? stored["signatures"][who.userId]
        : undefined;
      for (const signerKeyId of Object.keys(mine)) {
        // Signatures the stored key already carries (its self-signature) are not new ones.
        if (isObject(storedSigs) && storedSigs[signerKeyId] === mine[signerKeyId]) continue;
        const signerKey = signerPublicKey(core, who.userId, signerKeyId);
        if (
          signerKey !== undefined &&
          hasValidSignature(signed, who.userId, signerKeyId, signerKey)
        ) {
          valid[signerKeyId] = mine[signerKeyId];
        }
      }
      if (Object.keys(valid).length === 0) {
        fail(targetUser, keyId, "M_INVALID_SIGNATURE", "No valid signature by a known key");
        continue;
      }
      devices.addSignatures(targetUser, keyId, { [who.userId]: valid });
      changedUsers.add(targetUser);
    }
  }
  for (const userId of changedUsers) core.e2ee.deviceListChanged(userId);
  return failures;
}

/** A device's keys (key id = device id) or a cross-signing key (key id = its public key). */
function storedKeyObject(
  core: HomeserverCore,
  userId: string,
  keyId: string,
): JsonObject | undefined {
  const devices = core.e2ee.devices;
  const device = devices.get(userId, keyId);
  if (device?.keys !== undefined) return device.keys;
  for (const usage of ["master", "self_signing", "user_signing"] as const) {
    const key = devices.rawCrossSigningKey(userId, usage);
    if (key !== undefined && publicKeyOf(key) === keyId) return key;
  }
  return undefined;
}

/** The signer's public key for `ed25519:<device id>` or `ed25519:<cross-signing public key>`. */
function signerPublicKey(
  core: HomeserverCore,
  userId: string,
  signerKeyId: string,
): string | undefined {
  if (!signerKeyId.startsWith("ed25519:")) return undefined;
  const id = signerKeyId.slice("ed25519:".length);
  const device = core.e2ee.devices.get(userId, id);
  if (device?.keys !== undefined) return ed25519Key(device.keys["keys"], signerKeyId);
  for (const usage of ["master", "self_signing", "user_signing"] as const) {
    const key = core.e2ee.devices.rawCrossSigningKey(userId, usage);
    if (key !== undefined && publicKeyOf(key) === id) return id;
  }
  return undefined;
}

function signedPart(object: JsonObject): string {
  const { signatures: _s, unsigned: _u, ...rest } = object;
  return canonicalJson(rest);
}
