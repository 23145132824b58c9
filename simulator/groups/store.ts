import type { Knex } from "knex";
import type { GroupInfo, GroupRole } from "../../src/interop/codec/index.js";
import type { QueryTarget } from "../../src/db/sql.js";
import type { BareJid, DeviceId, MessageId } from "../../src/util/ids.js";

export interface Group {
  jid: BareJid;
  creator: BareJid;
  created: Date;
  subject: string | undefined;
  version: number;
  seq: number;
}

export interface Member {
  jid: BareJid;
  role: GroupRole;
  joinedSeq: number;
}

/** A message accepted in a group: what receipts, markers and retries are checked against. */
export interface GroupMessage {
  group: BareJid;
  sender: BareJid;
  originId: MessageId;
  senderDevice: DeviceId;
  seq: number;
  hasGroup: boolean;
  at: number;
}

interface GroupRow {
  jid: string;
  creator: string;
  created_at: number;
  subject: string | null;
  version: number;
  seq: number;
}

interface MemberRow {
  id: number;
  jid: string;
  role: string;
  joined_seq: number;
}

/**
 * Group state in the simulator's database (migration 0004). Reads take the knex instance or the
 * transaction they belong to; every change runs in the caller's transaction, which also holds the
 * events and deliveries it causes.
 */
export class GroupStore {
  constructor(private readonly knex: Knex) {}

  async get(jid: BareJid, db: QueryTarget = this.knex): Promise<Group | undefined> {
    const row = (await db("gk_groups").where({ jid }).first()) as GroupRow | undefined;
    if (row === undefined) return undefined;
    return {
      jid,
      creator: row.creator as BareJid,
      created: new Date(Number(row.created_at)),
      subject: row.subject ?? undefined,
      version: row.version,
      seq: row.seq,
    };
  }

  async list(): Promise<BareJid[]> {
    const rows = (await this.knex("gk_groups").select("jid").orderBy("created_at")) as {
      jid: string;
    }[];
    return rows.map((r) => r.jid as BareJid);
  }

  /** Current members, longest-standing first. */
  async members(group: BareJid, db: QueryTarget = this.knex): Promise<Member[]> {
    const rows = (await db("gk_group_members")
      .where({ group_jid: group })
      .whereNull("left_seq")
      .orderBy([{ column: "joined_seq" }, { column: "id" }])) as MemberRow[];
    return rows.map((r) => ({
      jid: r.jid as BareJid,
      role: r.role as GroupRole,
      joinedSeq: r.joined_seq,
    }));
  }

  async member(group: BareJid, jid: BareJid): Promise<Member | undefined> {
    return (await this.members(group)).find((m) => m.jid === jid);
  }

  /** Whether `jid` was a member when the group's seq was `seq` (joined before, left after). */
  async wasMemberAt(group: BareJid, jid: BareJid, seq: number): Promise<boolean> {
    const row = (await this.knex("gk_group_members")
      .where({ group_jid: group, jid })
      .andWhere("joined_seq", "<", seq)
      .andWhere((q) => q.whereNull("left_seq").orWhere("left_seq", ">", seq))
      .first()) as unknown;
    return row !== undefined;
  }

  /** Groups `jid` is a member of now. */
  async groupsOf(jid: BareJid): Promise<BareJid[]> {
    const rows = (await this.knex("gk_group_members")
      .select("group_jid")
      .where({ jid })
      .whereNull("left_seq")) as { group_jid: string }[];
    return rows.map((r) => r.group_jid as BareJid);
  }

  async create(
    db: QueryTarget,
    g: { jid: BareJid; creator: BareJid; at: number; subject: string | undefined },
  ): Promise<void> {
    await db("gk_groups").insert({
      jid: g.jid,
      creator: g.creator,
      created_at: g.at,
      subject: g.subject ?? null,
      version: 0,
      seq: 0,
    });
  }

  /** The next version and seq of a change (§17.2, §15.6). */
  async nextChange(db: QueryTarget, group: Group): Promise<{ version: number; seq: number }> {
    group.version += 1;
    group.seq += 1;
    await db("gk_groups")
      .where({ jid: group.jid })
      .update({ version: group.version, seq: group.seq });
    return { version: group.version, seq: group.seq };
  }

  /** The next seq of a message (no version change). */
  async nextSeq(db: QueryTarget, group: Group): Promise<number> {
    group.seq += 1;
    await db("gk_groups").where({ jid: group.jid }).update({ seq: group.seq });
    return group.seq;
  }

  async setSubject(db: QueryTarget, group: BareJid, subject: string): Promise<void> {
    await db("gk_groups").where({ jid: group }).update({ subject });
  }

  async join(
    db: QueryTarget,
    group: BareJid,
    jid: BareJid,
    role: GroupRole,
    seq: number,
    at: number,
  ): Promise<void> {
    await db("gk_group_members").insert({
      group_jid: group,
      jid,
      role,
      joined_seq: seq,
      left_seq: null,
      joined_at: at,
    });
  }

  async leave(db: QueryTarget, group: BareJid, jid: BareJid, seq: number): Promise<void> {
    await db("gk_group_members")
      .where({ group_jid: group, jid })
      .whereNull("left_seq")
      .update({ left_seq: seq });
  }

  async setRole(db: QueryTarget, group: BareJid, jid: BareJid, role: GroupRole): Promise<void> {
    await db("gk_group_members")
      .where({ group_jid: group, jid })
      .whereNull("left_seq")
      .update({ role });
  }

  async addMessage(db: QueryTarget, m: GroupMessage): Promise<void> {
    await db("gk_group_messages").insert({
      group_jid: m.group,
      sender: m.sender,
      origin_id: m.originId,
      sender_device: m.senderDevice,
      seq: m.seq,
      has_group: m.hasGroup,
      at: m.at,
    });
  }

  async message(
    group: BareJid,
    sender: BareJid,
    originId: string,
  ): Promise<GroupMessage | undefined> {
    const row = (await this.knex("gk_group_messages")
      .where({ group_jid: group, sender, origin_id: originId })
      .first()) as
      | {
          sender_device: number;
          seq: number;
          has_group: number | boolean;
          at: number;
        }
      | undefined;
    if (row === undefined) return undefined;
    return {
      group,
      sender,
      originId: originId as MessageId,
      senderDevice: row.sender_device as DeviceId,
      seq: row.seq,
      hasGroup: Boolean(row.has_group),
      at: Number(row.at),
    };
  }

  /** Forgets message records older than `before` (ms). */
  async pruneMessages(before: number): Promise<void> {
    await this.knex("gk_group_messages").where("at", "<=", before).delete();
  }
}

/** The `<group>` element's content for a group and its current members. */
export function infoOf(
  group: Group,
  members: readonly Member[],
  rejected: GroupInfo["rejected"] = [],
): GroupInfo {
  return {
    jid: group.jid,
    version: group.version,
    creator: group.creator,
    created: group.created,
    subject: group.subject,
    participants: members.map((m) => ({ jid: m.jid, role: m.role })),
    rejected,
  };
}
