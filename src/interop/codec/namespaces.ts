/** Namespaces of PROTOCOL.md §6. */
export const NS = {
  component: "jabber:component:accept",
  core: "urn:interop:core:0",
  identity: "urn:interop:identity:0",
  discovery: "urn:interop:discovery:0",
  keys: "urn:interop:keys:0",
  e2ee: "urn:interop:e2ee:0",
  envelope: "urn:interop:envelope:0",
  content: "urn:interop:content:0",
  media: "urn:interop:media:0",
  delivery: "urn:interop:delivery:0",
  abuse: "urn:interop:abuse:0",
  groups: "urn:interop:groups:0",
  errors: "urn:interop:errors:0",
  sid: "urn:xmpp:sid:0",
  chatstates: "http://jabber.org/protocol/chatstates",
  ping: "urn:xmpp:ping",
  stanzas: "urn:ietf:params:xml:ns:xmpp-stanzas",
} as const;

/**
 * Optional feature vars that `hello` may list (§8.3). The phase-1 namespaces are mandatory for 0.x
 * and are never listed.
 */
export const FEATURE = {
  groups: NS.groups,
  reply: `${NS.content}#reply`,
  reactions: `${NS.content}#reactions`,
  edit: `${NS.content}#edit`,
  retract: `${NS.content}#retract`,
  location: `${NS.content}#location`,
  contact: `${NS.content}#contact`,
  nick: `${NS.content}#nick`,
  call: `${NS.content}#call`,
  disappearing: `${NS.content}#disappearing`,
  displayed: `${NS.delivery}#displayed`,
  chatstates: NS.chatstates,
} as const;

export type FeatureVar = (typeof FEATURE)[keyof typeof FEATURE];

export const ALL_FEATURES: readonly FeatureVar[] = Object.values(FEATURE);

/** The protocol version this codec implements (§7.1). */
export const PROTOCOL_VERSION = "0.2";

/** The gatekeeper's domains (§5.1). */
export const GATEKEEPER_DOMAIN = "wa.example";
export const GROUP_DOMAIN = "g.wa.example";
