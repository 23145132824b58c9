import type { Knex } from "knex";
import type { BareJid, DeviceId } from "../../util/ids.js";
import * as tables from "../store/index.js";

interface DeviceListEntry {
  readonly id: DeviceId;
  /** From the last bundle processed for the device; null before any. */
  readonly registrationId: number | null;
  /** When this bridge learnt of the device (authorises retry requests, §12.5). */
  readonly addedAt: number;
}

interface DeviceList {
  readonly jid: BareJid;
  readonly version: number;
  readonly devices: readonly DeviceListEntry[];
}

type DeviceChange = "added" | "replaced" | "identity-changed";

/** A parsed `<devices-changed>` notification (§11.7). */
export interface DevicesChangedNotice {
  readonly jid: BareJid;
  readonly version: number;
  /** The complete new list; `change` absent for unchanged devices. */
  readonly devices: readonly { readonly id: DeviceId; readonly change?: DeviceChange }[];
  readonly removed: readonly DeviceId[];
}

export interface DeviceListUpdate {
  /** False when the update was older than the cached list and changed nothing. */
  readonly applied: boolean;
  readonly added: readonly DeviceId[];
  readonly removed: readonly DeviceId[];
  /** Devices whose sessions were dropped: removed, replaced and identity-changed (§11.7). */
  readonly droppedSessions: readonly DeviceId[];
  /** Devices to fetch bundles for before the next send to them. */
  readonly needBundles: readonly DeviceId[];
  /** The user's identity changed: show "security code changed" (§11.7). */
  readonly identityChanged: boolean;
}

/** Lists kept in memory per database (most recently read); more than a bridge's active contacts. */
const MEMORY_SIZE = 5000;

interface Memory {
  readonly lists: Map<string, DeviceList>;
  /**
   * A write's begin or end takes the next `seq`, noted as that user's `lastWrite`. A read keeps
   * what it read only if its user's list was not written since the read began: a read that
   * started before a write and ended after it would put back the list the write replaced, after
   * the write had dropped the copy. Per user, so writes of other users' lists (a burst of new
   * sessions) do not keep every read out of memory.
   */
  seq: number;
  /** Most recent last; at most MEMORY_SIZE, the oldest forgotten into `forgottenUpTo`. */
  readonly lastWrite: Map<string, number>;
  /** The latest `seq` forgotten from `lastWrite`: a user not in it may have been written then. */
  forgottenUpTo: number;
}

const memories = new WeakMap<Knex, Memory>();

function memoryOf(knex: Knex): Memory {
  let memory = memories.get(knex);
  if (memory === undefined) {
    memory = { lists: new Map(), seq: 0, lastWrite: new Map(), forgottenUpTo: 0 };
    memories.set(knex, memory);
  }
  return memory;
}

/** Drops `jid`'s copy and notes the write for reads in flight (see Memory). */
function noteWrite(memory: Memory, jid: string): void {
  memory.seq++;
  memory.lists.delete(jid);
  memory.lastWrite.delete(jid);
  memory.lastWrite.set(jid, memory.seq);
  if (memory.lastWrite.size > MEMORY_SIZE) {
    const [oldest, at] = memory.lastWrite.entries().next().value as [string, number];
    memory.lastWrite.delete(oldest);
    memory.forgottenUpTo = at;
  }
}

/**
 * Drops the in-memory copy of `jid`'s list, for a writer of `signal_remote_devices` outside this
 * class (a processed bundle's registration id, session-cipher.ts).
 */
export function forgetDeviceList(knex: Knex, jid: string): void {
  noteWrite(memoryOf(knex), jid);
}

/**
 * Work done in the transaction that writes a list, with the update it applies (not called for an
 * update that changes nothing). SignalCrypto deletes the dropped devices' sessions there.
 */
export type WithListUpdate = (trx: Knex.Transaction, update: DeviceListUpdate) => Promise<void>;

/**
 * The cached device lists of remote users (§11.3, §11.7), shared by all local users: lists are
 * public directory data. Session clean-up for dropped devices is done by SignalCrypto, which
 * holds the locks of every local device and passes it in as `alongside`.
 */
export class DeviceListCache {
  /**
   * Lists read before, write-through: every write of this class drops the copy before and after
   * (issue #15: two queries per message in each direction were this read).
   */
  private readonly memory: Memory;

  constructor(
    private readonly knex: Knex,
    private readonly now: () => number,
  ) {
    this.memory = memoryOf(knex);
  }

  async get(jid: BareJid): Promise<DeviceList | null> {
    const known = this.memory.lists.get(jid);
    if (known !== undefined) return known;
    const began = this.memory.seq;
    const version = await tables.deviceLists.get(this.knex, jid);
    if (version === undefined) return null;
    const rows = await tables.remoteDevices.ofUser(this.knex, jid);
    const read: DeviceList = Object.freeze({
      jid,
      version,
      devices: Object.freeze(rows.map((row) => Object.freeze(row))),
    });
    const written = this.memory.lastWrite.get(jid) ?? this.memory.forgottenUpTo;
    if (written > began) return read;
    this.memory.lists.set(jid, read);
    if (this.memory.lists.size > MEMORY_SIZE) {
      this.memory.lists.delete(this.memory.lists.keys().next().value as string);
    }
    return read;
  }

  /** Runs a write of `jid`'s list with its in-memory copy dropped before and after. */
  private async writing<T>(jid: string, write: () => Promise<T>): Promise<T> {
    noteWrite(this.memory, jid);
    try {
      return await write();
    } finally {
      noteWrite(this.memory, jid);
    }
  }

  /**
   * Stores a fetched list (§11.3 fetch result, or `<stale-device-list>` with `version` = the
   * cached version + 0 when the error carries none). A list older than the cached one is ignored.
   * `alongside` runs in the transaction that writes the list.
   */
  async store(
    jid: BareJid,
    version: number | null,
    deviceIds: readonly DeviceId[],
    alongside?: WithListUpdate,
  ): Promise<DeviceListUpdate> {
    return this.writing(jid, () => this.storeNow(jid, version, deviceIds, alongside));
  }

  private storeNow(
    jid: BareJid,
    version: number | null,
    deviceIds: readonly DeviceId[],
    alongside: WithListUpdate | undefined,
  ): Promise<DeviceListUpdate> {
    return this.knex.transaction(async (trx) => {
      const cached = await this.cachedVersion(trx, jid);
      if (version !== null && cached !== null && version < cached) return unchanged();
      const existing = await this.deviceIds(trx, jid);
      const added = deviceIds.filter((id) => !existing.has(id));
      const removed = [...existing].filter((id) => !deviceIds.includes(id)) as DeviceId[];
      await this.write(trx, jid, version ?? cached ?? 0, added, removed);
      const update: DeviceListUpdate = {
        applied: true,
        added,
        removed,
        droppedSessions: removed,
        needBundles: added,
        identityChanged: false,
      };
      await alongside?.(trx, update);
      return update;
    });
  }

  /**
   * Applies a `<devices-changed>` notification (§11.7). `alongside` runs in the transaction that
   * writes the list.
   */
  async applyNotice(
    notice: DevicesChangedNotice,
    alongside?: WithListUpdate,
  ): Promise<DeviceListUpdate> {
    return this.writing(notice.jid, () => this.applyNow(notice, alongside));
  }

  private applyNow(
    notice: DevicesChangedNotice,
    alongside: WithListUpdate | undefined,
  ): Promise<DeviceListUpdate> {
    return this.knex.transaction(async (trx) => {
      const cached = await this.cachedVersion(trx, notice.jid);
      if (cached !== null && notice.version <= cached) return unchanged();
      const existing = await this.deviceIds(trx, notice.jid);
      const listed = notice.devices.map((d) => d.id);
      const added = notice.devices
        .filter((d) => d.change === "added" || !existing.has(d.id))
        .map((d) => d.id);
      const removed = [
        ...new Set([
          ...notice.removed,
          ...[...existing].filter((id) => !listed.includes(id as DeviceId)),
        ]),
      ] as DeviceId[];
      const changed = notice.devices
        .filter((d) => d.change === "replaced" || d.change === "identity-changed")
        .map((d) => d.id);
      await this.write(trx, notice.jid, notice.version, added, removed);
      if (changed.length > 0) {
        // New key material: the registration id of the old bundle no longer applies.
        await tables.remoteDevices.clearRegistrationIds(trx, notice.jid, changed);
      }
      const update: DeviceListUpdate = {
        applied: true,
        added,
        removed,
        droppedSessions: [...new Set([...removed, ...changed])],
        needBundles: [...new Set([...added, ...changed])],
        identityChanged: notice.devices.some((d) => d.change === "identity-changed"),
      };
      await alongside?.(trx, update);
      return update;
    });
  }

  private async write(
    trx: Knex.Transaction,
    jid: BareJid,
    version: number,
    added: readonly DeviceId[],
    removed: readonly DeviceId[],
  ): Promise<void> {
    const now = this.now();
    await tables.deviceLists.set(trx, jid, version, now);
    if (removed.length > 0) await tables.remoteDevices.remove(trx, jid, removed);
    for (const id of added) await tables.remoteDevices.add(trx, jid, id, now);
  }

  private async cachedVersion(trx: Knex.Transaction, jid: BareJid): Promise<number | null> {
    return (await tables.deviceLists.version(trx, jid)) ?? null;
  }

  private async deviceIds(trx: Knex.Transaction, jid: BareJid): Promise<Set<DeviceId>> {
    return tables.remoteDevices.idsOf(trx, jid);
  }
}

function unchanged(): DeviceListUpdate {
  return {
    applied: false,
    added: [],
    removed: [],
    droppedSessions: [],
    needBundles: [],
    identityChanged: false,
  };
}
