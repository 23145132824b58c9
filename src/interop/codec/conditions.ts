/** RFC 6120 §8.3.3 defined stanza error conditions. */
const STANZA_ERROR_CONDITIONS = [
  "bad-request",
  "conflict",
  "feature-not-implemented",
  "forbidden",
  "gone",
  "internal-server-error",
  "item-not-found",
  "jid-malformed",
  "not-acceptable",
  "not-allowed",
  "not-authorized",
  "policy-violation",
  "recipient-unavailable",
  "redirect",
  "registration-required",
  "remote-server-not-found",
  "remote-server-timeout",
  "resource-constraint",
  "service-unavailable",
  "subscription-required",
  "undefined-condition",
  "unexpected-request",
] as const;

export type StanzaErrorCondition = (typeof STANZA_ERROR_CONDITIONS)[number];

export const STANZA_ERROR_TYPES = ["auth", "cancel", "continue", "modify", "wait"] as const;
export type StanzaErrorType = (typeof STANZA_ERROR_TYPES)[number];

export function isStanzaErrorCondition(name: string): name is StanzaErrorCondition {
  return (STANZA_ERROR_CONDITIONS as readonly string[]).includes(name);
}
