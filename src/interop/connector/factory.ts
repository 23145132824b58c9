import type { Config } from "../../config/schema.js";
import type {
  LoginBatchLoading,
  ConnectionHealthReporting,
  ContactAddresses,
  ContactDirectory,
  CoreCallbacks,
  LoginFlow,
  LoginProcess,
  NetworkConnector,
  NetworkDescription,
  NetworkLogin,
  RemoteUserId,
} from "../../core/network.js";
import type { Database } from "../../db/database.js";
import { BridgeError, StartupError } from "../../util/errors.js";
import type { MatrixUserId, PhoneNumber } from "../../util/ids.js";
import type { Logger } from "../../util/log.js";
import type { KeyVault } from "../../vault/key-vault.js";
import { gatekeeperUserJid, phoneOfJid } from "../codec/jid.js";
import { FEATURE } from "../codec/namespaces.js";
import { SignalCrypto } from "../crypto/index.js";
import { timingFromConfig } from "../provider/types.js";
import { ComponentConnection } from "../transport/component.js";
import { InteropConnector, LOGIN_FLOWS } from "./connector.js";
import { interopDescription, interopDescriptionSettings } from "./description.js";

interface ConnectorDeps {
  readonly db: Database;
  readonly vault: KeyVault;
  readonly log: Logger;
  /** Required in embedded mode only; see StartEmbeddedGatekeeper. */
  readonly startEmbedded?: StartEmbeddedGatekeeper;
}

/** A gatekeeper started in-process for embedded mode: where to connect and with which secret. */
export interface EmbeddedGatekeeper {
  readonly service: string;
  readonly secret: string;
  stop(): Promise<void>;
}

/**
 * Starts the embedded gatekeeper when the connector starts; may throw a StartupError. Injected by
 * the entry point (simulator/embedded-gatekeeper.ts, loaded by src/cli/embedded-entry.ts) so that nothing under src/interop/ imports the
 * simulator, which is a test and demo tool, not part of an external deployment.
 */
export type StartEmbeddedGatekeeper = (config: Config, log: Logger) => Promise<EmbeddedGatekeeper>;

/**
 * What this bridge offers in hello (§8.3): every 1:1 content feature the conversion handles,
 * and groups (§17, issue #17); not disappearing messages (timers are not honoured).
 */
export const OFFERED_FEATURES: readonly string[] = [
  FEATURE.reply,
  FEATURE.reactions,
  FEATURE.edit,
  FEATURE.retract,
  FEATURE.location,
  FEATURE.contact,
  FEATURE.nick,
  FEATURE.call,
  FEATURE.displayed,
  FEATURE.chatstates,
  FEATURE.groups,
];

const EMBEDDED_HELLO_WAIT_MS = 10_000;

/**
 * The connector for `config.interop`. External mode connects to the configured XMPP server's
 * component port at once; embedded mode starts the gatekeeper `deps.startEmbedded` provides
 * (the simulator, in-process on loopback) when the connector starts and stops it after the engine.
 */
export function createInteropConnector(
  config: Config,
  callbacks: CoreCallbacks,
  deps: ConnectorDeps,
): NetworkConnector {
  const interop = config.interop;
  const crypto = new SignalCrypto({
    knex: deps.db.knex,
    vault: deps.vault,
    logger: deps.log,
    identityChange: interop.identity_change,
  });
  const build = (
    service: string,
    secret: string,
    extra: { insecureMedia?: boolean; afterStop?: () => Promise<void> } = {},
  ) =>
    new InteropConnector({
      callbacks,
      settings: interopDescriptionSettings(config),
      log: deps.log,
      ...(extra.afterStop === undefined ? {} : { afterStop: extra.afterStop }),
      engine: {
        connection: new ComponentConnection({
          service,
          domain: interop.component_domain,
          secret,
          logger: deps.log,
        }),
        knex: deps.db.knex,
        crypto,
        vault: deps.vault,
        providerId: interop.provider_id,
        gatekeeperDomain: interop.gatekeeper_domain,
        groupDomain: interop.group_domain,
        features: OFFERED_FEATURES,
        timing: timingFromConfig(interop),
        allowInsecureMediaOnLoopback:
          extra.insecureMedia ?? interop.allow_insecure_media_on_loopback,
      },
    });

  if (interop.mode === "external") {
    if (config.simulator.web) {
      deps.log.warn("simulator.web is set but interop.mode is external: no simulator page served");
    }
    // The config loader already refused an empty secret (and took $MWI_COMPONENT_SECRET).
    return build(
      `xmpp://${interop.component_host}:${interop.component_port}`,
      interop.component_secret,
    );
  }
  const startEmbedded = deps.startEmbedded;
  if (startEmbedded === undefined) {
    throw new StartupError(
      "embedded-gatekeeper-unavailable",
      "interop.mode is embedded, but this entry point provides no embedded gatekeeper: run the bridge through its command line, or set interop.mode to external",
    );
  }
  const description = interopDescription(interopDescriptionSettings(config));
  return new StartedLater(interop.gatekeeper_domain, description, async () => {
    const sim = await startEmbedded(config, deps.log);
    // Its media store serves http on loopback, which only an embedded deployment may accept.
    return build(sim.service, sim.secret, { insecureMedia: true, afterStop: () => sim.stop() });
  });
}

/**
 * A connector whose real one can only be built asynchronously (after the embedded gatekeeper is
 * listening). Logins are created and loaded only after `start()`, which the core awaits first.
 */
class StartedLater
  implements
    NetworkConnector,
    LoginBatchLoading,
    ContactAddresses,
    ContactDirectory,
    ConnectionHealthReporting
{
  private inner: InteropConnector | undefined;

  constructor(
    private readonly gatekeeperDomain: string,
    private readonly description: NetworkDescription,
    private readonly build: () => Promise<InteropConnector>,
  ) {}

  describe(): NetworkDescription {
    return this.description;
  }

  loginFlows(): readonly LoginFlow[] {
    return LOGIN_FLOWS;
  }

  createLogin(user: MatrixUserId, flowId: string): LoginProcess {
    return this.started().createLogin(user, flowId);
  }

  async start(): Promise<void> {
    if (this.inner !== undefined) return;
    this.inner = await this.build();
    await this.inner.start();
    // The gatekeeper is in-process: wait for its hello, so that the bridge reports itself
    // started only once WhatsApp can be reached (and logs of the hello come before that line).
    if (!(await this.inner.whenReady(EMBEDDED_HELLO_WAIT_MS))) {
      throw new StartupError(
        "embedded-gatekeeper-unready",
        `the embedded gatekeeper did not answer hello within ${EMBEDDED_HELLO_WAIT_MS / 1000} s`,
      );
    }
  }

  async stop(): Promise<void> {
    await this.inner?.stop();
  }

  loadLogin(user: MatrixUserId): Promise<NetworkLogin> {
    return this.started().loadLogin(user);
  }

  loadLogins(users: readonly MatrixUserId[]): Promise<Map<MatrixUserId, NetworkLogin | Error>> {
    return this.started().loadLogins(users);
  }

  // Passed through: without them /ready and the metrics took the embedded gatekeeper for "no
  // network connection configured" while it was connected.
  connectionHealth(): { connected: boolean; code: string; message: string } {
    return (
      this.inner?.connectionHealth() ?? {
        connected: false,
        code: "starting",
        message: "the embedded gatekeeper is starting",
      }
    );
  }

  async queueDepths(): Promise<{ outbox: number; inbox: number }> {
    return (await this.inner?.queueDepths()) ?? { outbox: 0, inbox: 0 };
  }

  addressOf(contact: RemoteUserId): PhoneNumber | undefined {
    return phoneOfJid(contact, this.gatekeeperDomain);
  }

  contactForAddress(phone: PhoneNumber): RemoteUserId {
    return gatekeeperUserJid(phone, this.gatekeeperDomain) as string as RemoteUserId;
  }

  private started(): InteropConnector {
    if (this.inner === undefined) {
      throw new BridgeError("network-not-started", "the WhatsApp connection is not started yet");
    }
    return this.inner;
  }
}
