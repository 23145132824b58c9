import type { JsonObject } from "./types.js";

/** A Matrix standard error response: `{errcode, error, ...extra}` with its HTTP status. */
export class MatrixError extends Error {
  constructor(
    readonly status: number,
    readonly errcode: string,
    message: string,
    readonly extra: JsonObject = {},
  ) {
    super(message);
    this.name = "MatrixError";
  }

  toJson(): JsonObject {
    return { errcode: this.errcode, error: this.message, ...this.extra };
  }
}

export const forbidden = (message: string): MatrixError =>
  new MatrixError(403, "M_FORBIDDEN", message);
export const notFound = (message: string): MatrixError =>
  new MatrixError(404, "M_NOT_FOUND", message);
export const badJson = (message: string): MatrixError =>
  new MatrixError(400, "M_BAD_JSON", message);
export const invalidParam = (message: string): MatrixError =>
  new MatrixError(400, "M_INVALID_PARAM", message);
export const missingParam = (message: string): MatrixError =>
  new MatrixError(400, "M_MISSING_PARAM", message);
export const unknownToken = (message: string): MatrixError =>
  new MatrixError(401, "M_UNKNOWN_TOKEN", message, { soft_logout: false });
export const missingToken = (): MatrixError =>
  new MatrixError(401, "M_MISSING_TOKEN", "Missing access token");
export const exclusive = (message: string): MatrixError =>
  new MatrixError(400, "M_EXCLUSIVE", message);
