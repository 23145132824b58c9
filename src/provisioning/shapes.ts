import type { Response } from "express";
import type { IdentifierKind, LoginField, LoginState } from "../core/network.js";
import { BridgeError } from "../util/errors.js";
import type { ContactAddress, MatrixUserId } from "../util/ids.js";
import { ProvisioningError } from "./errors.js";

/** The API's wire shapes: mautrix's JSON for the core's types, and errors as refusals. */

export function cors(res: Response): void {
  res.setHeader("Access-Control-Allow-Origin", "*");
  res.setHeader("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
  res.setHeader("Access-Control-Allow-Headers", "X-Requested-With, Content-Type, Authorization");
}

export function notReachable(): ProvisioningError {
  return new ProvisioningError(
    404,
    "M_NOT_FOUND",
    "This number cannot be reached through the bridge (not on WhatsApp, or not accepting chats " +
      "with third-party apps)",
  );
}

/**
 * An address as a provisioning client sends it: as the network writes it, as a URI of the
 * network's scheme (`tel:+491701234567`), or as leniently as people write it (for phone numbers:
 * spaces, dashes, the digits alone).
 */
export function parseIdentifier(identifier: string, kind: IdentifierKind): ContactAddress {
  const scheme = kind.uriScheme === undefined ? undefined : `${kind.uriScheme}:`;
  const raw = (
    scheme !== undefined && identifier.startsWith(scheme)
      ? identifier.slice(scheme.length)
      : identifier
  ).trim();
  const address = kind.parse(raw) ?? kind.thirdPartyField?.parse(raw);
  if (address === undefined) {
    throw new ProvisioningError(
      400,
      "M_INVALID_PARAM",
      `The identifier is not a valid ${kind.noun} (for example ${kind.example})`,
    );
  }
  return address;
}

/** An address as the provisioning API's `identifiers` list it. */
export function identifierUri(address: ContactAddress, kind: IdentifierKind): string {
  return kind.uriScheme === undefined ? address : `${kind.uriScheme}:${address}`;
}

export function stringRecord(body: unknown): Record<string, string> {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new ProvisioningError(400, "M_BAD_JSON", "The body must be a JSON object of strings");
  }
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(body as Record<string, unknown>)) {
    if (typeof value !== "string") {
      throw new ProvisioningError(400, "M_BAD_JSON", `Field ${key} must be a string`);
    }
    out[key] = value;
  }
  return out;
}

/** mautrix's field types, by the field's role (core/network.ts) and the network's addresses. */
export function fieldJson(field: LoginField, kind: IdentifierKind) {
  const type =
    field.role === "address"
      ? kind.uriScheme === "tel"
        ? "phone_number"
        : "username"
      : field.role === "handle"
        ? "username"
        : field.id === "code"
          ? "2fa_code"
          : "token";
  return {
    type,
    id: field.id,
    name: field.name,
    description: field.description,
    ...(field.pattern === undefined ? {} : { pattern: field.pattern }),
  };
}

export function loginIdOf(
  row: { address: ContactAddress | null; handle: string | null },
  user: MatrixUserId,
): string {
  return row.address ?? row.handle ?? user;
}

/** mautrix's bridge state events for the core's login states. */
export function bridgeState(state: LoginState) {
  const event = {
    connecting: "CONNECTING",
    connected: "CONNECTED",
    "logged-out": "LOGGED_OUT",
    "gatekeeper-unreachable": "TRANSIENT_DISCONNECT",
    "bad-credentials": "BAD_CREDENTIALS",
    "unknown-error": "UNKNOWN_ERROR",
  }[state.code];
  return { state_event: event, reason: state.code, message: state.message };
}

/** What an error thrown by a handler is answered with. */
export function asRefusal(err: unknown): ProvisioningError {
  if (err instanceof ProvisioningError) return err;
  if (err instanceof BridgeError) {
    switch (err.code) {
      case "rate-limited":
        return new ProvisioningError(429, "M_LIMIT_EXCEEDED", err.message, {
          ...(err.retryAt === undefined
            ? {}
            : { retry_after_ms: Math.max(0, err.retryAt.getTime() - Date.now()) }),
        });
      case "not-logged-in":
        return new ProvisioningError(400, "FI.MAU.NOT_LOGGED_IN", err.message);
      case "already-logged-in":
      case "login-step-stale":
        return new ProvisioningError(409, "M_BAD_STATE", err.message);
      case "login-flow-unknown":
        return new ProvisioningError(404, "M_NOT_FOUND", err.message);
      default:
        return new ProvisioningError(502, "M_UNKNOWN", err.message, { reason: err.code });
    }
  }
  return new ProvisioningError(500, "M_UNKNOWN", "Internal error");
}
