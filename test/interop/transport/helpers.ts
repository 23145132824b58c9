import type { XmlElement } from "../../../src/interop/codec/xml.js";
import {
  ComponentConnection,
  type ComponentConnectionOptions,
  type ConnectionStateCode,
} from "../../../src/interop/transport/component.js";

export const SECRETS = {
  "wa.example": "gatekeeper-secret",
  "g.wa.example": "gatekeeper-secret",
  "matrix.bridge.example": "provider-secret",
} as const;

export type TestDomain = keyof typeof SECRETS;

/** Fast, deterministic reconnects for tests: the cap itself, never a random fraction of it. */
export const FAST_RECONNECT = {
  initialDelayMs: 20,
  maxDelayMs: 200,
  stableAfterMs: 60_000,
  random: () => 0.999,
};

export function makeConnection(
  service: string,
  domain: TestDomain,
  overrides: Partial<ComponentConnectionOptions> = {},
): ComponentConnection {
  return new ComponentConnection({
    service,
    domain,
    secret: SECRETS[domain],
    reconnect: FAST_RECONNECT,
    connectTimeoutMs: 3000,
    ...overrides,
  });
}

/** Polls until `condition` holds; fails with `what` after `timeoutMs`. */
export async function eventually(
  condition: () => boolean,
  what: string,
  timeoutMs = 8000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export async function waitForState(
  connection: ComponentConnection,
  code: ConnectionStateCode,
  timeoutMs = 8000,
): Promise<void> {
  await eventually(
    () => connection.state.code === code,
    `${connection.domain} to reach state ${code} (is ${connection.state.code}: ${connection.state.message})`,
    timeoutMs,
  );
}

/** Collects stanzas a connection receives, for assertions. */
export function inbox(connection: ComponentConnection): XmlElement[] {
  const received: XmlElement[] = [];
  connection.onStanza((stanza) => {
    received.push(stanza);
  });
  return received;
}

export function childElements(el: XmlElement): XmlElement[] {
  return el.children.filter((c): c is XmlElement => typeof c !== "string");
}
