import type { BareJid, DeviceId } from "../../util/ids.js";
import { CodecError } from "./codec-error.js";
import {
  isStanzaErrorCondition,
  type StanzaErrorCondition,
  type StanzaErrorType,
  STANZA_ERROR_TYPES,
} from "./conditions.js";
import { NS } from "./namespaces.js";
import {
  formatTimestamp,
  parseDeviceId,
  parseInteger,
  parseTimestamp,
  parseUserJid,
} from "./primitives.js";
import {
  childrenNamed,
  elementChildren,
  fail,
  nsOf,
  optionalAttr,
  requiredAttr,
  requiredEnumAttr,
  requiredParsedAttr,
  textOf,
} from "./read.js";
import { xml, type XmlElement } from "./xml.js";

export type { StanzaErrorCondition, StanzaErrorType } from "./conditions.js";

/** The application conditions of §18, in `urn:interop:errors:0`. */
export type AppCondition =
  | { name: "hello-required" }
  | { name: "not-enlisted" }
  | { name: "unsupported-version"; supported: string }
  | { name: "not-reachable" }
  | { name: "refused" }
  | { name: "request-pending" }
  /** `scope`: one of §16.3's (messages, new-conversations, …); an unknown one is kept as is. */
  | { name: "rate-limited"; scope: string; retryAfter: number }
  | { name: "stale-device-list"; jid: BareJid; devices: DeviceId[] }
  | { name: "unknown-device" }
  | { name: "unencrypted" }
  | { name: "too-large"; max: number }
  | { name: "bad-signature" }
  | { name: "bad-key" }
  | { name: "identity-mismatch" }
  | { name: "no-bundle"; device: DeviceId }
  | { name: "too-many-devices" }
  | { name: "prekey-limit" }
  | { name: "phone-invalid" }
  | { name: "code-invalid"; attemptsLeft: number }
  | { name: "code-expired" }
  | { name: "locked"; until: Date }
  | { name: "handle-invalid" }
  | { name: "not-member" }
  | { name: "not-admin" }
  | { name: "group-full" }
  /** A condition of a later minor version: kept by name, never an exception (§7.3). */
  | { name: "unknown"; element: string };

type AppConditionName = Exclude<AppCondition["name"], "unknown">;

/** Standard condition and type of each application condition (§18 table). */
export const APP_CONDITION_DEFAULTS: Record<
  AppConditionName,
  { condition: StanzaErrorCondition; type: StanzaErrorType }
> = {
  "hello-required": { condition: "not-authorized", type: "auth" },
  "not-enlisted": { condition: "not-authorized", type: "auth" },
  "unsupported-version": { condition: "feature-not-implemented", type: "cancel" },
  "not-reachable": { condition: "service-unavailable", type: "cancel" },
  refused: { condition: "not-acceptable", type: "cancel" },
  "request-pending": { condition: "policy-violation", type: "wait" },
  "rate-limited": { condition: "resource-constraint", type: "wait" },
  "stale-device-list": { condition: "conflict", type: "modify" },
  "unknown-device": { condition: "item-not-found", type: "modify" },
  unencrypted: { condition: "policy-violation", type: "modify" },
  "too-large": { condition: "policy-violation", type: "modify" },
  "bad-signature": { condition: "bad-request", type: "modify" },
  "bad-key": { condition: "bad-request", type: "modify" },
  "identity-mismatch": { condition: "conflict", type: "cancel" },
  "no-bundle": { condition: "item-not-found", type: "modify" },
  "too-many-devices": { condition: "policy-violation", type: "modify" },
  "prekey-limit": { condition: "policy-violation", type: "modify" },
  "phone-invalid": { condition: "bad-request", type: "modify" },
  "code-invalid": { condition: "not-acceptable", type: "modify" },
  "code-expired": { condition: "not-acceptable", type: "modify" },
  locked: { condition: "policy-violation", type: "wait" },
  "handle-invalid": { condition: "not-acceptable", type: "modify" },
  "not-member": { condition: "forbidden", type: "cancel" },
  "not-admin": { condition: "forbidden", type: "cancel" },
  "group-full": { condition: "not-allowed", type: "cancel" },
};

const APP_NAMES = Object.keys(APP_CONDITION_DEFAULTS) as AppConditionName[];

/** An RFC 6120 stanza error with the optional interop condition and text (§18). */
export interface StanzaError {
  type: StanzaErrorType;
  condition: StanzaErrorCondition;
  app?: AppCondition | undefined;
  text?: string | undefined;
  by?: string | undefined;
}

/**
 * The error for an application condition with the standard condition and type of §18. `too-large`
 * on an upload slot is `not-acceptable` (§14.1): pass it as `condition`.
 */
export function interopError(
  app: Exclude<AppCondition, { name: "unknown" }>,
  options: { condition?: StanzaErrorCondition; text?: string } = {},
): StanzaError {
  const defaults = APP_CONDITION_DEFAULTS[app.name];
  return {
    type: defaults.type,
    condition: options.condition ?? defaults.condition,
    app,
    text: options.text,
  };
}

/** The plain `bad-request` answer for a CodecError (§15.1 step 2), with its app condition if any. */
export function errorForCodecError(err: CodecError): StanzaError {
  const app = err.appCondition;
  if (app !== undefined && (APP_NAMES as string[]).includes(app)) {
    const known = app as AppConditionName;
    if (APP_CONDITION_DEFAULTS[known].condition === err.condition) {
      return {
        type: APP_CONDITION_DEFAULTS[known].type,
        condition: err.condition,
        app: { name: known } as AppCondition,
      };
    }
  }
  return { type: err.condition === "bad-request" ? "modify" : "cancel", condition: err.condition };
}

export function encodeStanzaError(err: StanzaError): XmlElement {
  return xml(
    "error",
    { type: err.type, by: err.by },
    xml(err.condition, { xmlns: NS.stanzas }),
    err.app === undefined ? undefined : encodeAppCondition(err.app),
    err.text === undefined ? undefined : xml("text", { xmlns: NS.stanzas }, err.text),
  );
}

function encodeAppCondition(app: AppCondition): XmlElement | undefined {
  const ns = { xmlns: NS.errors };
  switch (app.name) {
    case "unknown":
      return xml(app.element, ns);
    case "unsupported-version":
      return xml(app.name, { ...ns, supported: app.supported });
    case "rate-limited":
      return xml(app.name, { ...ns, scope: app.scope, "retry-after": app.retryAfter });
    case "stale-device-list":
      return xml(
        app.name,
        { ...ns, jid: app.jid },
        app.devices.map((id) => xml("device", { id })),
      );
    case "too-large":
      return xml(app.name, { ...ns, max: app.max });
    case "no-bundle":
      return xml(app.name, { ...ns, device: app.device });
    case "code-invalid":
      return xml(app.name, { ...ns, "attempts-left": app.attemptsLeft });
    case "locked":
      return xml(app.name, { ...ns, until: formatTimestamp(app.until) });
    default:
      return xml(app.name, ns);
  }
}

/**
 * Decodes an `<error>` element. It must carry a known `type` and exactly one RFC 6120 condition;
 * at most one interop condition is read, and one with unknown name is kept as `unknown`.
 */
export function decodeStanzaError(el: XmlElement): StanzaError {
  if (el.getName() !== "error") fail(el, `expected <error>, got <${el.getName()}>`);
  const type = requiredEnumAttr(el, "type", STANZA_ERROR_TYPES);
  const standard = elementChildren(el).filter(
    (c) => nsOf(c) === NS.stanzas && isStanzaErrorCondition(c.getName()),
  );
  if (standard.length !== 1)
    fail(el, `expected one stanza error condition, got ${standard.length}`);
  const condition = (standard[0] as XmlElement).getName() as StanzaErrorCondition;
  const appElements = elementChildren(el).filter((c) => nsOf(c) === NS.errors);
  if (appElements.length > 1) fail(appElements[1] as XmlElement, "second application condition");
  const texts = childrenNamed(el, "text", NS.stanzas);
  const appEl = appElements[0];
  return {
    type,
    condition,
    app: appEl === undefined ? undefined : decodeAppCondition(appEl),
    text: texts[0] === undefined ? undefined : textOf(texts[0]),
    by: optionalAttr(el, "by"),
  };
}

function decodeAppCondition(el: XmlElement): AppCondition {
  const name = el.getName();
  switch (name) {
    case "unsupported-version":
      return { name, supported: requiredAttr(el, "supported") };
    case "rate-limited":
      return {
        name,
        scope: requiredAttr(el, "scope"),
        retryAfter: requiredParsedAttr(el, "retry-after", parseInteger),
      };
    case "stale-device-list":
      return {
        name,
        jid: requiredParsedAttr(el, "jid", parseUserJid),
        devices: childrenNamed(el, "device", NS.errors).map((d) =>
          requiredParsedAttr(d, "id", parseDeviceId),
        ),
      };
    case "too-large":
      return { name, max: requiredParsedAttr(el, "max", parseInteger) };
    case "no-bundle":
      return { name, device: requiredParsedAttr(el, "device", parseDeviceId) };
    case "code-invalid":
      return { name, attemptsLeft: requiredParsedAttr(el, "attempts-left", parseInteger) };
    case "locked":
      return { name, until: requiredParsedAttr(el, "until", parseTimestamp) };
    default:
      return (APP_NAMES as string[]).includes(name)
        ? ({ name } as AppCondition)
        : { name: "unknown", element: name };
  }
}

// --- bounce classification (§8.2, §15.3) ---------------------------------------------------------

type BounceOutcome =
  /** The XMPP server could not reach the peer's component: keep queued, hello with backoff. */
  | { kind: "peer-offline" }
  /** The gatekeeper holds no hello state: send hello, then retransmit. */
  | { kind: "hello-required" }
  /** Not final: retransmit unchanged after `retryAfterSeconds`, or on `<request-accepted>`. */
  | { kind: "wait"; retryAfterSeconds: number | undefined; onRequestAccepted: boolean }
  /** A final outcome for the stanza. */
  | { kind: "final" };

const OFFLINE_CONDITIONS: readonly StanzaErrorCondition[] = [
  "remote-server-not-found",
  "remote-server-timeout",
];

/**
 * Classifies an error answer to one of our stanzas. `from` is the bounce's sender and `originalTo`
 * the bounced stanza's `to`: only an error from that JID or its domain can be the XMPP server
 * reporting the peer offline (§8.2).
 */
export function classifyBounce(err: StanzaError, from: string, originalTo: string): BounceOutcome {
  const toDomain = domainOf(originalTo);
  const fromPeer =
    from === originalTo || from === toDomain || bareOfJid(from) === bareOfJid(originalTo);
  const offlineCondition =
    OFFLINE_CONDITIONS.includes(err.condition) ||
    (err.condition === "service-unavailable" && err.app === undefined);
  if (offlineCondition && fromPeer) return { kind: "peer-offline" };
  if (err.app?.name === "hello-required") return { kind: "hello-required" };
  if (err.type === "wait") {
    return {
      kind: "wait",
      retryAfterSeconds: err.app?.name === "rate-limited" ? err.app.retryAfter : undefined,
      onRequestAccepted: err.app?.name === "request-pending",
    };
  }
  return { kind: "final" };
}

function bareOfJid(jid: string): string {
  const slash = jid.indexOf("/");
  return slash >= 0 ? jid.slice(0, slash) : jid;
}

function domainOf(jid: string): string {
  const bare = bareOfJid(jid);
  const at = bare.indexOf("@");
  return at >= 0 ? bare.slice(at + 1) : bare;
}

export { CodecError };
