import type { HomeserverProfile } from "../types.js";

export interface AsCall {
  method: "GET" | "PUT" | "POST";
  /** The versioned path (`/_matrix/app/v1/...`), mapped to the legacy one on Synapse 1.67. */
  path: string;
  legacyPath: string;
  body?: unknown;
  timeoutMs: number;
  signal?: AbortSignal;
}

export interface AsAnswer {
  status: number;
  text: string;
}

/**
 * One HTTP call from the homeserver to an appservice, shaped per profile: Synapse 1.67 used the
 * unversioned legacy paths and sent hs_token only as `?access_token=`; later versions use
 * `/_matrix/app/v1` and only the `Authorization` header (HOMESERVERS.md).
 */
export async function callAppservice(
  profile: HomeserverProfile,
  baseUrl: string,
  hsToken: string,
  call: AsCall,
): Promise<AsAnswer> {
  const base = baseUrl.replace(/\/+$/, "");
  const headers: Record<string, string> = {};
  let url: string;
  if (profile === "synapse-1.67") {
    url = `${base}${call.legacyPath}?access_token=${encodeURIComponent(hsToken)}`;
  } else {
    url = `${base}${call.path}`;
    headers["authorization"] = `Bearer ${hsToken}`;
  }
  if (call.body !== undefined) headers["content-type"] = "application/json";
  const signals = [AbortSignal.timeout(call.timeoutMs)];
  if (call.signal !== undefined) signals.push(call.signal);
  const init: RequestInit = { method: call.method, headers, signal: AbortSignal.any(signals) };
  if (call.body !== undefined) init.body = JSON.stringify(call.body);
  const response = await fetch(url, init);
  return { status: response.status, text: await response.text() };
}

/** True for the errors `fetch` raises when the timeout signal fired. */
export function isTimeout(err: unknown): boolean {
  return err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError");
}
