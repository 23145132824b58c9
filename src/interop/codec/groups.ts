import type { BareJid } from "../../util/ids.js";
import { NS } from "./namespaces.js";
import {
  formatTimestamp,
  parseBareJid,
  parseGroupJid,
  parseInteger,
  parseTimestamp,
  parseUserJid,
} from "./primitives.js";
import {
  childrenNamed,
  enumValue,
  expect,
  fail,
  optionalChild,
  optionalEnumAttr,
  requiredAttr,
  requiredEnumAttr,
  requiredParsedAttr,
  textOf,
} from "./read.js";
import { xml, type XmlElement } from "./xml.js";

export * from "./group-sender.js";

/** Group management and membership events (§17.1, §17.2). */

const GROUP_ROLES = ["admin", "member"] as const;
export type GroupRole = (typeof GROUP_ROLES)[number];
const REJECT_REASONS = ["not-reachable", "refused"] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];
const GROUP_EVENT_TYPES = [
  "created",
  "participants-added",
  "participants-removed",
  "participant-left",
  "subject-changed",
  "admins-promoted",
  "admins-demoted",
] as const;
export type GroupEventType = (typeof GROUP_EVENT_TYPES)[number];
export const GROUP_CHANGES = ["add", "remove", "promote", "demote"] as const;
export type GroupChange = (typeof GROUP_CHANGES)[number];

export interface Participant {
  jid: BareJid;
  /** Absent in requests (create, add, ...), present in results and events. */
  role: GroupRole | undefined;
}

export interface GroupInfo {
  jid: BareJid;
  version: number;
  creator: BareJid;
  created: Date;
  subject: string | undefined;
  participants: Participant[];
  rejected: { jid: BareJid; reason: RejectReason }[];
}

export interface GroupEvent {
  /** `unknown` for a type of a later version; `version` still tells the provider to re-fetch. */
  type: GroupEventType | "unknown";
  rawType: string;
  /** The member who made the change, or `g.wa.example`. */
  by: BareJid;
  version: number;
  participants: Participant[];
  /** Only for `created`. */
  group: GroupInfo | undefined;
  /** Only for `subject-changed`. */
  subject: string | undefined;
}

const participant = (p: Participant): XmlElement =>
  xml("participant", { jid: p.jid, role: p.role });

function decodeParticipants(el: XmlElement): Participant[] {
  const seen = new Set<string>();
  return childrenNamed(el, "participant", NS.groups).map((p) => {
    const jid = requiredParsedAttr(p, "jid", parseUserJid);
    if (seen.has(jid)) fail(p, `participant ${jid} twice`, "jid");
    seen.add(jid);
    return { jid, role: optionalEnumAttr(p, "role", GROUP_ROLES) };
  });
}

function subjectOf(el: XmlElement): string | undefined {
  const subject = optionalChild(el, "subject", NS.groups);
  return subject === undefined ? undefined : textOf(subject);
}

export function encodeCreate(c: {
  subject: string | undefined;
  participants: readonly BareJid[];
}): XmlElement {
  return xml(
    "create",
    { xmlns: NS.groups },
    c.subject === undefined ? undefined : xml("subject", {}, c.subject),
    c.participants.map((jid) => participant({ jid, role: undefined })),
  );
}

export function decodeCreate(el: XmlElement): {
  subject: string | undefined;
  participants: BareJid[];
} {
  expect(el, "create", NS.groups);
  return { subject: subjectOf(el), participants: decodeParticipants(el).map((p) => p.jid) };
}

function groupChildren(g: GroupInfo): XmlElement[] {
  return [
    ...(g.subject === undefined ? [] : [xml("subject", {}, g.subject)]),
    ...g.participants.map(participant),
    ...g.rejected.map((r) => xml("rejected", { jid: r.jid, reason: r.reason })),
  ];
}

function groupAttrs(g: GroupInfo): Record<string, string | number> {
  return {
    jid: g.jid,
    version: g.version,
    creator: g.creator,
    created: formatTimestamp(g.created),
  };
}

/** The `<group>` result of create, info and every modification. */
export function encodeGroupInfo(g: GroupInfo, withNamespace = true): XmlElement {
  return xml(
    "group",
    { xmlns: withNamespace ? NS.groups : undefined, ...groupAttrs(g) },
    groupChildren(g),
  );
}

export function decodeGroupInfo(el: XmlElement): GroupInfo {
  expect(el, "group", NS.groups);
  const participants = decodeParticipants(el);
  for (const [i, p] of participants.entries()) {
    if (p.role === undefined) {
      fail(
        childrenNamed(el, "participant", NS.groups)[i] as XmlElement,
        "participant without role",
        "role",
      );
    }
  }
  return {
    jid: requiredParsedAttr(el, "jid", (v, p) => parseGroupJid(v, p)),
    version: requiredParsedAttr(el, "version", parseInteger),
    creator: requiredParsedAttr(el, "creator", parseUserJid),
    created: requiredParsedAttr(el, "created", parseTimestamp),
    subject: subjectOf(el),
    participants,
    rejected: childrenNamed(el, "rejected", NS.groups).map((r) => ({
      jid: requiredParsedAttr(r, "jid", parseUserJid),
      reason: requiredEnumAttr(r, "reason", REJECT_REASONS),
    })),
  };
}

export const encodeGroupInfoQuery = (): XmlElement => xml("info", { xmlns: NS.groups });
export const encodeLeave = (): XmlElement => xml("leave", { xmlns: NS.groups });
export const encodeSubjectChange = (subject: string): XmlElement =>
  xml("subject", { xmlns: NS.groups }, subject);

export function encodeGroupChange(change: GroupChange, jids: readonly BareJid[]): XmlElement {
  return xml(
    change,
    { xmlns: NS.groups },
    jids.map((jid) => participant({ jid, role: undefined })),
  );
}

/** A management request to the group JID (§17.1), decoded by its element name. */
export type GroupRequest =
  | { op: "info" }
  | { op: "leave" }
  | { op: "subject"; subject: string }
  | { op: GroupChange; participants: BareJid[] };

export function decodeGroupRequest(el: XmlElement): GroupRequest {
  const name = el.getName();
  expect(el, name, NS.groups);
  if (name === "info" || name === "leave") return { op: name };
  if (name === "subject") return { op: "subject", subject: textOf(el) };
  const change = enumValue(GROUP_CHANGES, name);
  if (change === undefined) fail(el, `unknown group request <${name}>`);
  const participants = decodeParticipants(el).map((p) => p.jid);
  if (participants.length === 0) fail(el, `<${name}> without participants`);
  return { op: change, participants };
}

export function encodeGroupEvent(e: GroupEvent): XmlElement {
  return xml(
    "event",
    { xmlns: NS.groups, type: e.rawType, by: e.by, version: e.version },
    e.group === undefined ? undefined : encodeGroupInfo(e.group, false),
    e.subject === undefined ? undefined : xml("subject", {}, e.subject),
    e.participants.map(participant),
  );
}

export function decodeGroupEvent(el: XmlElement): GroupEvent {
  expect(el, "event", NS.groups);
  const rawType = requiredAttr(el, "type");
  const type = enumValue(GROUP_EVENT_TYPES, rawType) ?? "unknown";
  const groupEl = optionalChild(el, "group", NS.groups);
  if (type === "created" && groupEl === undefined) fail(el, "created event without <group>");
  return {
    type,
    rawType,
    by: requiredParsedAttr(el, "by", parseBareJid),
    version: requiredParsedAttr(el, "version", parseInteger),
    participants: decodeParticipants(el),
    group: groupEl === undefined ? undefined : decodeGroupInfo(groupEl),
    subject: subjectOf(el),
  };
}
