import type { Requester } from "../auth.js";
import type { HomeserverCore } from "../core.js";
import type { CrossSigningUsage, Device } from "../e2ee/devices.js";
import { publicKeyOf } from "../e2ee/devices.js";
import { canonicalJson, ed25519Key, hasValidSignature } from "../e2ee/signing.js";
import { requireUserInteractiveAuth } from "../e2ee/uia.js";
import { MatrixError, invalidParam, notFound } from "../errors.js";
import { isObject } from "../events.js";
import { jsonBody, ok, param } from "../router.js";
import type { RouteContext } from "../server.js";
import type { JsonObject } from "../types.js";

/**
 * The client-server end-to-end encryption endpoints (spec "End-to-end encryption" and "Cross-signing"):
 * key upload, query, claim and changes, cross-signing keys and signatures, send-to-device, and
 * the key-backup version (none exists here).
 */
export function registerKeyRoutes(ctx: RouteContext): void {
  const core = ctx.core;
  ctx.authed("POST", "/keys/upload", (req, who) => ok(uploadKeys(core, who, jsonBody(req))));
  ctx.authed("POST", "/keys/query", (req, who) => ok(queryKeys(core, who, jsonBody(req))));
  ctx.authed("POST", "/keys/claim", (req) => ok(claimKeys(core, jsonBody(req))));
  ctx.authed("GET", "/keys/changes", (req, who) => {
    const from = streamToken(req.query.get("from"), "from");
    const to = streamToken(req.query.get("to"), "to");
    return ok(core.e2ee.deviceListChanges(who.userId, from, to));
  });
  ctx.authed("POST", "/keys/device_signing/upload", (req, who) => {
    uploadCrossSigningKeys(core, who, jsonBody(req));
    return ok({});
  });
  ctx.authed("POST", "/keys/signatures/upload", (req, who) =>
    ok({ failures: uploadSignatures(core, who, jsonBody(req)) }),
  );
  ctx.authed("PUT", "/sendToDevice/:type/:txnId", (req, who) => {
    // The spec scopes transaction ids to the access token (here: device or masqueraded user).
    const key = `${who.tokenKey}|${req.method}|${req.path}`;
    if (core.txnResults.has(key)) return ok({});
    const messages = jsonBody(req)["messages"];
    if (!isObject(messages)) throw invalidParam("messages must be an object");
    core.e2ee.sendToDevice(who.userId, param(req, "type"), messages);
    core.txnResults.set(key, "sent");
    return ok({});
  });
  ctx.authed("GET", "/room_keys/version", () => {
    throw notFound("No current backup version");
  });
}

function streamToken(raw: string | null, name: string): number {
  const match = /^s(\d+)$/.exec(raw ?? "");
  if (match?.[1] === undefined) throw invalidParam(`${name} must be a sync token, not ${raw}`);
  return Number(match[1]);
}

function requireDevice(who: Requester): string {
  if (who.deviceId === null) {
    throw invalidParam("To upload keys, you must pass device_id when authenticating");
  }
  return who.deviceId;
}

function uploadKeys(core: HomeserverCore, who: Requester, body: JsonObject): JsonObject {
  const deviceId = requireDevice(who);
  const { device } = core.e2ee.devices.ensure(who.userId, deviceId);
  let changed = false;
  if (body["device_keys"] !== undefined) changed = setDeviceKeys(who, device, body["device_keys"]);
  const otks = body["one_time_keys"];
  if (otks !== undefined) {
    if (!isObject(otks)) throw invalidParam("one_time_keys must be an object");
    for (const [id, key] of Object.entries(otks)) {
      assertKeyId(id);
      const existing = device.oneTimeKeys.get(id);
      // Synapse refuses a different key under an id it holds (and ignores an identical one).
      if (existing !== undefined && canonicalJson(existing) !== canonicalJson(key)) {
        throw new MatrixError(400, "M_UNKNOWN", `One time key ${id} already exists`);
      }
      if (!isSignedKey(key)) throw invalidParam(`One-time key ${id} is malformed`);
    }
    for (const [id, key] of Object.entries(otks)) device.oneTimeKeys.set(id, key);
  }
  const fallbacks = body["fallback_keys"] ?? body["org.matrix.msc2732.fallback_keys"];
  if (fallbacks !== undefined) {
    if (!isObject(fallbacks)) throw invalidParam("fallback_keys must be an object");
    for (const [id, key] of Object.entries(fallbacks)) {
      assertKeyId(id);
      if (!isSignedKey(key)) throw invalidParam(`Fallback key ${id} is malformed`);
      const algorithm = id.slice(0, id.indexOf(":"));
      const previous = device.fallbackKeys.get(algorithm);
      // Re-uploading the same fallback key keeps its used state; a new one is unused.
      const used = previous?.id === id && previous.used;
      device.fallbackKeys.set(algorithm, { id, key, used });
    }
  }
  if (changed) core.e2ee.deviceListChanged(who.userId);
  return { one_time_key_counts: core.e2ee.devices.oneTimeKeyCounts(device) };
}

function assertKeyId(id: string): void {
  if (!/^[^:]+:[^:]+$/.test(id)) throw invalidParam(`Key id ${id} is not algorithm:key_id`);
}

function isSignedKey(key: unknown): boolean {
  return typeof key === "string" || (isObject(key) && typeof key["key"] === "string");
}

/** Stores the device's keys after checking they are its own and self-signed; true if changed. */
function setDeviceKeys(who: Requester, device: Device, keys: unknown): boolean {
  if (!isObject(keys)) throw invalidParam("device_keys must be an object");
  if (keys["user_id"] !== who.userId || keys["device_id"] !== device.deviceId) {
    throw invalidParam(
      `device_keys are for ${String(keys["user_id"])}/${String(keys["device_id"])}, not ${who.userId}/${device.deviceId}`,
    );
  }
  if (!Array.isArray(keys["algorithms"])) throw invalidParam("device_keys.algorithms is missing");
  const keyId = `ed25519:${device.deviceId}`;
  const signingKey = ed25519Key(keys["keys"], keyId);
  if (signingKey === undefined) throw invalidParam(`device_keys.keys has no ${keyId}`);
  if (!hasValidSignature(keys, who.userId, keyId, signingKey)) {
    throw invalidParam(`device_keys are not validly self-signed with ${keyId}`);
  }
  const before = device.keys === undefined ? undefined : canonicalJson(device.keys);
  if (before === canonicalJson(keys)) return false;
  device.keys = keys;
  return true;
}

function requestedUsers(body: JsonObject, field: string): [string, unknown][] {
  const requested = body[field];
  if (!isObject(requested)) throw invalidParam(`${field} must be an object`);
  return Object.entries(requested);
}

function queryKeys(core: HomeserverCore, who: Requester, body: JsonObject): JsonObject {
  const devices = core.e2ee.devices;
  const deviceKeys: Record<string, JsonObject> = {};
  const master: JsonObject = {};
  const selfSigning: JsonObject = {};
  const userSigning: JsonObject = {};
  for (const [userId, wanted] of requestedUsers(body, "device_keys")) {
    const ids = Array.isArray(wanted) ? wanted.filter((d) => typeof d === "string") : [];
    const found: JsonObject = {};
    for (const device of devices.list(userId)) {
      if (ids.length > 0 && !ids.includes(device.deviceId)) continue;
      const keys = devices.queryDeviceKeys(device);
      if (keys !== undefined) found[device.deviceId] = keys;
    }
    deviceKeys[userId] = found;
    const m = devices.crossSigningKey(userId, "master");
    if (m !== undefined) master[userId] = m;
    const s = devices.crossSigningKey(userId, "self_signing");
    if (s !== undefined) selfSigning[userId] = s;
    // A user-signing key is only ever shown to its owner (spec, /keys/query).
    const u = userId === who.userId ? devices.crossSigningKey(userId, "user_signing") : undefined;
    if (u !== undefined) userSigning[userId] = u;
  }
  return {
    device_keys: deviceKeys,
    master_keys: master,
    self_signing_keys: selfSigning,
    user_signing_keys: userSigning,
    failures: {},
  };
}

function claimKeys(core: HomeserverCore, body: JsonObject): JsonObject {
  const claimed: Record<string, Record<string, unknown>> = {};
  for (const [userId, byDevice] of requestedUsers(body, "one_time_keys")) {
    if (!isObject(byDevice)) throw invalidParam(`one_time_keys.${userId} must be an object`);
    for (const [deviceId, algorithm] of Object.entries(byDevice)) {
      if (typeof algorithm !== "string") throw invalidParam("The algorithm must be a string");
      const device = core.e2ee.devices.get(userId, deviceId);
      const key = device === undefined ? undefined : core.e2ee.devices.claim(device, algorithm);
      if (key !== undefined) (claimed[userId] ??= {})[deviceId] = key;
    }
  }
  return { one_time_keys: claimed, failures: {} };
}

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
function uploadCrossSigningKeys(core: HomeserverCore, who: Requester, body: JsonObject): void {
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
function uploadSignatures(core: HomeserverCore, who: Requester, body: JsonObject): JsonObject {
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
      for (const signerKeyId of Object.keys(mine)) {
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
