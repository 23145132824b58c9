import { tmpdir } from "node:os";
import type {
  ConnectionHealthReporting,
  CoreCallbacks,
  LoginBatchLoading,
  LoginFlow,
  LoginProcess,
  ContactAddresses,
  ContactDirectory,
  NetworkConnector,
  NetworkLogin,
  NetworkDescription,
  RemoteEvent,
  RemoteUserId,
} from "../../core/network.js";
import { BridgeError, describeError } from "../../util/errors.js";
import type { BareJid, MatrixUserId, PhoneNumber } from "../../util/ids.js";
import type { Logger } from "../../util/log.js";
import { gatekeeperUserJid, matrixUserIdFromLocalpart, phoneOfJid } from "../codec/jid.js";
import { GATEKEEPER_DOMAIN } from "../codec/namespaces.js";
import type { MediaOpener } from "../convert/index.js";
import { ProviderEngine, type ProviderEngineOptions } from "../provider/engine.js";
import * as tables from "../store/index.js";
import type { ProviderEvent } from "../provider/types.js";
import { localJidOf, type ConnectorContext } from "./context.js";
import {
  DEFAULT_INTEROP_SETTINGS,
  interopDescription,
  type InteropDescriptionSettings,
} from "./description.js";
import { loginStateOf, mapProviderEvent } from "./events.js";
import { InteropUsersTable } from "../store/interop-users.js";
import { DEVICE, InteropLogin } from "./login.js";
import { HandleLoginProcess, PhoneLoginProcess, type LoginHost } from "./login-process.js";
import { mediaOpener } from "./media.js";
import { RecentEnvelopes } from "./recent-envelopes.js";

export interface InteropConnectorOptions {
  readonly callbacks: CoreCallbacks;
  /** Everything the provider engine needs but its event handler, which is the connector. */
  readonly engine: Omit<ProviderEngineOptions, "onEvent" | "logger">;
  /** Where media is staged; the system's temporary directory by default. */
  readonly workDir?: string;
  readonly log: Logger;
  /** Runs after the engine stopped (e.g. stopping an embedded gatekeeper simulator). */
  readonly afterStop?: () => Promise<void>;
  /** The operator's settings for this network; a default config's when absent. */
  readonly settings?: InteropDescriptionSettings;
}

export const LOGIN_FLOWS: readonly LoginFlow[] = [
  {
    id: "phone",
    name: "Phone number",
    description: "Log in with your phone number, verified by a code WhatsApp sends you.",
  },
  {
    id: "handle",
    name: "Unverified name",
    description:
      "Log in without a phone number: WhatsApp users see a name you choose, marked unverified, " +
      "and cannot find you by number.",
  },
];

/**
 * The WhatsApp interop network for the core (core/network.ts) over one ProviderEngine. Engine
 * events are mapped to the core's events for the Matrix user whose provider JID they concern, and
 * the engine's handler resolves only after the core's `report` resolved, so the gatekeeper is
 * acked only for what the core durably handled (P13). Contacts are gatekeeper user JIDs, message
 * ids are origin-ids.
 */
export class InteropConnector
  implements
    NetworkConnector,
    LoginBatchLoading,
    ContactAddresses,
    ContactDirectory,
    ConnectionHealthReporting
{
  readonly engine: ProviderEngine;
  private readonly ctx: ConnectorContext;
  private readonly logins = new Map<MatrixUserId, InteropLogin>();
  private readonly recent = new RecentEnvelopes();
  private readonly openMedia: MediaOpener;
  private readonly settings: InteropDescriptionSettings;
  private readonly description: NetworkDescription;
  private readonly interopUsers: InteropUsersTable;

  constructor(private readonly options: InteropConnectorOptions) {
    this.settings = options.settings ?? DEFAULT_INTEROP_SETTINGS;
    this.description = interopDescription(this.settings);
    const log = options.log.child({ component: "interop-connector" });
    this.engine = new ProviderEngine({
      ...options.engine,
      logger: options.log,
      onEvent: (event) => this.onEvent(event),
    });
    this.interopUsers = new InteropUsersTable(options.engine.knex);
    this.ctx = {
      engine: this.engine,
      crypto: options.engine.crypto,
      domain: options.engine.connection.domain,
      gatekeeperDomain: options.engine.gatekeeperDomain ?? GATEKEEPER_DOMAIN,
      workDir: options.workDir ?? tmpdir(),
      log,
    };
    this.openMedia = mediaOpener(this.engine.media, this.ctx.workDir);
  }

  describe(): NetworkDescription {
    return this.description;
  }

  loginFlows(): readonly LoginFlow[] {
    return LOGIN_FLOWS;
  }

  createLogin(user: MatrixUserId, flowId: string): LoginProcess {
    const jid = localJidOf(this.ctx, user);
    const host: LoginHost = {
      engine: this.engine,
      finish: async (u) => {
        await this.interopUsers.record(u, DEVICE);
        return this.register(u);
      },
    };
    switch (flowId) {
      case "phone":
        return new PhoneLoginProcess(user, jid, host);
      case "handle":
        return new HandleLoginProcess(user, jid, host);
      default:
        throw new BridgeError("login-flow-unknown", `there is no login flow "${flowId}"`);
    }
  }

  /** Starts the engine; it connects and says hello in the background, reporting state. */
  async start(): Promise<void> {
    this.engine.start();
  }

  /**
   * Resolves true once the engine is ready (hello succeeded), false after `timeoutMs` without;
   * never rejects. For an in-process gatekeeper, whose hello takes milliseconds.
   */
  whenReady(timeoutMs: number): Promise<boolean> {
    if (this.engine.state.code === "ready") return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ok: boolean): void => {
        clearTimeout(timer);
        this.engine.session.off("ready", onReady);
        resolve(ok);
      };
      const onReady = (): void => done(true);
      const timer = setTimeout(() => done(false), timeoutMs);
      this.engine.session.on("ready", onReady);
    });
  }

  async stop(): Promise<void> {
    await this.engine.stop().catch((err: unknown) => {
      this.ctx.log.warn({ err: describeError(err) }, "the provider engine did not stop cleanly");
    });
    await this.options.afterStop?.().catch((err: unknown) => {
      this.ctx.log.warn({ err: describeError(err) }, "cleanup after stop failed");
    });
  }

  /** The gatekeeper session: connected only once hello succeeded (`ready`). */
  connectionHealth(): { connected: boolean; code: string; message: string } {
    const state = this.engine.state;
    return { connected: state.code === "ready", code: state.code, message: state.message };
  }

  /** Outgoing stanzas awaiting an outcome and inbound deliveries awaiting hand-over. */
  async queueDepths(): Promise<{ outbox: number; inbox: number }> {
    return {
      outbox: await tables.outbox.depth(this.options.engine.knex),
      inbox: await this.engine.inbox.depth(),
    };
  }

  /** Reads only the local key store: a user without keys loads as logged out. */
  async loadLogin(user: MatrixUserId): Promise<InteropLogin> {
    const login = this.register(user);
    if ((await this.ctx.crypto.localDevices(login.jid)).length === 0) {
      login.markLoggedOut({
        code: "logged-out",
        message: "This bridge holds no WhatsApp keys for you any more.",
      });
    }
    return login;
  }

  /**
   * Start-up: every stored login with one query for which users hold local devices, instead of
   * one query each (10,000 users: ~4 s on PostgreSQL, one round trip per user).
   */
  async loadLogins(
    users: readonly MatrixUserId[],
  ): Promise<Map<MatrixUserId, NetworkLogin | Error>> {
    const withDevices = await this.ctx.crypto.localDeviceJids();
    const result = new Map<MatrixUserId, NetworkLogin | Error>();
    for (const user of users) {
      try {
        const login = this.register(user);
        if (!withDevices.has(login.jid)) {
          login.markLoggedOut({
            code: "logged-out",
            message: "This bridge holds no WhatsApp keys for you any more.",
          });
        }
        result.set(user, login);
      } catch (err) {
        result.set(user, err instanceof Error ? err : new Error(String(err)));
      }
    }
    return result;
  }

  addressOf(contact: RemoteUserId): PhoneNumber | undefined {
    return phoneOfJid(contact, this.ctx.gatekeeperDomain);
  }

  contactForAddress(phone: PhoneNumber): RemoteUserId {
    return gatekeeperUserJid(phone, this.ctx.gatekeeperDomain) as string as RemoteUserId;
  }

  private register(user: MatrixUserId): InteropLogin {
    const login = new InteropLogin(user, localJidOf(this.ctx, user), this.ctx, this.recent);
    this.logins.set(user, login);
    return login;
  }

  private async onEvent(event: ProviderEvent): Promise<void> {
    if (event.kind === "state") {
      const state = loginStateOf(event.state);
      // One line for the connection every login shares; the core logs each login's at debug.
      this.ctx.log.info(
        { state: event.state.code, logins: this.logins.size },
        `gatekeeper connection: ${event.state.message}`,
      );
      await Promise.all(
        [...this.logins.values()]
          .filter((login) => login.state().code !== "logged-out")
          .map((login) => this.toCore(login.user, { kind: "state", state })),
      );
      return;
    }
    if (event.kind === "report-received") {
      this.ctx.log.info({ reported: event.reported, reason: event.reason }, "a user was reported");
      return;
    }
    if (event.kind === "message") {
      this.recent.remember(event.local, {
        originId: event.originId,
        stanzaId: event.stanzaId,
        stamp: event.stamp,
        from: event.from,
        envelopeData: new TextEncoder().encode(event.envelopeXml),
      });
    }
    const mapped = mapProviderEvent(event, {
      openMedia: this.openMedia,
      isGroup: (jid) => this.engine.isGroup(jid),
      identityChangeHolds: this.settings.identityChange === "hold",
    });
    if (mapped === undefined) return;
    const user = this.matrixUserOf(mapped.local);
    if (user === undefined) return;
    if (event.kind === "unbound") {
      const first = mapped.events[0];
      if (first?.kind === "state") this.logins.get(user)?.markLoggedOut(first.state);
    }
    // In order: an edit reported before its message would find nothing to edit.
    for (const remote of mapped.events) await this.toCore(user, remote);
  }

  private toCore(user: MatrixUserId, event: RemoteEvent): Promise<void> {
    return this.options.callbacks.report(user, event);
  }

  /** The Matrix user of a local JID; undefined (logged, dropped) for a JID that names none. */
  private matrixUserOf(local: BareJid): MatrixUserId | undefined {
    const at = local.lastIndexOf("@");
    if (local.slice(at + 1) !== this.ctx.domain) {
      this.ctx.log.warn({ local }, "an event for a JID outside the bridge's domain");
      return undefined;
    }
    try {
      return matrixUserIdFromLocalpart(local.slice(0, at), "local");
    } catch (err) {
      this.ctx.log.warn({ local, err: describeError(err) }, "an event for a JID of no Matrix user");
      return undefined;
    }
  }
}
