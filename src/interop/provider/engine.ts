import { GatekeeperError } from "./errors.js";
import { observeAccepted, ReorderBuffer } from "./reorder.js";
import type { Knex } from "knex";
import { describeError } from "../../util/errors.js";
import type { BareJid, DeviceId, MessageId } from "../../util/ids.js";
import { silentLogger, type Logger } from "../../util/log.js";
import type { ContentElement } from "../codec/content.js";
import type { ChatState, MessageRef } from "../codec/delivery.js";
import { GATEKEEPER_DOMAIN, GROUP_DOMAIN, NS } from "../codec/namespaces.js";
import { deviceJid } from "../codec/jid.js";
import type { XmlElement } from "../codec/xml.js";
import type { KeyVault } from "../../vault/key-vault.js";
import type { DeviceCrypto, SignalCrypto } from "../crypto/signal-crypto.js";
import type { ComponentConnection } from "../transport/component.js";
import { TransportError } from "../transport/errors.js";
import { IqCaller, IqResponder } from "../transport/iq.js";
import { AccountService } from "./account.js";
import { KeyDirectory } from "./directory.js";
import { identityChangeEntry } from "./events.js";
import { AckBatcher, InboxStore } from "./inbox.js";
import { GatekeeperIq } from "./iq-client.js";
import { ProviderMedia } from "./media.js";
import { Outbox } from "./outbox.js";
import { Receiver } from "./receiver.js";
import { RetryAnswerer } from "./retries.js";
import { Sender } from "./sender.js";
import * as tables from "../store/index.js";
import { GroupManagement, GroupStore } from "./groups.js";
import { HelloSession } from "./session.js";
import {
  DEFAULT_TIMING,
  type EngineState,
  type EngineTiming,
  type ProviderEvent,
  type ProviderEventHandler,
} from "./types.js";

export interface ProviderEngineOptions {
  readonly connection: ComponentConnection;
  readonly knex: Knex;
  readonly crypto: SignalCrypto;
  /** The vault that seals outbox envelopes and pending inbound events. */
  readonly vault: KeyVault;
  /** The enlisted provider id (§8.1), e.g. `matrix-bridge-example`. */
  readonly providerId: string;
  readonly gatekeeperDomain?: string;
  readonly groupDomain?: string;
  /** Optional features to offer in hello (§8.3); default none. */
  readonly features?: readonly string[];
  /**
   * Receives every event. For queued deliveries the gatekeeper is acked only after the returned
   * promise resolved; a rejection means the delivery comes again (P13).
   */
  readonly onEvent: ProviderEventHandler;
  readonly logger?: Logger;
  readonly now?: () => number;
  readonly timing?: Partial<EngineTiming>;
  readonly allowInsecureMediaOnLoopback?: boolean;
}

const MAINTENANCE_MS = 3_600_000;

/**
 * The provider side of the gatekeeper protocol over one component connection: hello and
 * liveness, the key directory for local users, identity/discovery/abuse IQs, reliable sending
 * through the persisted outbox, de-duplicated receiving with acks after hand-over, retries, and
 * media slots. A thin adapter turns it into core/network.ts's NetworkConnector.
 */
export class ProviderEngine {
  readonly session: HelloSession;
  readonly outbox: Outbox;
  readonly directory: KeyDirectory;
  readonly account: AccountService;
  readonly media: ProviderMedia;
  readonly sender: Sender;
  readonly receiver: Receiver;
  /** Groups of local users (§17): management IQs and the stored versions and members. */
  readonly groups: GroupManagement;
  readonly groupStore: GroupStore;
  private readonly groupDomain: string;
  private readonly reorder: ReorderBuffer;
  readonly inbox: InboxStore;
  readonly acks: AckBatcher;
  private readonly log: Logger;
  private readonly timing: EngineTiming;
  private readonly helloIq: IqCaller;
  private readonly iq: IqCaller;
  private readonly responder: IqResponder;
  private readonly detachers: (() => void)[] = [];
  private tickTimer: NodeJS.Timeout | undefined;
  private maintenanceTimer: NodeJS.Timeout | undefined;
  private replayTimer: NodeJS.Timeout | undefined;
  /** The latest connection state, and the timer offering it again after its handler failed. */
  private latestState: EngineState | undefined;
  private stateRetryTimer: NodeJS.Timeout | undefined;
  private running = false;
  /**
   * Whether the gatekeeper answered hello on the current connection. Set in the dispatch of the
   * answer itself, so that the stanzas following it in the same read already count as after it.
   */
  private helloAnswered = false;

  constructor(private readonly options: ProviderEngineOptions) {
    const logger = (options.logger ?? silentLogger()).child({ component: "provider-engine" });
    this.log = logger;
    const now = options.now ?? Date.now;
    const timing: EngineTiming = { ...DEFAULT_TIMING, ...options.timing };
    this.timing = timing;
    const connection = options.connection;
    const gatekeeperDomain = options.gatekeeperDomain ?? GATEKEEPER_DOMAIN;
    // P15/E23: deliveries reach the core in seq order. The receiver asks the buffer before each
    // hand-over of a message; a held one stays pending (acked) and the buffer calls for its
    // conversation alone when its turn comes. Our accepted messages take their seqs too.
    this.reorder = new ReorderBuffer({
      holdMs: timing.reorderHoldMs,
      onDue: (conversation) => this.receiver.releaseHeld(conversation),
    });
    const emit = (event: ProviderEvent): Promise<void> => options.onEvent(event);

    this.helloIq = new IqCaller({ send: (s) => connection.send(s), logger });
    this.iq = new IqCaller({ send: (s) => this.session.send(s), logger });
    this.responder = new IqResponder({ send: (s) => this.session.send(s), logger });
    this.session = new HelloSession({
      connection,
      helloIq: this.helloIq,
      iq: this.iq,
      providerId: options.providerId,
      domain: connection.domain,
      gatekeeperDomain,
      groupDomain: options.groupDomain ?? GROUP_DOMAIN,
      features: options.features ?? [],
      timing,
      logger,
      now,
    });
    const gk = new GatekeeperIq({
      iq: this.iq,
      session: this.session,
      gatekeeperDomain,
      timing,
      now,
    });
    this.outbox = new Outbox({
      knex: options.knex,
      session: this.session,
      timing,
      now,
      logger,
      emit: observeAccepted(this.reorder, emit),
    });
    this.directory = new KeyDirectory({
      gk,
      crypto: options.crypto,
      knex: options.knex,
      now,
      logger,
      limits: () => this.session.limits,
    });
    this.account = new AccountService(gk, () => this.session.limits);
    this.groupDomain = options.groupDomain ?? GROUP_DOMAIN;
    this.groupStore = new GroupStore(options.knex, now);
    this.groups = new GroupManagement(gk, this.groupStore, options.knex, this.groupDomain);
    this.media = new ProviderMedia({
      gk,
      session: this.session,
      logger,
      allowInsecureLoopback: options.allowInsecureMediaOnLoopback ?? false,
    });
    this.sender = new Sender({
      knex: options.knex,
      crypto: options.crypto,
      vault: options.vault,
      directory: this.directory,
      outbox: this.outbox,
      session: this.session,
      now,
      logger,
      groups: this.groupStore,
      fetchGroup: async (local, group) => {
        await this.groups.info(local, group);
      },
    });
    this.outbox.setHooks({
      onStaleDeviceList: (row, stale) => this.sender.handleStale(row, stale),
      onUnknownDevice: async (row) => {
        const device = await this.localDeviceOf(row.senderJid);
        await this.directory.publishDevice(device);
        await this.outbox.retransmitAll();
      },
    });
    this.inbox = new InboxStore(options.knex, options.vault);
    this.acks = new AckBatcher({
      session: this.session,
      domain: connection.domain,
      inbox: this.inbox,
      delayMs: timing.ackDelayMs,
      maxItems: () => this.session.limits["max-ack-items"],
      logger,
    });
    this.receiver = new Receiver({
      knex: options.knex,
      crypto: options.crypto,
      inbox: this.inbox,
      acks: this.acks,
      outbox: this.outbox,
      retries: new RetryAnswerer({
        crypto: options.crypto,
        directory: this.directory,
        session: this.session,
        outbox: this.outbox,
      }),
      directory: this.directory,
      session: this.session,
      gatekeeperDomain,
      emit,
      reorder: this.reorder,
      now,
      logger,
      groups: { store: this.groupStore, management: this.groups },
      senderKeyWaitMs: timing.senderKeyWaitMs,
    });
  }

  get state(): EngineState {
    return this.session.state;
  }

  /** Connects and runs until `stop()`. Traffic flows once hello succeeded (`state.code` ready). */
  start(): void {
    if (this.running) return;
    this.running = true;
    const { connection, crypto } = this.options;
    this.detachers.push(connection.onStanza((stanza) => this.dispatch(stanza)));
    const onOffline = (): void => {
      this.helloAnswered = false;
      const reason = new TransportError("transport-offline", "the component connection dropped");
      this.helloIq.failAll(reason);
      this.iq.failAll(reason);
    };
    connection.on("offline", onOffline);
    this.detachers.push(() => connection.off("offline", onOffline));
    const onReady = (): void => void this.afterHello();
    // The connection state is a level, not a log: only the latest counts, so it is not written
    // to the inbox like a delivery, but offered again until the core took it (see offerState).
    const onState = (state: EngineState): void => this.offerState(state);
    this.session.on("ready", onReady);
    this.session.on("state", onState);
    this.detachers.push(
      () => this.session.off("ready", onReady),
      () => this.session.off("state", onState),
    );
    // Identity changes travel the durable path of deliveries (issue #16): the pending record is
    // written in the crypto transaction that records the new identity, handed over after its
    // commit, and removed only once the core handled it; a failure is retried like a message's.
    this.detachers.push(
      // One ms before its time: a message decrypted in the same transaction (the first from the
      // new identity) is written at the same ms or later, and a replay after a restart, ordered
      // by created_at, must still show the notice first.
      crypto.recordIdentityChanges((tx, change) =>
        this.inbox.addPending(tx, identityChangeEntry(change), change.at - 1),
      ),
      crypto.onIdentityChange((change) =>
        this.receiver.handOverCommitted(identityChangeEntry(change)),
      ),
    );
    // Queued ahead of every delivery of this run (see Receiver.loadPending).
    void this.receiver.loadPending();
    this.session.start();
    connection.start();
    this.tickTimer = setInterval(() => void this.outbox.tick(), this.timing.tickMs);
    this.tickTimer.unref();
    this.maintenanceTimer = setInterval(() => void this.maintenance(), MAINTENANCE_MS);
    this.maintenanceTimer.unref();
    // Events the core deferred (held message requests) wait pending in inbox: offer them again.
    this.replayTimer = setInterval(() => {
      if (this.session.state.code === "ready") void this.receiver.replayPending();
    }, this.timing.pendingReplayMs);
    this.replayTimer.unref();
  }

  /** Sends the collected acks, lets queued work finish, and closes the connection. */
  async stop(): Promise<void> {
    if (!this.running) return;
    await Promise.race([
      Promise.all([this.receiver.idle(), this.outbox.idle()]).then(() => this.acks.flush()),
      new Promise((resolve) => setTimeout(resolve, 5000).unref()),
    ]);
    await this.halt();
  }

  /**
   * Stops at once, without finishing queued work or sending acks: what a crash leaves behind.
   * Everything not yet acked is redelivered to the next run.
   */
  async halt(): Promise<void> {
    this.running = false;
    this.receiver.stop();
    this.reorder.stop();
    clearInterval(this.tickTimer);
    clearInterval(this.maintenanceTimer);
    clearInterval(this.replayTimer);
    clearTimeout(this.stateRetryTimer);
    this.acks.stop();
    for (const detach of this.detachers.splice(0)) detach();
    this.session.stop();
    const stopped = new TransportError("transport-stopped", "the engine stopped");
    this.helloIq.failAll(stopped);
    this.iq.failAll(stopped);
    this.media.client.close();
    await this.options.connection.stop();
    // A pass already running finishes, so that nothing touches the database after halt.
    await Promise.race([this.outbox.idle(), new Promise((r) => setTimeout(r, 1000).unref())]);
  }

  /** Creates the user's keys on first use and publishes its bundle and device list (P4). */
  async createUser(jid: BareJid, deviceId: DeviceId = 1 as DeviceId): Promise<DeviceCrypto> {
    const { crypto } = this.options;
    const existing = await crypto.localDevices(jid);
    if (existing.includes(deviceId)) {
      const device = await crypto.device(jid, deviceId);
      await this.directory.publishDevice(device);
      return device;
    }
    const { device } = await crypto.createLocalIdentity(jid, { deviceId });
    try {
      await this.directory.publishDevice(device);
    } catch (err) {
      if (!(err instanceof GatekeeperError && err.app?.name === "identity-mismatch")) throw err;
      // The directory still holds the identity of keys this bridge deleted (logout, P3) or
      // lost: the new keys are a reinstall, published as the identity change they are (§11.2).
      this.log.info({ jid }, "new keys replace an identity the directory still holds: reset");
      await this.directory.publishDevice(device, { reset: true });
    }
    return device;
  }

  /** User deletion (§5.1, P3): unbind, publish an empty device list, delete every key. */
  async deleteUser(jid: BareJid): Promise<void> {
    await this.account.unbind(jid);
    await this.directory.publishDeviceList(jid, []);
    await this.options.crypto.deleteLocalUser(jid);
    await this.directory.forgetUser(jid);
  }

  sendMessage(message: {
    from: BareJid;
    to: BareJid;
    content: ContentElement[];
    eventId?: string;
  }): Promise<MessageId> {
    return this.sender.sendMessage(message);
  }

  /** A group message (§17.4): one sender-key encryption, keys for devices that lack it. */
  sendGroupMessage(message: {
    from: BareJid;
    group: BareJid;
    content: ContentElement[];
    eventId?: string;
  }): Promise<MessageId> {
    return this.sender.sendGroupMessage(message);
  }

  /** Whether `jid` is a group (at the group domain, §17). */
  isGroup(jid: string): boolean {
    return jid.endsWith(`@${this.groupDomain}`);
  }

  sendDisplayed(local: BareJid, to: BareJid, ref: MessageRef): Promise<MessageId> {
    return this.sender.sendDisplayed(local, to, ref, this.isGroup(to) ? "groupchat" : "chat");
  }

  sendTyping(local: BareJid, to: BareJid, state: ChatState): Promise<boolean> {
    return this.sender.sendTyping(local, to, state, this.isGroup(to) ? "groupchat" : "chat");
  }

  /**
   * Runs hourly: key rotation when due (§11.6); superseded keys past their retention, retry state
   * past `retry-window-seconds` (§12.5), stanza-ids past `queue-retention-seconds` and
   * per-device de-dup records past `dedup-window-seconds` (§15.4) purged; resolved outbox rows
   * dropped once no outcome for them can arrive any more.
   */
  async maintenance(): Promise<void> {
    const now = (this.options.now ?? Date.now)();
    const limits = this.session.limits;
    const { crypto, knex } = this.options;
    try {
      for (const due of await this.directory.dueForRotation(now - this.timing.rotateAfterMs)) {
        await this.directory.rotate(await crypto.device(due.jid, due.device));
      }
      for (const local of await this.directory.publishedDevices()) {
        const device = await crypto.device(local.jid, local.device);
        await device.purgeExpiredKeys(now);
        const senderJid = deviceJid(local.jid, local.device);
        await device.retries.purge(limits["retry-window-seconds"] * 1000, (db) =>
          tables.outbox.unresolvedOrigins(db, senderJid),
        );
      }
      await this.inbox.purge(
        now - limits["queue-retention-seconds"] * 1000,
        now - limits["dedup-window-seconds"] * 1000,
      );
      await tables.outbox.deleteResolvedBefore(knex, now - limits["dedup-window-seconds"] * 1000);
    } catch (err) {
      this.log.warn({ err: describeError(err) }, "maintenance incomplete; retried next hour");
    }
  }

  private async afterHello(): Promise<void> {
    try {
      await this.acks.flush();
      await this.outbox.afterHello();
      await this.receiver.replayPending();
    } catch (err) {
      this.log.error({ err: describeError(err) }, "work after hello failed");
    }
  }

  private dispatch(stanza: XmlElement): void | Promise<void> {
    if (stanza.name === "iq") {
      if (this.helloIq.handleStanza(stanza)) {
        if (stanza.attrs.type === "result") this.helloAnswered = true;
        return;
      }
      if (this.iq.handleStanza(stanza)) return;
      this.responder.handleStanza(stanza);
      return;
    }
    if (stanza.name === "message") {
      if (!this.helloAnswered && isQueuedDelivery(stanza)) {
        // A delivery that reached a new connection before the hello answer: the gatekeeper
        // redelivers every unacked delivery after the hello, in acceptance order (§15.5).
        // Handling this one now would put it before earlier ones that were lost with the old
        // connection and come only with that redelivery, out of order (§15.6).
        this.log.debug(
          { id: stanza.attrs.id },
          "delivery before the hello answer left for redelivery",
        );
        return;
      }
      return this.receiver.handle(stanza);
    }
  }

  private async localDeviceOf(fullJid: string): Promise<DeviceCrypto> {
    const slash = fullJid.indexOf("/");
    const bare = (slash === -1 ? fullJid : fullJid.slice(0, slash)) as BareJid;
    const device = Number(fullJid.slice(slash + 1)) as DeviceId;
    return this.options.crypto.device(bare, device);
  }

  /**
   * Hands the connection state to the core, and while the core's handler fails (its database or
   * homeserver down) offers it again, with backoff (`stateRetry*Ms`), until it was taken or a newer state
   * replaced it. Before (issue #16), a failed hand-over was only logged, and the core showed the
   * state it had before, e.g. connected while the gatekeeper was gone, until the next change.
   */
  private offerState(state: EngineState, attempt = 0): void {
    if (attempt === 0) {
      this.latestState = state;
      clearTimeout(this.stateRetryTimer);
    }
    this.options.onEvent({ kind: "state", state }).catch((err: unknown) => {
      if (!this.running || this.latestState !== state) return;
      const delay = Math.min(
        this.timing.stateRetryInitialMs * 2 ** attempt,
        this.timing.stateRetryMaxMs,
      );
      this.log.warn(
        { err: describeError(err), state: state.code, retryInMs: delay },
        "the core did not take the connection state; offering it again",
      );
      this.stateRetryTimer = setTimeout(() => {
        if (this.running && this.latestState === state) this.offerState(state, attempt + 1);
      }, delay);
      this.stateRetryTimer.unref();
    });
  }
}

/** A gatekeeper delivery that is queued until acked: it carries a `<stanza-id>` (§15.5). */
function isQueuedDelivery(stanza: XmlElement): boolean {
  return stanza.children.some(
    (c) => typeof c !== "string" && c.name === "stanza-id" && c.getNS() === NS.sid,
  );
}
