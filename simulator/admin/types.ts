import type { Gatekeeper } from "../gatekeeper.js";
import type { SimulatedUsers } from "../users/index.js";

/** What the admin routes act on. */
export interface AdminDeps {
  readonly gatekeeper: Gatekeeper;
  readonly users: SimulatedUsers;
}

export interface RouteInput {
  readonly params: string[];
  readonly query: URLSearchParams;
  readonly body: unknown;
}

export interface RouteResult {
  readonly status?: number;
  readonly body?: unknown;
  /** Bytes instead of JSON (media a simulated user received). */
  readonly raw?: { readonly data: Buffer; readonly type: string };
}
