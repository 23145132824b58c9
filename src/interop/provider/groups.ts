import type { Knex } from "knex";
import { SqlRunner, type Tx } from "../../db/sql.js";
import type { BareJid } from "../../util/ids.js";
import {
  decodeGroupInfo,
  encodeCreate,
  encodeGroupChange,
  encodeGroupInfoQuery,
  encodeLeave,
  encodeSubjectChange,
  type GroupChange,
  type GroupEvent,
  type GroupInfo,
  type GroupRole,
} from "../codec/groups.js";
import type { XmlElement } from "../codec/xml.js";
import * as tables from "../store/index.js";
import { ProviderError } from "./errors.js";
import type { GatekeeperIq } from "./iq-client.js";
import type { GroupSnapshot, StoredParticipant } from "./types.js";

export interface StoredGroup {
  version: number;
  participants: StoredParticipant[];
  rotatePending: boolean;
  /** Bumped whenever `rotatePending` is set: a send clears the flag only if it is unchanged. */
  rotation: number;
}

export const snapshotOf = (info: GroupInfo): GroupSnapshot => ({
  jid: info.jid,
  subject: info.subject ?? "",
  version: info.version,
  participants: info.participants.map((p) => ({ jid: p.jid, role: p.role ?? "member" })),
});

/**
 * Groups of local users (§17.1, §17.2): the management IQs and the `interop_groups` table, which
 * holds each group's version, participants and whether the local sender key must rotate (§17.5).
 */
export class GroupStore {
  constructor(
    private readonly knex: Knex,
    private readonly now: () => number,
  ) {}

  /** The stored group; inside a transaction pass its `tx` (the shared knex would wait for it). */
  async get(local: BareJid, group: string, tx?: Tx): Promise<StoredGroup | undefined> {
    const row =
      tx === undefined
        ? await tables.groups.get(this.knex, local, group)
        : await tables.groups.getInTx(tx, local, group);
    if (row === undefined) return undefined;
    return { ...row, participants: JSON.parse(row.participants) as StoredParticipant[] };
  }

  /**
   * Stores the group as `snapshot` says, if it is not older than what is stored. A participant
   * missing from the new list (removed or left) sets `rotate_pending` (§17.5). A group new here
   * starts with it set: an own sender key kept from an earlier membership may be held by members
   * removed while we were out.
   */
  async save(tx: Tx, local: BareJid, snapshot: GroupSnapshot): Promise<void> {
    const row = await tables.groups.versionAndParticipants(tx, local, snapshot.jid);
    const participants = JSON.stringify(snapshot.participants);
    if (row === undefined) {
      await tables.groups.insertNew(
        tx,
        local,
        snapshot.jid,
        snapshot.version,
        participants,
        this.now(),
      );
      return;
    }
    if (Number(row.version) > snapshot.version) return;
    const before = JSON.parse(row.participants) as StoredParticipant[];
    const gone = before.some((p) => !snapshot.participants.some((q) => q.jid === p.jid));
    await tables.groups.update(
      tx,
      local,
      snapshot.jid,
      snapshot.version,
      participants,
      gone,
      this.now(),
    );
  }

  /** Applies one membership change to the stored participants (the version follows). */
  async applyEvent(tx: Tx, local: BareJid, group: string, event: GroupEvent): Promise<void> {
    const stored = await this.get(local, group, tx);
    if (stored === undefined || event.version <= stored.version) return;
    let participants = stored.participants;
    const named = new Set(event.participants.map((p) => p.jid as string));
    switch (event.type) {
      case "participants-added":
        participants = [
          ...participants.filter((p) => !named.has(p.jid)),
          ...event.participants.map((p) => ({ jid: p.jid, role: p.role ?? "member" })),
        ];
        break;
      case "participants-removed":
      case "participant-left":
        participants = participants.filter((p) => !named.has(p.jid));
        break;
      case "admins-promoted":
      case "admins-demoted": {
        const role: GroupRole = event.type === "admins-promoted" ? "admin" : "member";
        participants = participants.map((p) => (named.has(p.jid) ? { ...p, role } : p));
        break;
      }
      default:
        break;
    }
    await this.save(tx, local, {
      jid: group,
      subject: "",
      version: event.version,
      participants,
    });
  }

  async forget(tx: Tx, local: BareJid, group: string): Promise<void> {
    await tables.groups.remove(tx, local, group);
    await tables.senderKeyHolders.removeGroup(tx, local, group);
  }

  /** Marks every group of `local` in which `member` takes part for rotation (§17.5, §11.7). */
  async markRotationFor(local: BareJid, member: string): Promise<void> {
    const rows = await tables.groups.participantsOf(this.knex, local);
    const groups = rows
      .filter((r) =>
        (JSON.parse(r.participants) as StoredParticipant[]).some((p) => p.jid === member),
      )
      .map((r) => r.group);
    if (groups.length === 0) return;
    await tables.groups.requestRotation(this.knex, local, groups, this.now());
  }

  /**
   * As markRotationFor, for every local user: a device list of `member` learnt otherwise than
   * from a notice to each of them (a fetch, `stale-device-list`) shows a device gone. The list
   * cache is shared, so another local user's next send already sees the list without the device.
   */
  async markRotationForAll(member: string): Promise<void> {
    const rows = await tables.groups.withParticipant(this.knex, member);
    const byLocal = new Map<string, string[]>();
    for (const r of rows) {
      const named = (JSON.parse(r.participants) as StoredParticipant[]).some(
        (p) => p.jid === member,
      );
      if (named) byLocal.set(r.local, [...(byLocal.get(r.local) ?? []), r.group]);
    }
    for (const [local, groups] of byLocal) {
      await tables.groups.requestRotation(this.knex, local as BareJid, groups, this.now());
    }
  }

  /** These devices of `member` must get the current sender key again (replaced, §17.5). */
  async forgetHolders(local: BareJid, member: string, devices: readonly number[]): Promise<void> {
    await tables.senderKeyHolders.removeDevices(this.knex, local, member, devices);
  }

  /** Devices of the group that hold the local sender key `distributionId`. */
  async holders(local: BareJid, group: string, distributionId: string): Promise<Set<string>> {
    return tables.senderKeyHolders.holders(this.knex, local, group, distributionId);
  }

  /**
   * In the send's transaction: these devices now hold `distributionId`; rotation done unless a
   * new one was asked for (`rotation` moved on) since the send read the group.
   */
  async recordHolders(
    tx: Tx,
    local: BareJid,
    group: string,
    distributionId: string,
    devices: readonly { jid: string; device: number }[],
    rotated: boolean,
    rotation: number,
  ): Promise<void> {
    if (rotated) {
      await tables.senderKeyHolders.removeOtherKeys(tx, local, group, distributionId);
      await tables.groups.clearRotation(tx, local, group, rotation);
    }
    for (const d of devices) {
      await tables.senderKeyHolders.add(tx, local, group, distributionId, d.jid, d.device);
    }
  }
}

/** The management IQs of §17.1 for local users. Results update the stored group. */
export class GroupManagement {
  constructor(
    private readonly gk: GatekeeperIq,
    private readonly store: GroupStore,
    private readonly knex: Knex,
    private readonly groupDomain: string,
  ) {}

  create(local: BareJid, subject: string, participants: readonly BareJid[]): Promise<GroupInfo> {
    return this.call(
      local,
      "set",
      encodeCreate({ subject, participants }),
      "group create",
      this.groupDomain,
    );
  }

  info(local: BareJid, group: BareJid): Promise<GroupInfo> {
    return this.call(local, "get", encodeGroupInfoQuery(), "group info", group);
  }

  /**
   * `info` without storing the answer: the caller stores it in the transaction that records what
   * it reports, so a crash in between cannot leave the group stored but never reported.
   */
  fetchInfo(local: BareJid, group: BareJid): Promise<GroupInfo> {
    return this.call(local, "get", encodeGroupInfoQuery(), "group info", group, false);
  }

  change(
    local: BareJid,
    group: BareJid,
    change: GroupChange,
    participants: readonly BareJid[],
  ): Promise<GroupInfo> {
    return this.call(
      local,
      "set",
      encodeGroupChange(change, participants),
      `group ${change}`,
      group,
    );
  }

  subject(local: BareJid, group: BareJid, subject: string): Promise<GroupInfo> {
    return this.call(local, "set", encodeSubjectChange(subject), "group subject", group);
  }

  async leave(local: BareJid, group: BareJid): Promise<void> {
    await this.gk.request(local, "set", encodeLeave(), "group leave", group);
    await SqlRunner.of(this.knex).transaction((tx) => this.store.forget(tx, local, group));
  }

  private async call(
    local: BareJid,
    type: "get" | "set",
    payload: XmlElement,
    what: string,
    to: string,
    save = true,
  ): Promise<GroupInfo> {
    const result = await this.gk.request(local, type, payload, what, to);
    if (result === undefined) {
      throw new ProviderError("gatekeeper-error", `${what}: the answer carries no <group>`);
    }
    const info = decodeGroupInfo(result);
    if (!save) return info;
    await SqlRunner.of(this.knex).transaction((tx) => this.store.save(tx, local, snapshotOf(info)));
    return info;
  }
}
