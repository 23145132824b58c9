import * as wasm from "@matrix-org/matrix-sdk-crypto-wasm";
import { KeyedMutex } from "../../util/mutex.js";
import { BridgeError } from "../../util/errors.js";
import type { Logger } from "../../util/log.js";
import type { CryptoHttp } from "./homeserver.js";
import { MIRRORED_PREFIX, type IndexedDbMirror } from "./idb-mirror.js";

/** A Matrix device the bridge owns: the bot's or a ghost's. */
export interface DeviceCredentials {
  userId: string;
  deviceId: string;
  accessToken: string;
}

/** What one device gets from a sync or an appservice transaction. */
export interface DeviceSyncChanges {
  toDevice: Record<string, unknown>[];
  changed: string[];
  left: string[];
  oneTimeKeyCounts?: Record<string, number>;
  unusedFallbackKeyTypes?: string[];
}

/** Outgoing requests are drained in rounds; more than this many in one go means a loop. */
const MAX_REQUEST_ROUNDS = 20;

let initialised: Promise<void> | undefined;

/** The IndexedDB database-name prefix of one device's store. */
export function storeName(userId: string, deviceId: string): string {
  return `${MIRRORED_PREFIX}${userId}/${deviceId}`;
}

/**
 * One OlmMachine and the homeserver requests it asks for, made with the device's own token.
 * Every operation that changes the machine's state ends with the store flushed to the bridge
 * database, so what the homeserver or the user was told (a key upload acknowledged, an event
 * encrypted with a given Megolm index) is never ahead of what a restart would load.
 */
export class DeviceMachine {
  lastUsed = Date.now();
  /**
   * Rooms whose outbound Megolm session must not be used again (the previous run stopped
   * uncleanly): it is replaced before the next message there.
   */
  readonly staleOutbound = new Set<string>();
  /** Serialises the machine's request loop and room-key sharing per room. */
  private readonly lock = new KeyedMutex();
  /** The key counts and fallback key types last handed to the machine, as JSON. */
  private lastKeyState: string | undefined;

  private constructor(
    readonly credentials: DeviceCredentials,
    readonly olm: wasm.OlmMachine,
    private readonly http: CryptoHttp,
    private readonly mirror: IndexedDbMirror,
  ) {}

  /** Loads (or creates) the device's machine from the mirrored store, sealed by `storeKey`. */
  static async open(
    credentials: DeviceCredentials,
    options: { http: CryptoHttp; mirror: IndexedDbMirror; storeKey: Uint8Array; log: Logger },
  ): Promise<DeviceMachine> {
    initialised ??= wasm.initAsync();
    await initialised;
    const name = storeName(credentials.userId, credentials.deviceId);
    await options.mirror.restore(`${name}::`);
    const handle = await wasm.StoreHandle.openWithKey(name, options.storeKey);
    const olm = (await wasm.OlmMachine.initFromStore(
      new wasm.UserId(credentials.userId),
      new wasm.DeviceId(credentials.deviceId),
      handle,
    )) as wasm.OlmMachine;
    handle.free();
    const machine = new DeviceMachine(credentials, olm, options.http, options.mirror);
    await options.mirror.flush();
    return machine;
  }

  get userId(): string {
    return this.credentials.userId;
  }

  /** Hands sync or transaction data to the machine, then does what it asks (e.g. upload keys). */
  async receive(changes: DeviceSyncChanges): Promise<void> {
    this.lastUsed = Date.now();
    // Every appservice transaction repeats the key counts of every loaded bridge device, and
    // receiveSyncChanges saves the whole Olm account each time (unpickling it again in wasm: about
    // a millisecond of CPU and a store write per device per transaction, found by the benchmark).
    // Counts this machine has already taken, with nothing else, tell it nothing new.
    const keyState = JSON.stringify([
      changes.oneTimeKeyCounts ?? null,
      changes.unusedFallbackKeyTypes ?? null,
    ]);
    if (
      changes.toDevice.length === 0 &&
      changes.changed.length === 0 &&
      changes.left.length === 0 &&
      keyState === this.lastKeyState
    ) {
      return;
    }
    const counts = new Map(Object.entries(changes.oneTimeKeyCounts ?? {}));
    const lists = new wasm.DeviceLists(
      changes.changed.map((u) => new wasm.UserId(u)),
      changes.left.map((u) => new wasm.UserId(u)),
    );
    await this.olm.receiveSyncChanges(
      JSON.stringify(changes.toDevice),
      lists,
      counts,
      changes.unusedFallbackKeyTypes === undefined ? null : new Set(changes.unusedFallbackKeyTypes),
    );
    this.lastKeyState = keyState;
    await this.sendOutgoing();
  }

  /**
   * Sends every request the machine has queued (key upload, key queries, to-device, signatures)
   * and reports the answers back, until the machine has nothing left; then flushes the store.
   */
  async sendOutgoing(): Promise<void> {
    await this.lock.run(["outgoing"], async () => {
      for (let round = 0; round < MAX_REQUEST_ROUNDS; round++) {
        const requests = await this.olm.outgoingRequests();
        if (requests.length === 0) break;
        for (const request of requests) await this.send(request);
      }
    });
    await this.mirror.flush();
  }

  /**
   * Encrypts one event for `members` of `room`: their device lists are brought up to date, Olm
   * sessions are claimed where missing and the room key is shared (rotated by the machine when a
   * recipient left, per the rotation settings). Resolves with the m.room.encrypted content after
   * the store is flushed: the Megolm index used is never reused after a crash.
   */
  async encrypt(
    room: string,
    type: string,
    content: Record<string, unknown>,
    members: string[],
    settings: wasm.EncryptionSettings,
  ): Promise<Record<string, unknown>> {
    this.lastUsed = Date.now();
    // wasm-bindgen moves objects passed in a Vec: each call gets its own UserIds.
    const users = () => members.map((m) => new wasm.UserId(m));
    return this.lock.run([`room ${room}`], async () => {
      await this.olm.updateTrackedUsers(users());
      await this.sendOutgoing();
      const claim = await this.olm.getMissingSessions(users());
      // null (not undefined, as typed) when every session exists.
      if (claim !== null && claim !== undefined)
        await this.lock.run(["outgoing"], () => this.send(claim));
      if (this.staleOutbound.has(room)) {
        // invalidateGroupSession acts on the machine's session cache only, which a session
        // stored by an earlier run enters when it is next shared: share, then invalidate.
        await this.share(room, users(), settings);
        await this.olm.invalidateGroupSession(new wasm.RoomId(room));
        this.staleOutbound.delete(room);
      }
      await this.share(room, users(), settings);
      const encrypted = await this.olm.encryptRoomEvent(
        new wasm.RoomId(room),
        type,
        JSON.stringify(content),
      );
      await this.mirror.flush();
      return JSON.parse(encrypted) as Record<string, unknown>;
    });
  }

  private async share(
    room: string,
    users: wasm.UserId[],
    settings: wasm.EncryptionSettings,
  ): Promise<void> {
    const shares = (await this.olm.shareRoomKey(
      new wasm.RoomId(room),
      users,
      settings,
    )) as wasm.ToDeviceRequest[];
    await this.lock.run(["outgoing"], async () => {
      for (const share of shares) await this.send(share);
    });
  }

  /**
   * Gives the device's user cross-signing keys and signs the device with them, so that clients
   * show the device as verified by its owner rather than warn about it. The first upload needs no
   * user-interactive auth (MSC3967, spec v1.11). Resolves false when the user already has keys.
   */
  async crossSignOwnDevice(): Promise<boolean> {
    const status = await this.olm.crossSigningStatus();
    if (status.hasMaster && status.hasSelfSigning) return false;
    const requests = await this.olm.bootstrapCrossSigning(true);
    await this.lock.run(["outgoing"], async () => {
      const upload = requests.uploadKeysRequest as wasm.KeysUploadRequest | undefined | null;
      if (upload !== undefined && upload !== null) await this.send(upload);
      await this.http.request(
        "POST",
        "/_matrix/client/v3/keys/device_signing/upload",
        this.credentials.accessToken,
        requests.uploadSigningKeysRequest.body,
      );
      await this.send(requests.uploadSignaturesRequest);
    });
    await this.mirror.flush();
    return true;
  }

  /** Decrypts an m.room.encrypted event; rejects with the machine's MegolmDecryptionError. */
  async decrypt(event: Record<string, unknown>, room: string): Promise<wasm.DecryptedRoomEvent> {
    this.lastUsed = Date.now();
    const settings = new wasm.DecryptionSettings(wasm.TrustRequirement.Untrusted);
    return this.olm.decryptRoomEvent(JSON.stringify(event), new wasm.RoomId(room), settings);
  }

  /** Frees the wasm machine; its store stays in the bridge database. */
  close(): void {
    this.olm.close();
  }

  private async send(request: wasm.OutgoingRequest | wasm.ToDeviceRequest): Promise<void> {
    const token = this.credentials.accessToken;
    let answer: Record<string, unknown>;
    switch (request.type) {
      case wasm.RequestType.KeysUpload:
        answer = await this.http.request(
          "POST",
          "/_matrix/client/v3/keys/upload",
          token,
          request.body,
        );
        break;
      case wasm.RequestType.KeysQuery:
        answer = await this.http.request(
          "POST",
          "/_matrix/client/v3/keys/query",
          token,
          request.body,
        );
        break;
      case wasm.RequestType.KeysClaim:
        answer = await this.http.request(
          "POST",
          "/_matrix/client/v3/keys/claim",
          token,
          request.body,
        );
        break;
      case wasm.RequestType.ToDevice: {
        const toDevice = request as wasm.ToDeviceRequest;
        answer = await this.http.request(
          "PUT",
          `/_matrix/client/v3/sendToDevice/${encodeURIComponent(toDevice.event_type)}/${encodeURIComponent(toDevice.txn_id)}`,
          token,
          toDevice.body,
        );
        break;
      }
      case wasm.RequestType.SignatureUpload:
        answer = await this.http.request(
          "POST",
          "/_matrix/client/v3/keys/signatures/upload",
          token,
          request.body,
        );
        break;
      case wasm.RequestType.RoomMessage: {
        const message = request as wasm.RoomMessageRequest;
        answer = await this.http.request(
          "PUT",
          `/_matrix/client/v3/rooms/${encodeURIComponent(message.room_id)}/send/${encodeURIComponent(message.event_type)}/${encodeURIComponent(message.txn_id)}`,
          token,
          message.body,
        );
        break;
      }
      default:
        // Key backup is never enabled on the bridge's devices.
        throw new BridgeError(
          "crypto-request-unknown",
          `unexpected crypto request type ${request.type}`,
        );
    }
    if (request.id !== undefined) {
      await this.olm.markRequestAsSent(request.id, request.type, JSON.stringify(answer));
    }
  }
}
