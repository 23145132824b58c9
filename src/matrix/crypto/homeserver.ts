import { BridgeError } from "../../util/errors.js";

/** How long one crypto request to the homeserver may take. */
const REQUEST_TIMEOUT_MS = 30_000;

/**
 * The client-server requests of the crypto layer, made with a device's own access token (every
 * homeserver honours it; device masquerading needs an experimental Synapse flag). Errors are
 * typed once: 429 and 5xx and connection failures are transient, everything else permanent.
 */
export class CryptoHttp {
  constructor(
    private readonly homeserverUrl: string,
    private readonly timeoutMs = REQUEST_TIMEOUT_MS,
  ) {}

  async request(
    method: "GET" | "POST" | "PUT",
    path: string,
    token: string,
    body?: unknown,
  ): Promise<Record<string, unknown>> {
    let response: Response;
    try {
      response = await fetch(new URL(path, this.homeserverUrl), {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        ...(body === undefined
          ? {}
          : { body: typeof body === "string" ? body : JSON.stringify(body) }),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      throw new BridgeError("homeserver-unavailable", `${method} ${pathOnly(path)} failed`, {
        cause: err,
        retryAt: new Date(Date.now() + 1000),
      });
    }
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text === "" ? {} : JSON.parse(text);
    } catch {
      parsed = {};
    }
    if (!response.ok) {
      const errcode = (parsed as { errcode?: unknown }).errcode;
      const transient = response.status === 429 || response.status >= 500;
      throw new BridgeError(
        transient ? "homeserver-unavailable" : "homeserver-refused",
        `${method} ${pathOnly(path)} answered ${response.status} ${typeof errcode === "string" ? errcode : ""}`.trim(),
        transient ? { retryAt: new Date(Date.now() + 1000) } : {},
      );
    }
    return typeof parsed === "object" && parsed !== null ? (parsed as Record<string, unknown>) : {};
  }
}

/** The path without its query (which may name users): what logs and errors may show. */
function pathOnly(path: string): string {
  return path.split("?")[0] ?? path;
}
