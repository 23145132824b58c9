import type { Response } from "express";

/**
 * Error codes of the provisioning API: the Matrix spec's (M_*) and mautrix's (FI.MAU.*), so that
 * clients written for mautrix bridges understand them.
 */
type ErrorCode =
  | "M_MISSING_TOKEN"
  | "M_UNKNOWN_TOKEN"
  | "M_FORBIDDEN"
  | "M_NOT_JSON"
  | "M_BAD_JSON"
  | "M_MISSING_PARAM"
  | "M_INVALID_PARAM"
  | "M_NOT_FOUND"
  | "M_UNRECOGNIZED"
  | "M_BAD_STATE"
  | "M_LIMIT_EXCEEDED"
  | "M_TOO_LARGE"
  | "M_UNKNOWN"
  | "FI.MAU.NOT_LOGGED_IN";

/** A refusal with its HTTP status; thrown by handlers and answered as `{errcode, error}`. */
export class ProvisioningError extends Error {
  constructor(
    readonly status: number,
    readonly errcode: ErrorCode,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = "ProvisioningError";
  }
}

export function sendError(
  res: Response,
  status: number,
  errcode: ErrorCode,
  error: string,
  extra: Record<string, unknown> = {},
): void {
  res.status(status).json({ errcode, error, ...extra });
}
