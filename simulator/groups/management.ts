import { randomBytes } from "node:crypto";
import {
  encodeGroupEvent,
  FEATURE,
  phoneOfJid,
  type GroupEvent,
  type GroupEventType,
  type GroupInfo,
  type GroupRequest,
  type Participant,
  type RejectReason,
} from "../../src/interop/codec/index.js";
import type { QueryTarget } from "../../src/db/sql.js";
import type { BareJid, PhoneNumber } from "../../src/util/ids.js";
import type { EnlistedProvider } from "../config.js";
import { domainOf, providerByDomain, type GatekeeperContext } from "../context.js";
import { refuse, refuseStandard, secondsUntil } from "../errors.js";
import type { Services } from "../services.js";
import { Counters, HOUR_MS } from "../state/counters.js";
import type { UserLog } from "../users/log.js";
import { GroupOutbox } from "./outbox.js";
import { infoOf, type Group, type GroupStore, type Member } from "./store.js";

/** Who asks: a provider user (IQ) or a simulated gatekeeper user (`provider` undefined). */
export interface Requester {
  jid: BareJid;
  provider: EnlistedProvider | undefined;
}

/** Longest subject accepted; §17 sets none, so one that fits comfortably in any stanza. */
export const MAX_SUBJECT_CHARS = 1024;

interface Change {
  type: GroupEventType;
  participants: Participant[];
  subject?: string;
  /** Members no longer in the group who must still hear of it (removed, left). */
  alsoTell?: BareJid[];
  by: BareJid;
}

/**
 * Group management (§17.1) and membership events (§17.2): create, info, add, remove, promote,
 * demote, subject and leave with their errors, the `group-changes-per-hour` limit (§16.3), the
 * add rules (§10.1 reachability, blocks, lookups of §10.2, provider feature), and the promotion of
 * the longest-standing member when the last admin goes. Each change and its events commit in
 * one transaction; the events go out after the commit.
 */
export class GroupManagement {
  constructor(
    private readonly ctx: GatekeeperContext,
    private readonly s: Services,
    private readonly store: GroupStore,
    private readonly log: UserLog,
  ) {}

  async create(
    r: Requester,
    subject: string | undefined,
    participants: readonly BareJid[],
  ): Promise<GroupInfo> {
    checkSubject(subject);
    await this.checkChangeRate(r.jid);
    const wanted = unique(participants).filter((p) => p !== r.jid);
    const { accepted, rejected } = await this.admissible(r, wanted);
    if (accepted.length + 1 > this.ctx.limits["max-group-size"]) {
      throw refuse({ name: "group-full" }, "too many participants", { condition: "not-allowed" });
    }
    const jid = await this.newGroupJid();
    const at = this.ctx.now();
    const outbox = new GroupOutbox(this.ctx, this.s.queue);
    const info = await this.ctx.knex.transaction(async (trx) => {
      await this.store.create(trx, { jid, creator: r.jid, at, subject });
      const group = (await this.store.get(jid, trx)) as Group;
      const { version, seq } = await this.store.nextChange(trx, group);
      await this.store.join(trx, jid, r.jid, "admin", seq, at);
      for (const p of accepted) await this.store.join(trx, jid, p, "member", seq, at);
      const members = await this.store.members(jid, trx);
      const full = infoOf(group, members);
      const event: GroupEvent = {
        type: "created",
        rawType: "created",
        by: r.jid,
        version,
        participants: [],
        group: full,
        subject: undefined,
      };
      await this.announce(
        trx,
        outbox,
        group,
        event,
        members.map((m) => m.jid),
        seq,
      );
      return infoOf(group, members, rejected);
    });
    await this.ctx.counters.record("group-changes", r.jid);
    await outbox.flush();
    await this.watchAll(jid);
    return info;
  }

  /** Whether two users are members of one group now (§17.3 key fetches). */
  async shareGroup(a: BareJid, b: BareJid): Promise<boolean> {
    const ofA = new Set(await this.store.groupsOf(a));
    return (await this.store.groupsOf(b)).some((g) => ofA.has(g));
  }

  async info(r: Requester, jid: BareJid): Promise<GroupInfo> {
    const { group, members } = await this.memberView(r.jid, jid);
    return infoOf(group, members);
  }

  async modify(r: Requester, jid: BareJid, request: GroupRequest): Promise<GroupInfo> {
    if (request.op === "info") return this.info(r, jid);
    const { group, members } = await this.memberView(r.jid, jid);
    const self = members.find((m) => m.jid === r.jid) as Member;
    if (request.op !== "leave" && self.role !== "admin") {
      throw refuse({ name: "not-admin" }, `${r.jid} is not an admin of ${jid}`);
    }
    if (request.op === "subject") checkSubject(request.subject);
    await this.checkChangeRate(r.jid);
    const current = new Set(members.map((m) => m.jid));
    let rejected: GroupInfo["rejected"] = [];
    let addable: BareJid[] = [];
    if (request.op === "add") {
      const wanted = unique(request.participants).filter((p) => !current.has(p));
      const result = await this.admissible(r, wanted);
      rejected = result.rejected;
      addable = result.accepted;
      if (members.length + addable.length > this.ctx.limits["max-group-size"]) {
        throw refuse({ name: "group-full" }, `${jid} is full`, { condition: "not-allowed" });
      }
    }
    const outbox = new GroupOutbox(this.ctx, this.s.queue);
    const at = this.ctx.now();
    await this.ctx.knex.transaction(async (trx) => {
      const apply = async (change: Change, effect: (seq: number) => Promise<void>) => {
        const { version, seq } = await this.store.nextChange(trx, group);
        await effect(seq);
        const now = (await this.store.members(jid, trx)).map((m) => m.jid);
        const event: GroupEvent = {
          type: change.type,
          rawType: change.type,
          by: change.by,
          version,
          participants: change.participants,
          group: undefined,
          subject: change.subject,
        };
        await this.announce(trx, outbox, group, event, [...now, ...(change.alsoTell ?? [])], seq);
      };
      const targets = (list: readonly BareJid[], role?: "admin" | "member") =>
        members.filter((m) => list.includes(m.jid) && (role === undefined || m.role === role));
      switch (request.op) {
        case "add":
          if (addable.length === 0) break;
          await apply(
            {
              type: "participants-added",
              by: r.jid,
              participants: addable.map((jid) => ({ jid, role: "member" })),
            },
            async (seq) => {
              for (const p of addable) await this.store.join(trx, jid, p, "member", seq, at);
            },
          );
          break;
        case "remove": {
          const gone = targets(request.participants);
          if (gone.length === 0) break;
          await apply(
            {
              type: "participants-removed",
              by: r.jid,
              participants: gone.map((m) => ({ jid: m.jid, role: m.role })),
              alsoTell: gone.map((m) => m.jid),
            },
            async (seq) => {
              for (const m of gone) await this.store.leave(trx, jid, m.jid, seq);
            },
          );
          break;
        }
        case "promote":
        case "demote": {
          const from = request.op === "promote" ? "member" : "admin";
          const to = request.op === "promote" ? "admin" : "member";
          const changed = targets(request.participants, from);
          if (changed.length === 0) break;
          await apply(
            {
              type: request.op === "promote" ? "admins-promoted" : "admins-demoted",
              by: r.jid,
              participants: changed.map((m) => ({ jid: m.jid, role: to })),
            },
            async () => {
              for (const m of changed) await this.store.setRole(trx, jid, m.jid, to);
            },
          );
          break;
        }
        case "subject":
          await apply(
            { type: "subject-changed", by: r.jid, participants: [], subject: request.subject },
            async () => {
              group.subject = request.subject;
              await this.store.setSubject(trx, jid, request.subject);
            },
          );
          break;
        case "leave":
          await apply(
            {
              type: "participant-left",
              by: r.jid,
              participants: [{ jid: r.jid, role: self.role }],
              alsoTell: [r.jid],
            },
            (seq) => this.store.leave(trx, jid, r.jid, seq),
          );
          break;
      }
      // The last admin left, was removed or demoted: the gatekeeper promotes the
      // longest-standing member itself (§17.1), as a change of its own with its own version.
      const after = await this.store.members(jid, trx);
      const heir = after[0];
      if (heir !== undefined && !after.some((m) => m.role === "admin")) {
        await apply(
          {
            type: "admins-promoted",
            by: this.ctx.settings.groupDomain as BareJid,
            participants: [{ jid: heir.jid, role: "admin" }],
          },
          () => this.store.setRole(trx, jid, heir.jid, "admin"),
        );
      }
    });
    await this.ctx.counters.record("group-changes", r.jid);
    await outbox.flush();
    if (request.op === "add" && addable.length > 0) await this.watchAll(jid, addable);
    if (request.op === "leave") return infoOf(group, await this.store.members(jid), []);
    return infoOf(group, await this.store.members(jid), rejected);
  }

  /**
   * The group and its members, for a requester who is one: an unknown group answers like a group
   * the requester is not in, so that group JIDs cannot be probed.
   */
  private async memberView(requester: BareJid, jid: BareJid) {
    const group = await this.store.get(jid);
    const members = group === undefined ? [] : await this.store.members(jid);
    if (group === undefined || !members.some((m) => m.jid === requester)) {
      throw refuse({ name: "not-member" }, `${requester} is not a member of ${jid}`);
    }
    return { group, members };
  }

  /** §16.3 scope `groups`: every change (not `info`) counts for the requesting user. */
  private async checkChangeRate(jid: BareJid): Promise<void> {
    const times = await this.ctx.counters.times("group-changes", jid, HOUR_MS);
    const free = Counters.freeAt(times, this.ctx.limits["group-changes-per-hour"], 1, HOUR_MS);
    if (free !== undefined) {
      throw refuse(
        { name: "rate-limited", scope: "groups", retryAfter: secondsUntil(free, this.ctx.now()) },
        `${jid} changes groups too often`,
      );
    }
  }

  /**
   * The add rules of §17.1. Gatekeeper users: reachable for the requester's provider (§10.1) and
   * not blocking the requester or having declined its request (`refused`); for a provider
   * requester each one without a conversation counts as a lookup, all together, and a quota
   * overrun fails the whole request. Provider users: only by a gatekeeper user or a user of the
   * same provider, whose provider negotiated groups, with a published device.
   */
  private async admissible(
    r: Requester,
    wanted: readonly BareJid[],
  ): Promise<{ accepted: BareJid[]; rejected: { jid: BareJid; reason: RejectReason }[] }> {
    const gkDomain = this.ctx.settings.domain;
    if (r.provider !== undefined) {
      const phones: PhoneNumber[] = [];
      for (const jid of wanted) {
        const phone = phoneOfJid(jid, gkDomain);
        if (phone !== undefined && !(await this.s.reach.hasConversation(r.jid, jid))) {
          phones.push(phone);
        }
      }
      if (phones.length > 0) {
        const verified = await this.s.identity.isVerified(r.provider, r.jid);
        await this.s.reach.countLookups(r.provider, r.jid, verified, phones);
      }
    }
    const accepted: BareJid[] = [];
    const rejected: { jid: BareJid; reason: RejectReason }[] = [];
    for (const jid of wanted) {
      const reason = await this.refusalFor(r, jid);
      if (reason === undefined) accepted.push(jid);
      else rejected.push({ jid, reason });
    }
    return { accepted, rejected };
  }

  private async refusalFor(r: Requester, jid: BareJid): Promise<RejectReason | undefined> {
    const domain = domainOf(jid);
    if (domain === this.ctx.settings.domain) {
      const reachable =
        r.provider === undefined
          ? (await this.ctx.knex("gk_users").where({ jid }).first()) !== undefined &&
            (await this.s.keys.devicesOf(jid)).length > 0
          : await this.s.reach.isReachable(r.provider, jid);
      if (!reachable) return "not-reachable";
    } else {
      const provider = providerByDomain(this.ctx, domain);
      if (provider === undefined) return "not-reachable";
      if (r.provider !== undefined && r.provider.domain !== domain) return "not-reachable";
      if (!this.s.hello.features(domain).has(FEATURE.groups)) return "not-reachable";
      if ((await this.s.keys.devicesOf(jid)).length === 0) return "not-reachable";
    }
    if (await this.s.abuse.isBlocked(jid, r.jid)) return "refused";
    const declined = (await this.ctx
      .knex("gk_conversations")
      .where({ provider_jid: r.jid, gk_jid: jid, state: "declined" })
      .first()) as unknown;
    return declined === undefined ? undefined : "refused";
  }

  /**
   * The event to every provider member (and those just gone), queued from the group JID with a
   * seq (§15.6); gatekeeper members see it in their log, in the same transaction.
   */
  private async announce(
    db: QueryTarget,
    outbox: GroupOutbox,
    group: Group,
    event: GroupEvent,
    recipients: readonly BareJid[],
    seq: number,
  ): Promise<void> {
    const stamp = new Date(this.ctx.now());
    for (const to of unique(recipients)) {
      if (domainOf(to) === this.ctx.settings.domain) {
        await this.log.add(
          to,
          "group-event",
          {
            group: group.jid,
            type: event.type,
            by: event.by,
            version: event.version,
            seq,
            participants: event.participants,
            subject: event.subject ?? event.group?.subject,
          },
          db,
        );
        continue;
      }
      await outbox.add(db, {
        group: group.jid,
        to,
        payload: encodeGroupEvent(event),
        stamp,
        seq,
      });
    }
  }

  /**
   * Co-members learn of each other's device changes (§17.3, §11.7): the newcomers (everyone on
   * create) and every member, both ways, so an add costs members × newcomers, not members².
   */
  private async watchAll(jid: BareJid, newcomers?: readonly BareJid[]): Promise<void> {
    const members = (await this.store.members(jid)).map((m) => m.jid);
    const fresh = newcomers ?? members;
    for (const a of fresh) {
      for (const b of members) {
        if (a === b) continue;
        await this.s.keys.watch(a, b);
        if (newcomers !== undefined) await this.s.keys.watch(b, a);
      }
    }
  }

  private async newGroupJid(): Promise<BareJid> {
    for (;;) {
      const id = randomBytes(8).toString("hex");
      const jid = `${id}@${this.ctx.settings.groupDomain}` as BareJid;
      if ((await this.store.get(jid)) === undefined) return jid;
    }
  }
}

function unique<T>(list: readonly T[]): T[] {
  return [...new Set(list)];
}

function checkSubject(subject: string | undefined): void {
  if (subject !== undefined && [...subject].length > MAX_SUBJECT_CHARS) {
    throw refuseStandard("bad-request", "modify", `subject over ${MAX_SUBJECT_CHARS} characters`);
  }
}
