import { randomBytes } from "node:crypto";
import type * as Wasm from "@matrix-org/matrix-sdk-crypto-wasm";
import type { Knex } from "knex";
import type { WeakEvent } from "matrix-appservice-bridge";
import type { MatrixEncryptionConfig } from "../../config/schema.js";
import type { KeyVault } from "../../vault/key-vault.js";
import { describeError, isTransientError } from "../../util/errors.js";
import type { Logger } from "../../util/log.js";
import { DeviceRegistry } from "./devices.js";
import { parseTransactionExtras, type TransactionExtras } from "./extras.js";
import { decryptAttachment, encryptAttachment } from "./attachments.js";
import { CryptoHttp, HomeserverError } from "./homeserver.js";
import type { EncryptedFile } from "../convert/types.js";
import type { IndexedDbMirror } from "./idb-mirror.js";
import type { DeviceMachine, DeviceSyncChanges } from "./machine.js";
import { DeviceSyncLoop } from "./sync.js";

/** The content of m.room.encryption the bridge creates new portals with. */
export const MEGOLM_ENCRYPTION = { algorithm: "m.megolm.v1.aes-sha2" } as const;

const ROOMS = "matrix_crypto_rooms";
const OUTBOUND = "matrix_crypto_outbound";
const META = "crypto_meta";
const STORE_KEY = "matrix_store_key";
const RUNNING = "matrix_crypto_running";
/** Set once the bot's device exists with its keys uploaded: later starts need not load it. */
const BOT_DEVICE_READY = "matrix_bot_device_ready";

/** Below this many one-time keys on the server, an unloaded ghost device is loaded to upload more. */
const LOW_ONE_TIME_KEYS = 10;
/** How often idle ghost machines are looked for. */
const EVICT_INTERVAL_MS = 60_000;

/** What the ingress does with an event after {@link RoomCrypto.decrypt}. */
export type DecryptOutcome =
  /** Not encrypted, or decrypted: `event` is what the router handles. */
  | { kind: "clear"; event: WeakEvent }
  /** Encrypted and not decryptable within the wait: tell the user to send it again. */
  | { kind: "undecryptable"; reason: string }
  /** Plaintext in a bridge that requires encryption: refused with a notice. */
  | { kind: "refused"; reason: string };

/** The narrow port the gateway uses. */
export interface RoomEncryptor {
  /** `content` as it goes to `room`: unchanged for a plaintext room, m.room.encrypted else. */
  encrypt(
    as: string,
    room: string,
    type: string,
    content: Record<string, unknown>,
  ): Promise<{ type: string; content: Record<string, unknown> }>;
  /** The initial state a new portal is created with (m.room.encryption when on by default). */
  initialState(): { type: string; state_key: string; content: Record<string, unknown> }[];
  /** Records that the bridge just created `room` encrypted (before any transaction says so). */
  roomCreated(room: string, initialState: { type: string; content: unknown }[]): Promise<void>;
  /** Whether what goes to `room` is encrypted (media then travels as `file`). */
  isEncrypted(room: string): Promise<boolean>;
  /** Encrypts `chunks` while uploading them as `as`; the `file` object for the event. */
  uploadEncrypted(
    as: string,
    chunks: AsyncIterable<Uint8Array>,
    fileName: string,
  ): Promise<EncryptedFile>;
  /** The plaintext of an encrypted attachment, streamed and checked against its hash. */
  openEncrypted(
    mxc: string,
    encryption: { key: string; iv: string; sha256: string },
  ): Promise<AsyncIterable<Uint8Array>>;
}

/**
 * What only a device machine needs: matrix-sdk-crypto-wasm (its module and its instance), the
 * IndexedDB mirror (fake-indexeddb) and the machine module. Loaded on first use, not at start:
 * together ~30 MB of resident memory (measured, docs/dependencies.md) that a bridge whose rooms
 * are not encrypted, or that is idle, does not need.
 */
interface Engine {
  wasm: typeof Wasm;
  mirror: IndexedDbMirror;
  machines: typeof import("./machine.js");
}

interface RoomCryptoOptions {
  knex: Knex;
  vault: KeyVault;
  config: MatrixEncryptionConfig;
  homeserverUrl: string;
  asToken: string;
  botUserId: string;
  log: Logger;
}

/**
 * Matrix-side end-to-bridge encryption (docs/matrix-encryption.md): the only module that drives
 * matrix-sdk-crypto-wasm. One OlmMachine per device the bridge owns (the bot, and each ghost that
 * sends into an encrypted room), loaded on demand from the bridge database and unloaded when idle.
 *
 * The ingress hands it each transaction's to-device events, device lists and key counts
 * ({@link receiveTransactionExtras}, persisted before the 200) and each event
 * ({@link decrypt}); the gateway encrypts through it ({@link encrypt}).
 */
export class RoomCrypto implements RoomEncryptor {
  private readonly machines = new Map<string, Promise<DeviceMachine>>();
  /** Room → its m.room.encryption content, or null for a room known to be plaintext. */
  private readonly rooms = new Map<string, Record<string, unknown> | null>();
  /** Room → users joined or invited, from the homeserver once, then from member events. */
  private readonly members = new Map<string, Set<string>>();
  private readonly outbound = new Set<string>();
  /** Per user: the /sync loop of its device, in `receive: sync` mode. */
  private readonly syncLoops = new Map<string, DeviceSyncLoop>();
  private keyWaiters: (() => void)[] = [];
  private evicting: NodeJS.Timeout | undefined;
  private stopped = false;

  /** The engine once loading began, and once loaded (read where a machine already exists). */
  private engine: Promise<Engine> | undefined;
  private loaded: Engine | undefined;

  private constructor(
    private readonly options: RoomCryptoOptions,
    private readonly devices: DeviceRegistry,
    private readonly http: CryptoHttp,
    private readonly storeKey: Uint8Array,
    /** The previous run did not stop cleanly: outbound sessions are discarded on load. */
    private readonly unclean: boolean,
  ) {}

  static async start(options: RoomCryptoOptions): Promise<RoomCrypto> {
    const { knex, vault, log } = options;
    const http = new CryptoHttp(options.homeserverUrl);
    const devices = new DeviceRegistry(knex, vault, http, options.asToken);
    const storeKey = await loadStoreKey(knex, vault);
    const running = (await knex(META).where({ key: RUNNING }).first()) as unknown;
    await knex(META)
      .insert({ key: RUNNING, value: Buffer.from("1") })
      .onConflict("key")
      .merge();
    const crypto = new RoomCrypto(options, devices, http, storeKey, running !== undefined);
    log.info(
      {
        mode: options.config.receive,
        default: options.config.default,
        unclean: running !== undefined,
      },
      options.config.receive === "push"
        ? "Matrix encryption: to-device events and key counts come pushed in transactions (MSC2409/MSC3202)"
        : "Matrix encryption: to-device events and key counts come by /sync per bridge device",
    );
    if (running !== undefined) {
      log.warn("the bridge did not stop cleanly: outbound Megolm sessions are discarded");
    }
    const every = Math.min(EVICT_INTERVAL_MS, options.config.idle_device_ms);
    crypto.evicting = setInterval(() => void crypto.evictIdle(), every);
    crypto.evicting.unref();
    return crypto;
  }

  /**
   * Brings up the bot's device (created and its keys uploaded on first start), so that users'
   * clients share their room keys with it. Transient failures are the caller's to retry.
   */
  async ensureBotDevice(): Promise<void> {
    // Set up on an earlier start (device created, keys uploaded): nothing to do until the device
    // is used; a low one-time key count in a transaction loads it to upload more.
    const ready = (await this.options.knex(META).where({ key: BOT_DEVICE_READY }).first()) as
      unknown | undefined;
    if (ready !== undefined && !this.machines.has(this.options.botUserId)) return;
    const bot = await this.machine(this.options.botUserId);
    await bot.sendOutgoing();
    await this.options
      .knex(META)
      .insert({ key: BOT_DEVICE_READY, value: Buffer.from("1") })
      .onConflict("key")
      .ignore();
  }

  /** Whether the wasm engine has been loaded (tests: an idle bridge must not load it). */
  get engineLoaded(): boolean {
    return this.loaded !== undefined;
  }

  private loadEngine(): Promise<Engine> {
    this.engine ??= (async () => {
      const wasm = await import("@matrix-org/matrix-sdk-crypto-wasm");
      await wasm.initAsync();
      const { IndexedDbMirror } = await import("./idb-mirror.js");
      const machines = await import("./machine.js");
      const { knex, vault, log } = this.options;
      const engine = { wasm, mirror: IndexedDbMirror.install(knex, vault, log), machines };
      this.loaded = engine;
      log.info("Matrix encryption engine loaded (matrix-sdk-crypto-wasm)");
      return engine;
    })();
    this.engine.catch(() => {
      this.engine = undefined;
    });
    return this.engine;
  }

  /** The loaded engine where a machine exists (so it was loaded). */
  private get wasm(): typeof Wasm {
    if (this.loaded === undefined) throw new Error("the encryption engine is not loaded");
    return this.loaded.wasm;
  }

  /** Flushes the store, frees the machines and marks the stop as clean. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.evicting);
    await Promise.all([...this.syncLoops.values()].map((loop) => loop.stop()));
    this.syncLoops.clear();
    for (const pending of this.machines.values()) {
      const machine = await pending.catch(() => undefined);
      machine?.close();
    }
    this.machines.clear();
    const engine = await this.engine?.catch(() => undefined);
    if (engine !== undefined) {
      await engine.mirror.flush();
      engine.mirror.uninstall();
    }
    await this.options.knex(META).where({ key: RUNNING }).del();
  }

  initialState(): { type: string; state_key: string; content: Record<string, unknown> }[] {
    if (!this.options.config.default) return [];
    return [{ type: "m.room.encryption", state_key: "", content: { ...MEGOLM_ENCRYPTION } }];
  }

  async roomCreated(
    room: string,
    initialState: { type: string; content: unknown }[],
  ): Promise<void> {
    const encryption = initialState.find((s) => s.type === "m.room.encryption");
    if (encryption === undefined) return;
    await this.setEncrypted(room, encryption.content as Record<string, unknown>);
  }

  /** Whether `room` is encrypted: one cached lookup, the homeserver asked once per room. */
  async isEncrypted(room: string): Promise<boolean> {
    return (await this.encryptionOf(room)) !== null;
  }

  /**
   * Takes what a transaction carries for the bridge's devices and the room state the crypto layer
   * follows (members, m.room.encryption). Resolves once every change is in the bridge database;
   * rejects with a transient error when the homeserver or the database is unavailable, so that
   * the transaction is retried.
   */
  async receiveTransactionExtras(txn: { events: WeakEvent[]; raw?: Record<string, unknown> }) {
    for (const event of txn.events) await this.observe(event);
    if (txn.raw === undefined) return;
    const extras = parseTransactionExtras(txn.raw, (problem) =>
      this.options.log.warn({ problem }, "malformed encryption data in a transaction ignored"),
    );
    await this.receive(extras);
  }

  /**
   * The clear event for the router. Encrypted events are decrypted with the bot's device, waiting
   * up to `decrypt_wait_ms` for a missing room key (the machine requests it from the sender's
   * other devices meanwhile).
   */
  async decrypt(event: WeakEvent): Promise<DecryptOutcome> {
    if (event.type !== "m.room.encrypted") {
      if (
        this.options.config.require &&
        event.state_key === undefined &&
        (event.type === "m.room.message" || event.type === "m.sticker")
      ) {
        return { kind: "refused", reason: "this bridge bridges only encrypted messages" };
      }
      return { kind: "clear", event };
    }
    if (!this.options.config.allow) {
      return { kind: "undecryptable", reason: "encryption is turned off on this bridge" };
    }
    const room = event.room_id;
    const bot = await this.machine(this.options.botUserId);
    const deadline = Date.now() + this.options.config.decrypt_wait_ms;
    for (let attempt = 0; ; attempt++) {
      const arrived = this.nextKeyArrival();
      try {
        const decrypted = await bot.decrypt(event as unknown as Record<string, unknown>, room);
        return { kind: "clear", event: clearEvent(event, decrypted.event) };
      } catch (err) {
        if (!(err instanceof this.wasm.MegolmDecryptionError)) throw err;
        const missing =
          err.code === this.wasm.DecryptionErrorCode.MissingRoomKey ||
          err.code === this.wasm.DecryptionErrorCode.UnknownMessageIndex;
        const left = deadline - Date.now();
        if (!missing || left <= 0) {
          this.options.log.info(
            { eventId: event.event_id, code: err.code, attempts: attempt + 1 },
            "an encrypted Matrix event could not be decrypted",
          );
          return { kind: "undecryptable", reason: err.description };
        }
        // The machine queued a key request to the sender's devices: send it, then wait.
        await bot.sendOutgoing().catch((e: unknown) => {
          this.options.log.debug({ err: describeError(e) }, "room key request not sent");
        });
        await Promise.race([arrived, new Promise((r) => setTimeout(r, Math.min(left, 1000)))]);
      }
    }
  }

  async encrypt(
    as: string,
    room: string,
    type: string,
    content: Record<string, unknown>,
  ): Promise<{ type: string; content: Record<string, unknown> }> {
    const encryption = await this.encryptionOf(room);
    if (encryption === null || !this.options.config.allow) return { type, content };
    const members = await this.membersOf(room);
    members.add(as);
    const machine = await this.machine(as);
    await this.rememberOutbound(as, room);
    const settings = new this.wasm.EncryptionSettings();
    const period = encryption["rotation_period_ms"];
    const messages = encryption["rotation_period_msgs"];
    if (typeof period === "number" && period > 0) {
      settings.rotationPeriod = BigInt(Math.floor(period)) * 1000n;
    }
    if (typeof messages === "number" && messages > 0) {
      settings.rotationPeriodMessages = BigInt(Math.floor(messages));
    }
    settings.sharingStrategy =
      this.options.config.share_keys_with === "all"
        ? this.wasm.CollectStrategy.allDevices()
        : this.wasm.CollectStrategy.deviceBasedStrategy(true, false);
    const encrypted = await machine.encrypt(room, type, content, [...members], settings);
    return { type: "m.room.encrypted", content: encrypted };
  }

  async uploadEncrypted(
    as: string,
    chunks: AsyncIterable<Uint8Array>,
    fileName: string,
  ): Promise<EncryptedFile> {
    const encrypting = encryptAttachment(chunks);
    const answer = await this.http.upload(
      `/_matrix/media/v3/upload?filename=${encodeURIComponent(fileName)}&user_id=${encodeURIComponent(as)}`,
      this.options.asToken,
      encrypting.chunks,
      "application/octet-stream",
    );
    const url = answer["content_uri"];
    if (typeof url !== "string" || !url.startsWith("mxc://")) {
      throw new HomeserverError(
        "homeserver-refused",
        "the upload answer has no content_uri",
        200,
        undefined,
      );
    }
    return { url, ...encrypting.info() };
  }

  async openEncrypted(
    mxc: string,
    encryption: { key: string; iv: string; sha256: string },
  ): Promise<AsyncIterable<Uint8Array>> {
    const media = mxc.slice("mxc://".length);
    const bot = `user_id=${encodeURIComponent(this.options.botUserId)}`;
    let body: AsyncIterable<Uint8Array>;
    try {
      body = await this.http.download(
        `/_matrix/client/v1/media/download/${media}?${bot}`,
        this.options.asToken,
      );
    } catch (err) {
      // Homeservers without authenticated media answer M_UNRECOGNIZED (HOMESERVERS.md).
      if (!(err instanceof HomeserverError) || err.errcode !== "M_UNRECOGNIZED") throw err;
      body = await this.http.download(
        `/_matrix/media/v3/download/${media}?${bot}`,
        this.options.asToken,
      );
    }
    return decryptAttachment(body, encryption);
  }

  /** Follows member and m.room.encryption state from the events of a transaction. */
  private async observe(event: WeakEvent): Promise<void> {
    if (typeof event.room_id !== "string" || typeof event.state_key !== "string") return;
    const content = (event.content ?? {}) as Record<string, unknown>;
    if (event.type === "m.room.encryption" && event.state_key === "") {
      if (typeof content["algorithm"] === "string") await this.setEncrypted(event.room_id, content);
      return;
    }
    if (event.type !== "m.room.member") return;
    const members = this.members.get(event.room_id);
    if (members === undefined) return;
    const membership = content["membership"];
    if (membership === "join" || membership === "invite") members.add(event.state_key);
    else members.delete(event.state_key);
  }

  private async setEncrypted(room: string, content: Record<string, unknown>): Promise<void> {
    const known = this.rooms.get(room);
    if (known !== undefined && known !== null) return;
    this.rooms.set(room, content);
    await this.options
      .knex(ROOMS)
      .insert({ room_id: room, encryption: JSON.stringify(content), updated_at: Date.now() })
      .onConflict("room_id")
      .merge();
    this.options.log.info({ room }, "room is encrypted; the bridge encrypts what it sends there");
  }

  private async encryptionOf(room: string): Promise<Record<string, unknown> | null> {
    const cached = this.rooms.get(room);
    if (cached !== undefined) return cached;
    const row = (await this.options.knex(ROOMS).where({ room_id: room }).first()) as
      { encryption: string } | undefined;
    if (row !== undefined) {
      const content = JSON.parse(row.encryption) as Record<string, unknown>;
      this.rooms.set(room, content);
      return content;
    }
    // Never seen: a room from before encryption was followed. Ask the homeserver once.
    try {
      const state = await this.asBot(
        "GET",
        `/_matrix/client/v3/rooms/${encodeURIComponent(room)}/state/m.room.encryption/`,
      );
      if (typeof state["algorithm"] === "string") {
        await this.setEncrypted(room, state);
        return state;
      }
    } catch (err) {
      if (isTransientError(err)) throw err;
      // M_NOT_FOUND: no m.room.encryption state, a plaintext room.
    }
    if (!this.rooms.has(room)) this.rooms.set(room, null);
    return this.rooms.get(room) ?? null;
  }

  private async membersOf(room: string): Promise<Set<string>> {
    const known = this.members.get(room);
    if (known !== undefined) return known;
    const answer = await this.asBot(
      "GET",
      `/_matrix/client/v3/rooms/${encodeURIComponent(room)}/members?not_membership=leave`,
    );
    const members = new Set<string>();
    const chunk = Array.isArray(answer["chunk"]) ? (answer["chunk"] as WeakEvent[]) : [];
    for (const event of chunk) {
      const membership = (event.content as { membership?: unknown } | undefined)?.membership;
      if (
        typeof event.state_key === "string" &&
        (membership === "join" || membership === "invite")
      ) {
        members.add(event.state_key);
      }
    }
    // Member events that arrived meanwhile were applied to nothing: the answer is newer.
    this.members.set(room, members);
    return members;
  }

  private asBot(method: "GET", path: string): Promise<Record<string, unknown>> {
    const separator = path.includes("?") ? "&" : "?";
    return this.http.request(
      method,
      `${path}${separator}user_id=${encodeURIComponent(this.options.botUserId)}`,
      this.options.asToken,
    );
  }

  private async rememberOutbound(user: string, room: string): Promise<void> {
    const key = `${user}\n${room}`;
    if (this.outbound.has(key)) return;
    await this.options
      .knex(OUTBOUND)
      .insert({ user_id: user, room_id: room })
      .onConflict(["user_id", "room_id"])
      .ignore();
    this.outbound.add(key);
  }

  /** The machine of `user`'s device, loaded (and the device created) on first use. */
  private machine(user: string): Promise<DeviceMachine> {
    let pending = this.machines.get(user);
    if (pending === undefined) {
      pending = this.load(user);
      this.machines.set(user, pending);
      pending.catch(() => this.machines.delete(user));
    }
    return pending.then((m) => {
      m.lastUsed = Date.now();
      return m;
    });
  }

  private async load(user: string): Promise<DeviceMachine> {
    const engine = await this.loadEngine();
    const credentials = await this.devices.credentials(user);
    const machine = await engine.machines.DeviceMachine.open(credentials, {
      http: this.http,
      mirror: engine.mirror,
      storeKey: this.storeKey,
      log: this.options.log,
    });
    if (this.unclean) {
      const rooms = (await this.options.knex(OUTBOUND).where({ user_id: user })) as {
        room_id: string;
      }[];
      for (const { room_id: room } of rooms) machine.staleOutbound.add(room);
    }
    // Device-list changes pushed while the machine was unloaded reached no one: refresh every
    // user it tracks before it encrypts again.
    const tracked = [...(await machine.olm.trackedUsers())].map((u) => u.toString());
    await machine.receive({ toDevice: [], changed: tracked, left: [] });
    await machine.crossSignOwnDevice().catch((err: unknown) => {
      // Without it clients warn about the device; messages still flow.
      if (isTransientError(err)) throw err;
      this.options.log.warn(
        { user, err: describeError(err) },
        "the device could not be cross-signed by its user",
      );
    });
    if (this.options.config.receive === "sync" && !this.stopped) {
      const loop = new DeviceSyncLoop(machine, this.http, this.options.knex, this.options.log, () =>
        this.keysArrived(),
      );
      this.syncLoops.set(user, loop);
      loop.start();
    }
    return machine;
  }

  private async receive(extras: TransactionExtras): Promise<void> {
    const perDevice = new Map<string, DeviceSyncChanges & { deviceId: string }>();
    const changesFor = (user: string, device: string) => {
      let changes = perDevice.get(user);
      if (changes === undefined) {
        changes = { deviceId: device, toDevice: [], changed: [], left: [] };
        perDevice.set(user, changes);
      }
      return changes;
    };
    for (const event of extras.toDevice)
      changesFor(event.user, event.device).toDevice.push(event.event);
    for (const [user, byDevice] of Object.entries(extras.oneTimeKeyCounts)) {
      for (const [device, counts] of Object.entries(byDevice)) {
        const low = (counts["signed_curve25519"] ?? 0) < LOW_ONE_TIME_KEYS;
        if (low || this.machines.has(user)) changesFor(user, device).oneTimeKeyCounts = counts;
      }
    }
    for (const [user, byDevice] of Object.entries(extras.fallbackKeyTypes)) {
      for (const [device, types] of Object.entries(byDevice)) {
        if (this.machines.has(user) || perDevice.has(user)) {
          changesFor(user, device).unusedFallbackKeyTypes = types;
        }
      }
    }
    const lists = extras.deviceLists;
    if (lists.changed.length > 0 || lists.left.length > 0) {
      for (const user of this.machines.keys()) {
        const device = (await this.devices.existing(user))?.deviceId;
        if (device === undefined) continue;
        const changes = changesFor(user, device);
        changes.changed = lists.changed;
        changes.left = lists.left;
      }
    }
    let keys = false;
    for (const [user, changes] of perDevice) {
      const known = await this.devices.existing(user);
      if (known?.deviceId !== changes.deviceId) {
        // Meant for another device of that user (not the bridge's): nothing to do with it.
        continue;
      }
      try {
        const machine = await this.machine(user);
        await machine.receive(changes);
      } catch (err) {
        // Transient (homeserver or database away): the transaction is retried. Anything else
        // is this device's problem and must not hold up every later transaction.
        if (isTransientError(err)) throw err;
        this.options.log.error(
          { user, err: describeError(err) },
          "a bridge device could not take its encryption data",
        );
      }
      if (changes.toDevice.length > 0) keys = true;
    }
    if (keys) this.keysArrived();
  }

  private nextKeyArrival(): Promise<void> {
    return new Promise((resolve) => this.keyWaiters.push(resolve));
  }

  private keysArrived(): void {
    const waiters = this.keyWaiters;
    this.keyWaiters = [];
    for (const wake of waiters) wake();
  }

  /** Unloads ghost machines unused for `idle_device_ms` (their store stays in the database). */
  private async evictIdle(): Promise<void> {
    if (this.stopped) return;
    const limit = Date.now() - this.options.config.idle_device_ms;
    for (const [user, pending] of this.machines) {
      if (user === this.options.botUserId) continue;
      const machine = await pending.catch(() => undefined);
      if (machine === undefined || machine.lastUsed > limit) continue;
      this.machines.delete(user);
      try {
        const loop = this.syncLoops.get(user);
        this.syncLoops.delete(user);
        await loop?.stop();
        machine.close();
        const engine = this.loaded;
        if (engine !== undefined) {
          await engine.mirror.evict(
            `${engine.machines.storeName(user, machine.credentials.deviceId)}::`,
          );
        }
      } catch (err) {
        this.options.log.warn(
          { err: describeError(err) },
          "an idle crypto machine was not unloaded",
        );
      }
    }
  }

  /** Number of machines in memory (tests and metrics). */
  get loadedMachines(): number {
    return this.machines.size;
  }
}

/** The random key that seals the machines' IndexedDB stores, kept sealed by the key vault. */
async function loadStoreKey(knex: Knex, vault: KeyVault): Promise<Uint8Array> {
  const row = (await knex(META).where({ key: STORE_KEY }).first()) as { value: Buffer } | undefined;
  if (row !== undefined) return new Uint8Array(vault.open(row.value, [META, STORE_KEY]));
  await knex(META)
    .insert({ key: STORE_KEY, value: vault.seal(randomBytes(32), [META, STORE_KEY]) })
    .onConflict("key")
    .ignore();
  return loadStoreKey(knex, vault);
}

/** The router's view of a decrypted event: its clear type and content, the rest as received. */
function clearEvent(event: WeakEvent, decrypted: string): WeakEvent {
  const clear = JSON.parse(decrypted) as { type?: unknown; content?: unknown };
  const content = { ...((clear.content ?? {}) as Record<string, unknown>) };
  // Relations travel outside the ciphertext (the server needs them for aggregation).
  const relation = (event.content as Record<string, unknown> | undefined)?.["m.relates_to"];
  if (content["m.relates_to"] === undefined && relation !== undefined) {
    content["m.relates_to"] = relation;
  }
  return {
    ...event,
    type: typeof clear.type === "string" ? clear.type : event.type,
    content,
  };
}
