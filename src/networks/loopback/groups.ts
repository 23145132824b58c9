import type {
  GroupInfo,
  GroupMember,
  GroupRejection,
  RemoteEvent,
  RemoteGroupId,
  RemoteUserId,
} from "../../core/network.js";
import { BridgeError } from "../../util/errors.js";

/** A group as the loopback network keeps it (tests may read and edit it directly). */
export interface LoopbackGroup {
  subject: string;
  /** Moves by one with every change, as interop §17.2 versions do. */
  version: number;
  members: GroupMember[];
}

/** A member as loopback shows it: by their address, the only name the network knows. */
const loopbackMember = (id: RemoteUserId, admin = false): GroupMember => ({
  id,
  admin,
  displayName: id,
});

/** Loopback's own limit, you included; tests may lower it (`LoopbackNetwork.maxGroupSize`). */
export const MAX_GROUP_SIZE = 32;

/** What the group calls need of the network: its users, groups and a way to reach logins. */
export interface GroupNetwork {
  readonly users: ReadonlySet<string>;
  /** Users who let nobody add them to a group (the privacy setting): adding them is refused. */
  readonly refusesGroups: ReadonlySet<string>;
  readonly groups: Map<RemoteGroupId, LoopbackGroup>;
  maxGroupSize: number;
  newGroupId(): RemoteGroupId;
  /** Reports an event to the login whose own id is `member`, if it is a login of this bridge. */
  deliverTo(member: RemoteUserId, event: RemoteEvent): void;
}

export const infoOf = (id: RemoteGroupId, group: LoopbackGroup): GroupInfo => ({
  id,
  subject: group.subject,
  version: group.version,
  members: group.members.map((m) => ({ ...m })),
});

/**
 * The group calls of one login, with the contract's semantics (core/network.ts GroupCapable, as
 * the interop connector implements them on the gatekeeper, PROTOCOL.md §17): only admins change
 * a group; every change moves the version by one and is reported as an event to every member
 * login (the one that made it included, and a removed member's own); a member added by someone
 * is told with a `group-info` naming who; when the last admin leaves, the network promotes the
 * longest-standing member itself (`by: null`).
 */
export class LoopbackGroups {
  constructor(
    private readonly network: GroupNetwork,
    private readonly self: RemoteUserId,
  ) {}

  /** Of the candidates, those the network will not add and why; the rest in order. */
  private screen(candidates: readonly RemoteUserId[], present: readonly GroupMember[]) {
    const rejected: GroupRejection[] = [];
    const accepted: RemoteUserId[] = [];
    for (const id of candidates) {
      if (id === this.self || present.some((m) => m.id === id) || accepted.includes(id)) continue;
      if (!this.network.users.has(id)) rejected.push({ id, reason: "not-reachable" });
      else if (this.network.refusesGroups.has(id)) rejected.push({ id, reason: "refused" });
      else accepted.push(id);
    }
    return { accepted, rejected };
  }

  private checkSize(count: number): void {
    if (count > this.network.maxGroupSize) {
      throw new BridgeError(
        "group-full",
        `The group is full: it can have at most ${this.network.maxGroupSize} members.`,
      );
    }
  }

  createGroup(
    subject: string,
    members: readonly RemoteUserId[],
  ): { info: GroupInfo; rejected: readonly GroupRejection[] } {
    const { accepted, rejected } = this.screen(members, []);
    this.checkSize(accepted.length + 1);
    const id = this.network.newGroupId();
    const group: LoopbackGroup = {
      subject,
      version: 1,
      members: [loopbackMember(this.self, true), ...accepted.map((m) => loopbackMember(m))],
    };
    this.network.groups.set(id, group);
    // The creator learns of the group from this answer (interop reports no event for it); the
    // others, from the group as it is, with who added them.
    this.tellAdded(id, group, accepted);
    return { info: infoOf(id, group), rejected };
  }

  /** Members just added learn of the group as it is now, and who added them. */
  private tellAdded(id: RemoteGroupId, group: LoopbackGroup, added: readonly RemoteUserId[]): void {
    for (const m of added) {
      this.network.deliverTo(m, {
        kind: "group-info",
        group: id,
        info: infoOf(id, group),
        addedBy: this.self,
      });
    }
  }

  groupInfo(id: RemoteGroupId): GroupInfo {
    return infoOf(id, this.memberOf(id).group);
  }

  addGroupMembers(
    id: RemoteGroupId,
    members: readonly RemoteUserId[],
  ): { info: GroupInfo; rejected: readonly GroupRejection[] } {
    const group = this.adminOf(id);
    const { accepted, rejected } = this.screen(members, group.members);
    if (accepted.length > 0) {
      this.checkSize(group.members.length + accepted.length);
      const added = accepted.map((m) => loopbackMember(m));
      group.members.push(...added);
      this.change(id, group, "added", added, []);
      this.tellAdded(id, group, accepted);
    }
    return { info: infoOf(id, group), rejected };
  }

  removeGroupMembers(id: RemoteGroupId, members: readonly RemoteUserId[]): GroupInfo {
    const group = this.adminOf(id);
    const removed = group.members.filter((m) => members.includes(m.id) && m.id !== this.self);
    if (removed.length > 0) {
      group.members = group.members.filter((m) => !removed.includes(m));
      // The removed are told too: their logins must learn they are out.
      this.change(id, group, "removed", removed, removed);
    }
    return infoOf(id, group);
  }

  setGroupAdmins(id: RemoteGroupId, members: readonly RemoteUserId[], admin: boolean): GroupInfo {
    const group = this.adminOf(id);
    const changed = group.members.filter((m) => members.includes(m.id) && m.admin !== admin);
    if (changed.length > 0) {
      for (const m of changed) m.admin = admin;
      this.change(id, group, admin ? "promoted" : "demoted", changed, []);
      this.keepAnAdmin(id, group);
    }
    return infoOf(id, group);
  }

  setGroupSubject(id: RemoteGroupId, subject: string): GroupInfo {
    const group = this.adminOf(id);
    group.subject = subject;
    group.version += 1;
    this.tell(group.members, {
      kind: "group-subject",
      group: id,
      version: group.version,
      by: this.self,
      subject,
    });
    return infoOf(id, group);
  }

  leaveGroup(id: RemoteGroupId): void {
    const { group, me } = this.memberOf(id);
    group.members = group.members.filter((m) => m !== me);
    this.change(id, group, "left", [me], [me]);
    this.keepAnAdmin(id, group);
  }

  /** A group's last admin gone: the network makes its first remaining member one (§17.1). */
  private keepAnAdmin(id: RemoteGroupId, group: LoopbackGroup): void {
    const first = group.members[0];
    if (first === undefined || group.members.some((m) => m.admin)) return;
    first.admin = true;
    group.version += 1;
    this.tell(group.members, {
      kind: "group-change",
      group: id,
      version: group.version,
      by: null,
      change: "promoted",
      members: [{ ...first }],
    });
  }

  private change(
    id: RemoteGroupId,
    group: LoopbackGroup,
    change: "added" | "removed" | "left" | "promoted" | "demoted",
    members: readonly GroupMember[],
    alsoTell: readonly GroupMember[],
  ): void {
    group.version += 1;
    this.tell([...group.members, ...alsoTell], {
      kind: "group-change",
      group: id,
      version: group.version,
      by: this.self,
      change,
      members: members.map((m) => ({ ...m })),
    });
  }

  private tell(members: readonly GroupMember[], event: RemoteEvent): void {
    for (const m of members) this.network.deliverTo(m.id, event);
  }

  private memberOf(id: RemoteGroupId): { group: LoopbackGroup; me: GroupMember } {
    const group = this.network.groups.get(id);
    const me = group?.members.find((m) => m.id === this.self);
    if (group === undefined || me === undefined) {
      throw new BridgeError("group-not-member", "You are not a member of this group.");
    }
    return { group, me };
  }

  private adminOf(id: RemoteGroupId): LoopbackGroup {
    const { group, me } = this.memberOf(id);
    if (!me.admin) throw new BridgeError("group-not-admin", "Only the group's admins can do that.");
    return group;
  }
}
