import { IdentityKeyPair } from "@signalapp/libsignal-client";
import type { Knex } from "knex";
import type { Tx } from "../../db/sql.js";
import type { BareJid, DeviceId } from "../../util/ids.js";
import { describeError } from "../../util/errors.js";
import { silentLogger, type Logger } from "../../util/log.js";
import { SessionCipher } from "./session-cipher.js";
import {
  DeviceListCache,
  type DeviceListUpdate,
  type DevicesChangedNotice,
  type WithListUpdate,
} from "./device-lists.js";
import { DeviceState, UserState, type CryptoContext } from "./device-state.js";
import { UnknownLocalDeviceError } from "./errors.js";
import { GroupCipher } from "./group-cipher.js";
import { IdentityBook } from "./identity.js";
import type { KeyVault } from "../../vault/key-vault.js";
import * as tables from "../store/index.js";
import {
  countPreKeys,
  createLocalDevice,
  currentBundle,
  purgeExpiredKeys,
  replenishPreKeys,
  rotateSignedPreKey,
  type CreateDeviceOptions,
} from "./local-keys.js";
import { KeyedMutex } from "../../util/mutex.js";
import { RetryLedger } from "./retry.js";
import type {
  IdentityChangeEvent,
  IdentityChangePolicy,
  PublishableBundle,
  PublishablePreKeys,
  PublishableRotation,
} from "./types.js";

/**
 * Database work in the transaction of an identity change, through `tx` only: it may run twice
 * (group commit, src/db/sql.ts), so it must be idempotent (keyed by the event's id).
 */
type IdentityChangeRecorder = (tx: Tx, event: IdentityChangeEvent) => Promise<void>;

interface SignalCryptoOptions {
  readonly knex: Knex;
  /** Opened with `openKeyVault`, which has checked it against this database. */
  readonly vault: KeyVault;
  readonly logger?: Logger;
  /** `hold`: after an identity change, sending waits for `identities.confirm` (§12.4). */
  readonly identityChange?: IdentityChangePolicy;
  /** Clock in ms (tests move it). */
  readonly now?: () => number;
  /** Sessions and identities cached per local device / user. */
  readonly cacheSize?: number;
}

/** Everything one local device does with Signal; obtained from SignalCrypto. */
export class DeviceCrypto {
  readonly sessions: SessionCipher;
  readonly groups: GroupCipher;
  readonly retries: RetryLedger;
  readonly identities: IdentityBook;

  constructor(readonly state: DeviceState) {
    this.sessions = new SessionCipher(state);
    this.groups = new GroupCipher(state);
    this.retries = new RetryLedger(state, this.sessions);
    this.identities = new IdentityBook(state.user);
  }

  get jid(): BareJid {
    return this.state.user.jid;
  }

  get deviceId(): DeviceId {
    return this.state.deviceId;
  }

  get registrationId(): number {
    return this.state.registrationId;
  }

  /** The user's identity public key (serialized, 33 bytes). */
  get identityKey(): Uint8Array {
    return this.state.user.identityKeyPair.publicKey.serialize();
  }

  bundle(): Promise<PublishableBundle> {
    return currentBundle(this.state);
  }

  replenish(counts: { ec: number; kyber: number }): Promise<PublishablePreKeys> {
    return replenishPreKeys(this.state, counts);
  }

  prekeyCounts(): Promise<{ ec: number; kyber: number }> {
    return countPreKeys(this.state);
  }

  rotateSignedPreKey(now = this.state.ctx.now()): Promise<PublishableRotation> {
    return rotateSignedPreKey(this.state, now);
  }

  purgeExpiredKeys(now = this.state.ctx.now()): Promise<void> {
    return purgeExpiredKeys(this.state, now);
  }
}

/**
 * The Signal layer of the bridge: creates and loads local devices, keeps one DeviceCrypto per
 * device (its caches must be the only ones, or two would diverge), and applies device-list changes
 * across all of them.
 */
export class SignalCrypto {
  readonly deviceLists: DeviceListCache;
  private readonly ctx: CryptoContext;
  private readonly users = new Map<string, UserState>();
  private readonly devices = new Map<string, Promise<DeviceCrypto>>();
  /**
   * Device ids per local user, read once (issue #15: one query per message each way); dropped
   * before and after every change this class makes (device created, user deleted). Only users
   * with devices are kept: a user without keys may get them through another path first.
   */
  private readonly localDeviceIds = new Map<string, readonly DeviceId[]>();
  private readonly listeners = new Set<(event: IdentityChangeEvent) => void>();
  private readonly recorders = new Set<IdentityChangeRecorder>();

  constructor(options: SignalCryptoOptions) {
    const logger = options.logger ?? silentLogger();
    this.ctx = {
      knex: options.knex,
      vault: options.vault,
      logger,
      now: options.now ?? Date.now,
      policy: options.identityChange ?? "warn",
      mutex: new KeyedMutex(),
      cacheSize: options.cacheSize ?? 2000,
      recordIdentityChange: async (tx, event) => {
        for (const recorder of this.recorders) await recorder(tx, event);
      },
      emitIdentityChange: (event) => {
        logger.info(
          { localJid: event.localJid, remoteJid: event.remoteJid, held: event.sendingHeld },
          "contact identity changed",
        );
        for (const listener of this.listeners) {
          try {
            listener(event);
          } catch (err) {
            logger.error({ err: describeError(err) }, "identity change listener failed");
          }
        }
      },
    };
    this.deviceLists = new DeviceListCache(options.knex, this.ctx.now);
  }

  /** Subscribes to identity changes (after they are committed); returns the unsubscribe. */
  onIdentityChange(listener: (event: IdentityChangeEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Adds a write to every transaction that records a changed identity: what must not be lost
   * with the change (the provider's pending record for the core, issue #16) commits or rolls back
   * with it. Returns the removal.
   */
  recordIdentityChanges(recorder: IdentityChangeRecorder): () => void {
    this.recorders.add(recorder);
    return () => this.recorders.delete(recorder);
  }

  /**
   * Creates a device for a local user, with the user's identity (created on first use), and
   * returns it with the bundle to publish (§11.2).
   */
  async createLocalIdentity(
    userJid: BareJid,
    options: CreateDeviceOptions = {},
  ): Promise<{ device: DeviceCrypto; bundle: PublishableBundle }> {
    this.localDeviceIds.delete(userJid);
    let created: Awaited<ReturnType<typeof createLocalDevice>>;
    try {
      created = await createLocalDevice(this.ctx, userJid, options);
    } finally {
      this.localDeviceIds.delete(userJid);
    }
    const device = await this.device(userJid, created.deviceId);
    return { device, bundle: created.bundle };
  }

  /** The local device, loaded once; UnknownLocalDeviceError if it has no keys. */
  device(userJid: BareJid, deviceId: DeviceId): Promise<DeviceCrypto> {
    const key = `${userJid}/${deviceId}`;
    let pending = this.devices.get(key);
    if (pending === undefined) {
      pending = this.load(userJid, deviceId);
      this.devices.set(key, pending);
      pending.catch(() => this.devices.delete(key));
    }
    return pending;
  }

  /** Device ids with keys for a local user. */
  async localDevices(userJid: BareJid): Promise<DeviceId[]> {
    const known = this.localDeviceIds.get(userJid);
    if (known !== undefined) return [...known];
    const ids = await tables.localDevices.sortedDeviceIdsOf(this.ctx.knex, userJid);
    if (ids.length > 0) this.localDeviceIds.set(userJid, ids);
    return [...ids];
  }

  /** The users (bare JIDs) that hold at least one local device, in one query (start-up). */
  async localDeviceJids(): Promise<Set<BareJid>> {
    return new Set(await tables.localDevices.jids(this.ctx.knex));
  }

  /**
   * Logout: deletes the user's identity, devices, prekeys, sessions, sender keys and recorded
   * contact identities, and forgets the cached state.
   */
  async deleteLocalUser(userJid: BareJid): Promise<void> {
    this.localDeviceIds.delete(userJid);
    try {
      await this.deleteLocalUserRows(userJid);
    } finally {
      this.localDeviceIds.delete(userJid);
    }
    this.users.get(userJid)?.forgetIdentities();
    this.users.delete(userJid);
    for (const key of [...this.devices.keys()]) {
      if (key.startsWith(`${userJid}/`)) this.devices.delete(key);
    }
  }

  private async deleteLocalUserRows(userJid: BareJid): Promise<void> {
    await this.ctx.knex.transaction(async (trx) => {
      // Explicit deletes besides the cascades: SQLite enforces foreign keys per connection.
      const owners = tables.localDevices.ownerIdsOf(trx, userJid);
      for (const table of [
        tables.sessions,
        tables.preKeys,
        tables.signedPreKeys,
        tables.kyberPreKeys,
        tables.kyberUsed,
        tables.senderKeys,
        tables.ownSenderKeys,
        tables.sentEnvelopes,
        tables.retryAnswers,
        tables.retryRequests,
      ]) {
        await table.deleteOfOwners(trx, owners);
      }
      await tables.identities.deleteOfLocal(trx, userJid);
      await tables.localDevices.deleteOf(trx, userJid);
      await tables.localIdentities.deleteOf(trx, userJid);
    });
  }

  /**
   * Applies `<devices-changed>` (§11.7): updates the cached list and deletes every local device's
   * sessions with removed, replaced and identity-changed devices. The caller fetches bundles for
   * `needBundles`, shows a notice on `identityChanged`, and rotates group sender keys.
   */
  handleDevicesChanged(notice: DevicesChangedNotice): Promise<DeviceListUpdate> {
    return this.changeList(notice.jid, (alongside) =>
      this.deviceLists.applyNotice(notice, alongside),
    );
  }

  /** Stores a fetched device list; sessions of devices no longer listed are deleted. */
  storeDeviceList(
    jid: BareJid,
    version: number | null,
    deviceIds: readonly DeviceId[],
  ): Promise<DeviceListUpdate> {
    return this.changeList(jid, (alongside) =>
      this.deviceLists.store(jid, version, deviceIds, alongside),
    );
  }

  /**
   * Writes `remoteJid`'s list and deletes the sessions with the devices it drops in one
   * transaction, holding the contact's lock of every loaded local user: no operation in flight
   * commits a session that this deletes, and none sees the new list while the dropped sessions
   * are still there. (With the list written first and the sessions deleted after, a send that read
   * the new list set up a session with a replaced device's new bundle in between, and lost it.)
   */
  private async changeList(
    remoteJid: BareJid,
    write: (alongside: WithListUpdate) => Promise<DeviceListUpdate>,
  ): Promise<DeviceListUpdate> {
    const loaded = await Promise.all(
      [...this.devices.values()].map((p) => p.catch(() => undefined)),
    );
    const states = loaded.filter((d): d is DeviceCrypto => d !== undefined).map((d) => d.state);
    const lockKeys = states.map((s) => s.user.lockKey(remoteJid));
    return this.ctx.mutex.run(lockKeys, async () => {
      const update = await write(async (trx, { droppedSessions }) => {
        if (droppedSessions.length === 0) return;
        await tables.sessions.deleteOfRemoteDevices(trx, remoteJid, droppedSessions);
      });
      if (update.droppedSessions.length > 0) {
        for (const state of states) state.forgetSessions(remoteJid, update.droppedSessions);
      }
      return update;
    });
  }

  private async load(userJid: BareJid, deviceId: DeviceId): Promise<DeviceCrypto> {
    const row = await tables.localDevices.get(this.ctx.knex, userJid, deviceId);
    if (row === undefined) {
      throw new UnknownLocalDeviceError(`no Signal keys for ${userJid}/${deviceId}`);
    }
    const user = await this.user(userJid);
    return new DeviceCrypto(new DeviceState(user, row.ownerId, deviceId, row.registrationId));
  }

  private async user(userJid: BareJid): Promise<UserState> {
    const cached = this.users.get(userJid);
    if (cached !== undefined) return cached;
    const sealed = await tables.localIdentities.keyPairOf(this.ctx.knex, userJid);
    if (sealed === undefined) throw new UnknownLocalDeviceError(`no identity key for ${userJid}`);
    const pair = IdentityKeyPair.deserialize(
      this.ctx.vault.open(sealed, ["signal_local_identities", userJid]),
    );
    const again = this.users.get(userJid);
    if (again !== undefined) return again;
    const user = new UserState(this.ctx, userJid, pair);
    this.users.set(userJid, user);
    return user;
  }
}
