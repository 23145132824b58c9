import type {
  GroupInfo,
  GroupMember,
  GroupRejection,
  RemoteEvent,
  RemoteGroupId,
  RemoteUserId,
} from "../../core/network.js";
import { BridgeError } from "../../util/errors.js";
import type { GroupInfo as WireGroupInfo } from "../codec/groups.js";
import { matrixUserIdFromLocalpart } from "../codec/jid.js";
import { GATEKEEPER_DOMAIN, GROUP_DOMAIN } from "../codec/namespaces.js";
import { GatekeeperError, ProviderError } from "../provider/errors.js";
import type { GroupSnapshot, ProviderEvent, StoredParticipant } from "../provider/types.js";

const user = (jid: string): RemoteUserId => jid as RemoteUserId;
const groupId = (jid: string): RemoteGroupId => jid as RemoteGroupId;

/**
 * How a member is shown (core/network.ts GroupMember.displayName): a WhatsApp user by their
 * phone number (+E.164, the JID's localpart, §5.2); a user of another provider by their user part
 * with the provider's domain as a label, "carol (via other.example)". Never a chosen name.
 */
export function memberDisplayName(jid: string, gatekeeperDomain = GATEKEEPER_DOMAIN): string {
  const at = jid.lastIndexOf("@");
  const local = jid.slice(0, at);
  const domain = jid.slice(at + 1);
  if (domain === gatekeeperDomain) return `+${local}`;
  let part = local;
  try {
    // Providers that map Matrix ids as §5.1 does: the Matrix localpart is the user part.
    const mxid = matrixUserIdFromLocalpart(local, "jid");
    part = mxid.slice(1, mxid.indexOf(":"));
  } catch {
    // Another provider's own scheme: its localpart as it is.
  }
  return `${part} (via ${domain})`;
}

export const groupMember = (p: StoredParticipant): GroupMember => ({
  id: user(p.jid),
  admin: p.role === "admin",
  displayName: memberDisplayName(p.jid),
});

function groupInfoOf(snapshot: GroupSnapshot): GroupInfo {
  return {
    id: groupId(snapshot.jid),
    subject: snapshot.subject,
    version: snapshot.version,
    members: snapshot.participants.map(groupMember),
  };
}

export function wireGroupInfoOf(info: WireGroupInfo): GroupInfo {
  return {
    id: groupId(info.jid),
    subject: info.subject ?? "",
    version: info.version,
    members: info.participants.map((p) => groupMember({ jid: p.jid, role: p.role ?? "member" })),
  };
}

export const rejectionsOf = (info: WireGroupInfo): GroupRejection[] =>
  info.rejected.map((r) => ({ id: user(r.jid), reason: r.reason }));

const CHANGES = {
  "participants-added": "added",
  "participants-removed": "removed",
  "participant-left": "left",
  "admins-promoted": "promoted",
  "admins-demoted": "demoted",
} as const;

/** `group-info` / `group-event` of the engine -> the core's group events. */
export function groupEvents(
  event: Extract<ProviderEvent, { kind: "group-info" | "group-event" }>,
  groupDomain = GROUP_DOMAIN,
): RemoteEvent[] {
  const group = groupId(event.group);
  if (event.kind === "group-info") {
    return [
      {
        kind: "group-info",
        group,
        info: groupInfoOf(event.info),
        ...(event.addedBy === undefined ? {} : { addedBy: user(event.addedBy) }),
      },
    ];
  }
  // A change the gatekeeper made itself (the last admin left) is `by` the group domain.
  const by = event.by === groupDomain ? null : user(event.by);
  if (event.type === "subject-changed") {
    return [
      { kind: "group-subject", group, version: event.version, by, subject: event.subject ?? "" },
    ];
  }
  if (event.type === "created") return [];
  return [
    {
      kind: "group-change",
      group,
      version: event.version,
      by,
      change: CHANGES[event.type],
      members: event.participants.map(groupMember),
    },
  ];
}

/**
 * A management call's failure as the contract names it (core/network.ts GroupCapable): the
 * gatekeeper's `not-admin`, `not-member`, `group-full` and `rate-limited` (lookups of added
 * numbers, §17.1; group changes) and an unreachable gatekeeper. Other errors pass unchanged.
 */
export function groupError(err: unknown): unknown {
  if (err instanceof GatekeeperError) {
    switch (err.app?.name) {
      case "not-admin":
        return new BridgeError("group-not-admin", "Only the group's admins can do that.", {
          cause: err,
        });
      case "not-member":
        return new BridgeError("group-not-member", "You are not a member of this group.", {
          cause: err,
        });
      case "group-full":
        return new BridgeError("group-full", "The group is full.", { cause: err });
      case "rate-limited":
        return new BridgeError(
          "rate-limited",
          err.app.scope === "lookup"
            ? "Too many new numbers looked up today; try again later."
            : "Too many group changes; try again later.",
          { cause: err, ...(err.retryAt === undefined ? {} : { retryAt: err.retryAt }) },
        );
      default:
        return err;
    }
  }
  if (err instanceof ProviderError && err.code === "not-member") {
    return new BridgeError("group-not-member", "You are not a member of this group.", {
      cause: err,
    });
  }
  if (err instanceof ProviderError && err.code === "not-ready") {
    return new BridgeError("network-unavailable", "WhatsApp cannot be reached right now.", {
      cause: err,
    });
  }
  return err;
}
