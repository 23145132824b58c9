import type { Requester } from "../auth.js";
import type { HomeserverCore } from "../core.js";
import type { Device } from "../e2ee/devices.js";
import { requireUserInteractiveAuth } from "../e2ee/uia.js";
import { invalidParam, notFound } from "../errors.js";
import { jsonBody, ok, param } from "../router.js";
import type { RouteContext } from "../server.js";
import type { JsonObject } from "../types.js";

/** Device management (client-server "Device management"). */
export function registerDeviceRoutes(ctx: RouteContext): void {
  const core = ctx.core;
  ctx.authed("GET", "/devices", (_req, who) =>
    ok({ devices: core.e2ee.devices.list(who.userId).map(describe) }),
  );
  ctx.authed("GET", "/devices/:deviceId", (req, who) =>
    ok(describe(own(core, who, param(req, "deviceId")))),
  );
  ctx.authed("PUT", "/devices/:deviceId", (req, who) => {
    const deviceId = param(req, "deviceId");
    const name = jsonBody(req)["display_name"];
    if (name !== undefined && typeof name !== "string")
      throw invalidParam("display_name must be a string");
    // MSC4190: an appservice that manages its users' devices creates one by naming it.
    if (
      core.e2ee.devices.get(who.userId, deviceId) === undefined &&
      who.appservice?.registration["io.element.msc4190"] === true
    ) {
      core.e2ee.devices.ensure(who.userId, deviceId, typeof name === "string" ? name : undefined);
      core.e2ee.deviceListChanged(who.userId);
      return { status: 201, json: {} };
    }
    const device = own(core, who, deviceId);
    if (typeof name === "string" && name !== device.displayName) {
      device.displayName = name;
      core.e2ee.deviceListChanged(who.userId);
    }
    return ok({});
  });
  ctx.authed("DELETE", "/devices/:deviceId", (req, who) => {
    const deviceId = param(req, "deviceId");
    own(core, who, deviceId);
    requireUserInteractiveAuth(core, who, jsonBody(req));
    core.e2ee.deleteDevice(who.userId, deviceId);
    return ok({});
  });
  ctx.authed("POST", "/delete_devices", (req, who) => {
    const body = jsonBody(req);
    const ids = body["devices"];
    if (!Array.isArray(ids) || !ids.every((d) => typeof d === "string"))
      throw invalidParam("devices must be a list of device ids");
    requireUserInteractiveAuth(core, who, body);
    for (const id of ids) core.e2ee.deleteDevice(who.userId, id);
    return ok({});
  });
}

function own(core: HomeserverCore, who: Requester, deviceId: string): Device {
  const device = core.e2ee.devices.get(who.userId, deviceId);
  if (device === undefined) throw notFound(`No device ${deviceId}`);
  return device;
}

function describe(device: Device): JsonObject {
  return {
    device_id: device.deviceId,
    display_name: device.displayName,
    last_seen_ip: "127.0.0.1",
    last_seen_ts: device.lastSeenTs,
  };
}
