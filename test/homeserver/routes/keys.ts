import type { Requester } from "../auth.js";
import type { HomeserverCore } from "../core.js";
import { uploadCrossSigningKeys, uploadSignatures } from "../e2ee/crossSigning.js";
import type { Device } from "../e2ee/devices.js";
import { canonicalJson, ed25519Key, hasValidSignature } from "../e2ee/signing.js";
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
