import type { Logger } from "../../src/util/log.js";
import { AppservicePusher } from "./appservice/pusher.js";
import { AppserviceRegistry } from "./appservice/registration.js";
import { notFound } from "./errors.js";
import { E2eeState } from "./e2ee/state.js";
import { assertEventSize, newEventId, redactEvent } from "./events.js";
import { MediaStore } from "./media/store.js";
import { AccountDataStore } from "./store/accountData.js";
import { authorise } from "./store/auth.js";
import { Room, type StoredEvent, type TxnOrigin } from "./store/room.js";
import { UserStore, type Session } from "./store/users.js";
import { Stream } from "./stream.js";
import type {
  AppserviceRegistration,
  EphemeralEvent,
  HomeserverProfile,
  JsonObject,
  Outage,
  PushFaultInjector,
  ClientFaultInjector,
  RoomEvent,
} from "./types.js";

export interface CoreOptions {
  serverName: string;
  profile: HomeserverProfile;
  appservices: readonly AppserviceRegistration[];
  maxUploadBytes: number;
  pushTimeoutMs: number;
  retryInitialMs: number;
  retryMaxMs: number;
  /** MSC2409/MSC3202 data in appservice transactions (false: a homeserver without them). */
  appserviceCryptoPushes: boolean;
  logger: Logger;
}

export interface EventDraft {
  type: string;
  sender: string;
  content: JsonObject;
  state_key?: string;
  redacts?: string;
}

/** The homeserver's state and the one path every new event takes (authorise, store, fan out). */
export class HomeserverCore {
  readonly serverName: string;
  readonly profile: HomeserverProfile;
  readonly users: UserStore;
  readonly accountData = new AccountDataStore();
  readonly rooms = new Map<string, Room>();
  readonly aliases = new Map<string, string>();
  /** Who created each alias: they (or the owning appservice) may delete it. */
  readonly aliasCreators = new Map<string, string>();
  /** Rooms listed in the public room directory. */
  readonly publishedRooms = new Set<string>();
  readonly stream = new Stream();
  readonly appservices: AppserviceRegistry;
  readonly pushers = new Map<string, AppservicePusher>();
  readonly media: MediaStore;
  readonly e2ee: E2eeState;
  /** Idempotency of client transactions: key -> the event id (or other answer) first produced. */
  readonly txnResults = new Map<string, string>();
  faultInjector: PushFaultInjector | undefined;
  /** Set while the homeserver plays dead (`TestHomeserver.outage`). */
  outage: Outage | undefined;
  /** Fault injection for client-server and media requests (see TestHomeserver.failClientRequests). */
  clientFaultInjector: ClientFaultInjector | undefined;

  constructor(readonly options: CoreOptions) {
    this.serverName = options.serverName;
    this.profile = options.profile;
    this.users = new UserStore(options.serverName);
    this.media = new MediaStore(options.serverName, options.maxUploadBytes);
    this.appservices = new AppserviceRegistry(options.appservices, options.serverName);
    this.e2ee = new E2eeState(this, options.appserviceCryptoPushes);
    for (const as of this.appservices.all) {
      // Synapse registers each appservice's sender user itself.
      if (this.users.get(as.senderId) === undefined) {
        this.users.create(as.registration.sender_localpart, { appserviceId: as.id });
      }
      this.pushers.set(
        as.id,
        new AppservicePusher(as, {
          profile: options.profile,
          pushTimeoutMs: options.pushTimeoutMs,
          retryInitialMs: options.retryInitialMs,
          retryMaxMs: options.retryMaxMs,
          logger: options.logger,
          injector: () => this.faultInjector,
          down: () => this.outage !== undefined,
          extensions: (contents) => this.e2ee.transactionExtensions(as, contents),
        }),
      );
    }
  }

  get defaultRoomVersion(): string {
    return this.profile === "synapse-1.67" ? "9" : "10";
  }

  /**
   * Logs `userId` in on `deviceId` (a new device when absent or unknown), with a new access token.
   * A new device is a device-list change, as on Synapse.
   */
  startSession(userId: string, deviceId?: string, displayName?: string): Session {
    const session = this.users.startSession(userId, deviceId);
    const { created } = this.e2ee.devices.ensure(userId, session.deviceId, displayName);
    if (created) this.e2ee.deviceListChanged(userId);
    return session;
  }

  room(roomId: string): Room {
    const room = this.rooms.get(roomId);
    if (room === undefined) throw notFound(`Unknown room ${roomId}`);
    return room;
  }

  /** Authorises and stores a new event, then wakes syncs and queues it for interested appservices. */
  persist(
    room: Room,
    draft: EventDraft,
    options: { txn?: TxnOrigin; ts?: number } = {},
  ): StoredEvent {
    authorise(room, { ...draft, room_id: room.id });
    const event: RoomEvent = {
      event_id: newEventId(),
      room_id: room.id,
      origin_server_ts: options.ts ?? Date.now(),
      ...draft,
    };
    assertEventSize(event);
    if (draft.state_key !== undefined) {
      const previous = room.getState(draft.type, draft.state_key);
      if (previous !== undefined) {
        event.unsigned = {
          prev_content: previous.content,
          prev_sender: previous.sender,
          replaces_state: previous.event_id,
        };
      }
    }
    const stored = room.append(event, this.stream.current + 1, options.txn);
    if (draft.type === "m.room.redaction" && draft.redacts !== undefined)
      this.applyRedaction(room, event);
    this.stream.advance();
    for (const as of this.appservices.all) {
      if (as.interestedInEvent(event, room))
        this.pushers.get(as.id)?.enqueue(this.clientEvent(stored));
    }
    return stored;
  }

  private applyRedaction(room: Room, redaction: RoomEvent): void {
    const target = room.findEvent(redaction.redacts ?? "");
    if (target === undefined) return;
    // Synapse keeps the unredacted JSON for `redaction_retention_period` (7 days by default).
    target.original ??= target.event;
    target.event = redactEvent(target.event, room.versionNumber);
    target.redactedBy = redaction;
  }

  /**
   * The client format of a stored event. `viewerTokenKey` is the requesting device's key: only the
   * device that sent the event sees `unsigned.transaction_id` (spec, client-server "Transaction
   * identifiers").
   */
  clientEvent(stored: StoredEvent, viewerTokenKey?: string): RoomEvent {
    const unsigned: JsonObject = {
      ...stored.event.unsigned,
      age: Math.max(0, Date.now() - stored.event.origin_server_ts),
    };
    if (stored.redactedBy !== undefined) unsigned["redacted_because"] = stored.redactedBy;
    if (stored.txn !== undefined && stored.txn.tokenKey === viewerTokenKey) {
      unsigned["transaction_id"] = stored.txn.txnId;
    }
    return { ...stored.event, unsigned };
  }

  /** Sends changed typing state to appservices that asked for ephemeral data. */
  fanOutEphemeral(room: Room, event: EphemeralEvent, privateToUser?: string): void {
    for (const as of this.appservices.all) {
      if (!as.wantsEphemeral(this.profile) || !as.interestedInRoom(room)) continue;
      // Private read receipts only go to the appservice owning the user (spec, AS API ephemeral).
      if (privateToUser !== undefined && !as.ownsUser(privateToUser)) continue;
      this.pushers.get(as.id)?.enqueueEphemeral({ ...event, room_id: room.id });
    }
  }

  /** Rooms in which `userId` currently has the given membership. */
  roomsWithMembership(userId: string, membership: string): Room[] {
    return [...this.rooms.values()].filter((r) => r.membership(userId) === membership);
  }

  stop(): void {
    for (const pusher of this.pushers.values()) pusher.stop();
    for (const room of this.rooms.values())
      for (const timer of room.typing.values()) clearTimeout(timer);
    this.stream.wakeAll();
  }
}
