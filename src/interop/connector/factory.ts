import { randomBytes } from "node:crypto";
import type { Config } from "../../config/schema.js";
import type {
  ConnectionHealthReporting,
  CoreCallbacks,
  LoginFlow,
  LoginProcess,
  NetworkConnector,
  NetworkLogin,
  RemoteUserId,
} from "../../core/network.js";
import type { ContactDirectory } from "../../core/contact-directory.js";
import type { Database } from "../../db/database.js";
import { BridgeError, StartupError } from "../../util/errors.js";
import type { MatrixUserId, PhoneNumber } from "../../util/ids.js";
import type { Logger } from "../../util/log.js";
import { gatekeeperUserJid, phoneOfJid } from "../codec/jid.js";
import { FEATURE } from "../codec/namespaces.js";
import { SignalCrypto, type KeyVault } from "../crypto/index.js";
import { timingFromConfig } from "../provider/types.js";
import { ComponentConnection } from "../transport/component.js";
import { InteropConnector, LOGIN_FLOWS } from "./connector.js";

export interface ConnectorDeps {
  readonly db: Database;
  readonly vault: KeyVault;
  readonly log: Logger;
}

/**
 * What this bridge offers in hello (§8.3): every 1:1 content feature the conversion handles.
 * Not groups (no group portals yet) and not disappearing messages (timers are not honoured).
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
];

const EMBEDDED_HELLO_WAIT_MS = 10_000;

/**
 * The connector for `config.interop`. External mode connects to the configured XMPP server's
 * component port at once; embedded mode starts the gatekeeper simulator in-process on a free
 * loopback port when the connector starts (it is loaded only then) and stops it after the engine.
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
  return new StartedLater(interop.gatekeeper_domain, async () => {
    // Loaded only here: the simulator is a test and demo tool, not part of an external deployment.
    const { startSimulator } = await import("../../../simulator/main.js");
    const secret = randomBytes(24).toString("hex");
    const web = config.simulator.web;
    const token = randomBytes(24).toString("base64url");
    const sim = await startSimulator({
      providers: [
        {
          id: interop.provider_id,
          name: config.appservice.bot.display_name,
          domain: interop.component_domain,
          secret,
        },
      ],
      dataDir: interop.embedded_data_dir,
      logger: deps.log.child({ component: "embedded-gatekeeper" }),
      // The page and the admin API on loopback; every route behind the token, codes included.
      ...(web ? { admin: { port: config.simulator.port, token, web, publicCodes: false } } : {}),
    }).catch((err: unknown) => {
      // By code, not class: the simulator is loaded apart and may hold its own copy of the class.
      if ((err as { code?: unknown } | undefined)?.code === "port-in-use") {
        throw new StartupError(
          "simulator-port-in-use",
          `simulator.port ${config.simulator.port} on 127.0.0.1 is in use: choose another port or stop what uses it`,
        );
      }
      throw err;
    });
    deps.log.info({ service: sim.service }, "embedded gatekeeper simulator started");
    if (sim.admin !== undefined) {
      // The one place the token is shown, at info on purpose: whoever starts a test deployment
      // needs it to open the page, and it guards simulated users only, on loopback only.
      deps.log.info(
        { url: `${sim.admin.url}/#token=${token}`, adminApi: sim.admin.url },
        "simulator page (play the WhatsApp side): open the url; admin API token after #token=",
      );
    }
    // Its media store serves http on loopback, which only an embedded deployment may accept.
    return build(sim.service, secret, { insecureMedia: true, afterStop: () => sim.stop() });
  });
}

/**
 * A connector whose real one can only be built asynchronously (after the embedded gatekeeper is
 * listening). Logins are created and loaded only after `start()`, which the core awaits first.
 */
class StartedLater implements NetworkConnector, ContactDirectory, ConnectionHealthReporting {
  private inner: InteropConnector | undefined;

  constructor(
    private readonly gatekeeperDomain: string,
    private readonly build: () => Promise<InteropConnector>,
  ) {}

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

  contactPhone(contact: RemoteUserId): PhoneNumber | undefined {
    return phoneOfJid(contact, this.gatekeeperDomain);
  }

  contactForPhone(phone: PhoneNumber): RemoteUserId {
    return gatekeeperUserJid(phone, this.gatekeeperDomain) as string as RemoteUserId;
  }

  private started(): InteropConnector {
    if (this.inner === undefined) {
      throw new BridgeError("network-not-started", "the WhatsApp connection is not started yet");
    }
    return this.inner;
  }
}
