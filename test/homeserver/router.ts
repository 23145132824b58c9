import type { IncomingHttpHeaders } from "node:http";
import { MatrixError } from "./errors.js";
import type { JsonObject } from "./types.js";

/** One parsed HTTP request as route handlers see it. */
export interface HsRequest {
  method: string;
  path: string;
  params: Readonly<Record<string, string>>;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** True when the body was longer than the server's cap and was cut (uploads answer 413). */
  bodyTooLarge: boolean;
  /** Aborts when the client goes away, so long-polls stop waiting. */
  signal: AbortSignal;
}

export interface BinaryReply {
  data: Buffer;
  contentType: string;
  headers?: Record<string, string>;
}

export interface HsReply {
  status?: number;
  json?: unknown;
  /** Extra headers of a JSON reply (e.g. Retry-After). */
  headers?: Record<string, string>;
  binary?: BinaryReply;
}

export type Handler = (req: HsRequest) => Promise<HsReply> | HsReply;

interface Route {
  method: string;
  segments: string[];
  handler: Handler;
}

export interface RouteMatch {
  handler: Handler;
  params: Record<string, string>;
}

/**
 * Matches decoded path segments against patterns such as `/_matrix/client/v3/rooms/:roomId/join`.
 * Segments are percent-decoded before matching because room, event and user ids contain reserved
 * characters (`!`, `$`, `:`, `/` in event ids) that clients encode.
 */
export class Router {
  private readonly routes: Route[] = [];

  add(method: string, pattern: string, handler: Handler): void {
    this.routes.push({ method, segments: splitPath(pattern), handler });
  }

  /** Returns the handler, `"method"` when only the method is wrong (405), or undefined. */
  match(method: string, rawPath: string): RouteMatch | "method" | undefined {
    const segments = splitPath(rawPath).map(safeDecode);
    let pathKnown = false;
    for (const route of this.routes) {
      const params = matchSegments(route.segments, segments);
      if (params === undefined) continue;
      if (route.method === method) return { handler: route.handler, params };
      pathKnown = true;
    }
    return pathKnown ? "method" : undefined;
  }
}

function splitPath(path: string): string[] {
  const parts = path.split("/").slice(1);
  // Clients call both `/pushrules` and `/pushrules/`; treat the trailing slash as insignificant.
  if (parts.length > 0 && parts[parts.length - 1] === "") parts.pop();
  return parts;
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new MatrixError(
      400,
      "M_INVALID_PARAM",
      `Malformed percent-encoding in path segment ${segment}`,
    );
  }
}

function matchSegments(
  pattern: readonly string[],
  actual: readonly string[],
): Record<string, string> | undefined {
  if (pattern.length !== actual.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i] as string;
    const a = actual[i] as string;
    if (p.startsWith(":")) params[p.slice(1)] = a;
    else if (p !== a) return undefined;
  }
  return params;
}

/** Parses the request body as a JSON object, with the spec's M_NOT_JSON / M_BAD_JSON errors. */
export function jsonBody(req: HsRequest): JsonObject {
  if (req.body.length === 0) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(req.body.toString("utf8"));
  } catch (err) {
    throw new MatrixError(400, "M_NOT_JSON", `Request body is not valid JSON: ${String(err)}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new MatrixError(400, "M_BAD_JSON", "Request body must be a JSON object");
  }
  return parsed as JsonObject;
}

export function param(req: HsRequest, name: string): string {
  const value = req.params[name];
  if (value === undefined) throw new Error(`route declares no parameter ${name}`);
  return value;
}

export const ok = (json: unknown = {}): HsReply => ({ status: 200, json });
