import { accessTokenOf } from "../auth.js";
import {
  MatrixError,
  exclusive,
  forbidden,
  missingParam,
  missingToken,
  unknownToken,
} from "../errors.js";
import { isObject } from "../events.js";
import { jsonBody, ok, type HsRequest } from "../router.js";
import type { RouteContext } from "../server.js";
import type { Appservice } from "../appservice/registration.js";
import type { HomeserverCore } from "../core.js";

const VERSIONS: Record<string, string[]> = {
  "synapse-1.67": [
    "r0.0.1",
    "r0.1.0",
    "r0.2.0",
    "r0.3.0",
    "r0.4.0",
    "r0.5.0",
    "r0.6.0",
    "r0.6.1",
    "v1.1",
    "v1.2",
    "v1.3",
  ],
  "synapse-1.92": [
    "r0.0.1",
    "r0.1.0",
    "r0.2.0",
    "r0.3.0",
    "r0.4.0",
    "r0.5.0",
    "r0.6.0",
    "r0.6.1",
    "v1.1",
    "v1.2",
    "v1.3",
    "v1.4",
    "v1.5",
    "v1.6",
  ],
  // Synapse 1.120+ (enable_authenticated_media on by default): r0 still served, v1.11 media.
  "synapse-current": [
    "r0.6.1",
    "v1.1",
    "v1.2",
    "v1.3",
    "v1.4",
    "v1.5",
    "v1.6",
    "v1.7",
    "v1.8",
    "v1.9",
    "v1.10",
    "v1.11",
    "v1.12",
  ],
  spec: ["v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6", "v1.7", "v1.8", "v1.9", "v1.10", "v1.11"],
};

/** Versions, login, registration, whoami, logout and capabilities. */
export function registerAccountRoutes(ctx: RouteContext): void {
  const core = ctx.core;
  ctx.router.add("GET", "/_matrix/client/versions", () =>
    ok({ versions: VERSIONS[core.profile] ?? [], unstable_features: {} }),
  );

  ctx.client("GET", "/login", () =>
    ok({ flows: [{ type: "m.login.password" }, { type: "m.login.application_service" }] }),
  );
  ctx.client("POST", "/login", (req) => ok(login(core, req)));

  ctx.client("POST", "/register", (req) => register(core, req));
  ctx.client("GET", "/register/available", (req) => {
    const localpart = req.query.get("username");
    if (localpart === null) throw missingParam("username is required");
    const userId = core.users.userIdFor(localpart);
    if (core.users.get(userId) !== undefined)
      throw new MatrixError(400, "M_USER_IN_USE", `${userId} is taken`);
    if (core.appservices.exclusiveUserOwner(userId) !== undefined) {
      throw exclusive(`${userId} is reserved by an application service`);
    }
    return ok({ available: true });
  });

  ctx.authed("GET", "/account/whoami", (_req, who) => {
    const body: Record<string, unknown> = { user_id: who.userId, is_guest: false };
    if (who.deviceId !== null) body["device_id"] = who.deviceId;
    return ok(body);
  });
  ctx.authed("POST", "/logout", (_req, who) => {
    // Logging out deletes the device and its keys (spec; a device-list change for others).
    if (who.appservice === undefined && who.deviceId !== null) {
      core.users.endSession(who.accessToken);
      core.e2ee.deleteDevice(who.userId, who.deviceId);
    }
    return ok({});
  });
  ctx.authed("POST", "/logout/all", (_req, who) => {
    core.users.endAllSessions(who.userId);
    for (const device of core.e2ee.devices.list(who.userId))
      core.e2ee.deleteDevice(who.userId, device.deviceId);
    return ok({});
  });

  ctx.authed("GET", "/capabilities", () =>
    ok({
      capabilities: {
        "m.change_password": { enabled: false },
        "m.room_versions": {
          default: core.defaultRoomVersion,
          available: Object.fromEntries(
            ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"].map((v) => [v, "stable"]),
          ),
        },
        "m.set_displayname": { enabled: true },
        "m.set_avatar_url": { enabled: true },
        "m.3pid_changes": { enabled: false },
      },
    }),
  );
}

function identifierUser(core: HomeserverCore, body: Record<string, unknown>): string {
  const identifier = body["identifier"];
  let user: unknown = body["user"];
  if (isObject(identifier)) {
    if (identifier["type"] !== "m.id.user") {
      throw new MatrixError(
        400,
        "M_UNKNOWN",
        `Unsupported identifier type ${String(identifier["type"])}`,
      );
    }
    user = identifier["user"];
  }
  if (typeof user !== "string" || user === "") throw missingParam("A user identifier is required");
  return user.startsWith("@") ? user : core.users.userIdFor(user);
}

function login(core: HomeserverCore, req: HsRequest): Record<string, unknown> {
  const body = jsonBody(req);
  const userId = identifierUser(core, body);
  if (body["type"] === "m.login.password") {
    const password = body["password"];
    if (typeof password !== "string" || !core.users.checkPassword(userId, password)) {
      throw forbidden("Invalid username or password");
    }
  } else if (body["type"] === "m.login.application_service") {
    const as = requireAppservice(core, req);
    if (!as.ownsUser(userId)) throw exclusive(`${userId} is outside the namespace of ${as.id}`);
    if (core.users.get(userId) === undefined) throw forbidden(`${userId} is not registered`);
  } else {
    throw new MatrixError(400, "M_UNKNOWN", `Unsupported login type ${String(body["type"])}`);
  }
  const deviceId = typeof body["device_id"] === "string" ? body["device_id"] : undefined;
  const name = body["initial_device_display_name"];
  const session = core.startSession(userId, deviceId, typeof name === "string" ? name : undefined);
  return {
    user_id: userId,
    access_token: session.accessToken,
    device_id: session.deviceId,
    home_server: core.serverName,
  };
}

/** `m.login.application_service` needs the as_token; without a valid one the spec says 401. */
function requireAppservice(core: HomeserverCore, req: HsRequest): Appservice {
  const token = accessTokenOf(req);
  if (token === undefined) throw missingToken();
  const as = core.appservices.byToken(token);
  if (as === undefined) throw unknownToken("The access token is not an application service token");
  return as;
}

function register(core: HomeserverCore, req: HsRequest): { status: number; json: unknown } {
  const body = jsonBody(req);
  if (req.query.get("kind") === "guest") throw forbidden("Guest access is disabled");
  const username = body["username"];
  if (body["type"] === "m.login.application_service") {
    const as = requireAppservice(core, req);
    if (typeof username !== "string") throw missingParam("username is required");
    const userId = username.startsWith("@") ? username : core.users.userIdFor(username);
    const localpart = userId.slice(1, userId.lastIndexOf(":"));
    if (!as.ownsUser(userId)) throw exclusive(`${userId} is outside the namespace of ${as.id}`);
    const owner = core.appservices.exclusiveUserOwner(userId);
    if (owner !== undefined && owner !== as)
      throw exclusive(`${userId} is reserved by ${owner.id}`);
    core.users.create(localpart, { appserviceId: as.id });
    return { status: 200, json: sessionFor(core, userId, body) };
  }
  const localpart =
    typeof username === "string" ? username.toLowerCase() : `user${Date.now().toString(36)}`;
  const userId = core.users.userIdFor(localpart);
  if (core.appservices.exclusiveUserOwner(userId) !== undefined) {
    throw exclusive(`${userId} is reserved by an application service`);
  }
  if (core.users.get(userId) !== undefined)
    throw new MatrixError(400, "M_USER_IN_USE", `${userId} is taken`);
  const auth = body["auth"];
  // User-interactive auth with a single dummy stage, as a homeserver without captcha offers it.
  if (!isObject(auth) || auth["type"] !== "m.login.dummy") {
    return {
      status: 401,
      json: { flows: [{ stages: ["m.login.dummy"] }], params: {}, session: "dummy" },
    };
  }
  const password = typeof body["password"] === "string" ? body["password"] : undefined;
  core.users.create(localpart, password === undefined ? {} : { password });
  return { status: 200, json: sessionFor(core, userId, body) };
}

function sessionFor(
  core: HomeserverCore,
  userId: string,
  body: Record<string, unknown>,
): Record<string, unknown> {
  if (body["inhibit_login"] === true) return { user_id: userId, home_server: core.serverName };
  const deviceId = typeof body["device_id"] === "string" ? body["device_id"] : undefined;
  const name = body["initial_device_display_name"];
  const session = core.startSession(userId, deviceId, typeof name === "string" ? name : undefined);
  return {
    user_id: userId,
    access_token: session.accessToken,
    device_id: session.deviceId,
    home_server: core.serverName,
  };
}
