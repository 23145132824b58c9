import type { Appservice } from "./appservice/registration.js";
import type { HomeserverCore } from "./core.js";
import { MatrixError, forbidden, missingToken, unknownToken } from "./errors.js";
import type { HsRequest } from "./router.js";

/** Who is making a client-server request. */
export interface Requester {
  userId: string;
  /** Null for appservice requests, which act without a device unless they log in. */
  deviceId: string | null;
  /** Scopes transaction ids: one per device, or per appservice and masqueraded user. */
  tokenKey: string;
  accessToken: string;
  appservice?: Appservice;
}

/** The access token from `Authorization: Bearer` or the deprecated `access_token` query parameter. */
export function accessTokenOf(req: HsRequest): string | undefined {
  const header = req.headers.authorization;
  if (typeof header === "string") {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (match?.[1] !== undefined) return match[1];
  }
  return req.query.get("access_token") ?? undefined;
}

/**
 * Resolves the requester, with the spec's identity assertion for appservices: `?user_id=` must be in
 * one of its user namespaces (or be its sender), and, as on Synapse, already registered.
 */
export function authenticate(core: HomeserverCore, req: HsRequest): Requester {
  const token = accessTokenOf(req);
  if (token === undefined) throw missingToken();
  const appservice = core.appservices.byToken(token);
  if (appservice !== undefined) {
    const userId = req.query.get("user_id") ?? appservice.senderId;
    if (!appservice.ownsUser(userId)) {
      throw forbidden(`Application service ${appservice.id} cannot masquerade as ${userId}`);
    }
    if (core.users.get(userId) === undefined) {
      throw forbidden(`Application service has not registered this user (${userId})`);
    }
    // MSC3202 device masquerading; Synapse refuses an unknown device with 400 M_FORBIDDEN.
    const deviceId = req.query.get("org.matrix.msc3202.device_id");
    if (deviceId !== null && core.e2ee.devices.get(userId, deviceId) === undefined) {
      throw new MatrixError(
        400,
        "M_FORBIDDEN",
        `Application service trying to use a device that doesn't exist ('${deviceId}' for ${userId})`,
      );
    }
    return {
      userId,
      deviceId,
      tokenKey: `as:${appservice.id}:${userId}${deviceId === null ? "" : `:${deviceId}`}`,
      accessToken: token,
      appservice,
    };
  }
  const session = core.users.session(token);
  if (session === undefined) throw unknownToken("Unknown access token");
  return {
    userId: session.userId,
    deviceId: session.deviceId,
    tokenKey: `device:${session.userId}:${session.deviceId}`,
    accessToken: token,
  };
}

/** The appservice whose as_token authenticates the request, for endpoints only they may call. */
export function appserviceOf(core: HomeserverCore, req: HsRequest): Appservice | undefined {
  const token = accessTokenOf(req);
  return token === undefined ? undefined : core.appservices.byToken(token);
}

export function assertSelf(requester: Requester, userId: string, what: string): void {
  if (requester.userId !== userId) throw forbidden(`Cannot ${what} for another user (${userId})`);
}
