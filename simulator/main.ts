import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Knex } from "knex";
import { openDatabase, type Database } from "../src/db/database.js";
import type { Limits } from "../src/interop/codec/limits.js";
import { silentLogger, type Logger } from "../src/util/log.js";
import { resolveSettings, type Clock, type EnlistedProvider } from "./config.js";
import { Gatekeeper } from "./gatekeeper.js";
import { MediaStore } from "./media/store.js";
import { SimulatedUsers } from "./users/index.js";
import { startAdminServer, type AdminServer } from "./admin/server.js";
import type { XmlElement } from "../src/interop/codec/index.js";
import { componentWire, localWire, type Wire } from "./wire.js";
import { ComponentServer } from "./xmpp/component-server.js";

/** See `serverStanzaLimitBytes`. */
const EXTERNAL_SERVER_LIMIT_BYTES = 16 * 1024 * 1024;

export interface SimulatorOptions {
  /** `embedded` (default) runs its own XEP-0114 server; `external` connects to one. */
  readonly mode?: "embedded" | "external";
  readonly providers: readonly EnlistedProvider[];
  /** Directory for the database and media blobs; a temporary one (removed on stop) if unset. */
  readonly dataDir?: string;
  /** SQLite file; defaults to `<dataDir>/simulator.db`. `:memory:` for fast tests. */
  readonly database?: string;
  /** Embedded: port of the component server (0 = any free port). */
  readonly componentPort?: number;
  /** External: the XMPP server's component port, e.g. `xmpp://127.0.0.1:5347`. */
  readonly externalService?: string;
  /** Secret of `wa.example` and `g.wa.example` (Appendix A: `gatekeeper-secret`). */
  readonly gatekeeperSecret?: string;
  readonly limits?: Partial<Limits>;
  /**
   * The XMPP server's stanza limit. Embedded: the built-in server's (default max-stanza-bytes +
   * 16 KiB, as Appendix A configures Prosody). External: what the server in front lets through
   * (Prosody's `component_stanza_size_limit`); the simulator's transport reads stanzas up to it so
   * that it bounces them with `too-large` instead of dropping the connection (G2, E27). Unknown
   * there by default, so 16 MiB, above any limit a deployment of the protocol would set.
   */
  readonly serverStanzaLimitBytes?: number;
  readonly features?: readonly string[];
  readonly now?: Clock;
  readonly logger?: Logger;
  /** Media store on loopback HTTP; port 0 picks one. `false` runs without media. */
  readonly media?: false | { readonly port?: number; readonly publicOrigin?: string };
  /** Key sealing the simulated users' Signal stores (32 bytes); a fixed test key by default. */
  readonly usersVaultKey?: Uint8Array;
  /**
   * Admin HTTP API on 127.0.0.1 (port 0 picks one); off unless a token is given. `web` also
   * serves the page that plays the WhatsApp side (simulator/web/); `publicCodes: false` puts the
   * Appendix A verification-code endpoint behind the token too.
   */
  readonly admin?: {
    readonly port?: number;
    readonly token: string;
    readonly web?: boolean;
    readonly publicCodes?: boolean;
  };
  /** Period of redelivery and pruning; 0 leaves it to explicit `tick()` calls (tests). */
  readonly tickIntervalMs?: number;
}

export interface Simulator {
  readonly gatekeeper: Gatekeeper;
  /** The simulated WhatsApp users. */
  readonly users: SimulatedUsers;
  readonly knex: Knex;
  /** Embedded mode: the component server the bridge connects to. */
  readonly server: ComponentServer | undefined;
  /** Where providers connect: `xmpp://host:port`. */
  readonly service: string;
  readonly media: MediaStore | undefined;
  /** The admin API, when enabled. */
  readonly admin: AdminServer | undefined;
  readonly dataDir: string;
  /** One round of periodic work (redelivery after ack timeout, retention). */
  tick(): Promise<void>;
  /**
   * Fault injection for tests: every stanza the gatekeeper sends passes through `filter`, which
   * decides what goes out and when by calling `send` (any number of times, now or later, or
   * never), e.g. to duplicate or reorder deliveries as a faulty gatekeeper would. Undefined sends
   * everything as it comes.
   */
  setOutgoingFilter(filter: OutgoingFilter | undefined): void;
  stop(): Promise<void>;
}

export type OutgoingFilter = (stanza: XmlElement, send: (stanza: XmlElement) => void) => void;

export async function startSimulator(options: SimulatorOptions): Promise<Simulator> {
  const logger = (options.logger ?? silentLogger()).child({ component: "simulator" });
  const ownDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? (await mkdtemp(path.join(tmpdir(), "wa-sim-")));
  const now = options.now ?? Date.now;
  const cleanups: (() => Promise<void>)[] = [];
  const stop = async (): Promise<void> => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    cleanups.length = 0;
  };
  try {
    const db: Database = await openDatabase({
      type: "sqlite",
      uri: options.database ?? path.join(dataDir, "simulator.db"),
    });
    cleanups.push(async () => {
      await db.close();
      if (ownDir) await rm(dataDir, { recursive: true, force: true });
    });
    const media =
      options.media === false
        ? undefined
        : await MediaStore.start({
            dataDir: path.join(dataDir, "media"),
            port: options.media?.port ?? 0,
            ...(options.media?.publicOrigin === undefined
              ? {}
              : { publicOrigin: options.media.publicOrigin }),
            now,
            logger,
            limits: mediaLimits(options.limits),
          });
    if (media !== undefined) cleanups.push(() => media.close());
    const settings = resolveSettings({
      providers: options.providers,
      limits: options.limits ?? {},
      ...(options.features === undefined ? {} : { features: options.features }),
      mediaOrigins: media === undefined ? ["http://127.0.0.1"] : [media.origin],
    });
    const gatekeeper = await Gatekeeper.create({
      knex: db.knex,
      settings,
      now,
      logger,
      ...(media === undefined ? {} : { media }),
    });
    cleanups.push(() => gatekeeper.stop());
    const users = new SimulatedUsers(gatekeeper, {
      ...(options.usersVaultKey === undefined ? {} : { vaultKey: options.usersVaultKey }),
      ...(media === undefined ? {} : { media }),
      workDir: dataDir,
    });
    const receive = gatekeeper.receive.bind(gatekeeper);
    const domains = { main: settings.domain, group: settings.groupDomain };
    let server: ComponentServer | undefined;
    let wire: Wire;
    let service: string;
    if ((options.mode ?? "embedded") === "embedded") {
      const secrets: Record<string, string> = {};
      for (const p of options.providers) secrets[p.domain] = p.secret ?? "provider-secret";
      server = await ComponentServer.start({
        secrets,
        port: options.componentPort ?? 0,
        maxStanzaBytes:
          options.serverStanzaLimitBytes ?? settings.limits["max-stanza-bytes"] + 16384,
        logger,
      });
      const started = server;
      cleanups.push(() => started.stop());
      wire = localWire(server, domains, receive);
      service = server.service;
    } else {
      if (options.externalService === undefined) {
        throw new Error("external mode needs externalService (the XMPP server's component port)");
      }
      service = options.externalService;
      wire = await componentWire(
        {
          service,
          secret: options.gatekeeperSecret ?? "gatekeeper-secret",
          domains,
          maxStanzaBytes: settings.limits["max-stanza-bytes"],
          serverStanzaLimitBytes: options.serverStanzaLimitBytes ?? EXTERNAL_SERVER_LIMIT_BYTES,
          logger,
        },
        receive,
      );
    }
    cleanups.push(() => wire.close());
    let admin: AdminServer | undefined;
    if (options.admin !== undefined) {
      admin = await startAdminServer({
        token: options.admin.token,
        ...(options.admin.port === undefined ? {} : { port: options.admin.port }),
        ...(options.admin.web === undefined ? {} : { web: options.admin.web }),
        ...(options.admin.publicCodes === undefined
          ? {}
          : { publicCodes: options.admin.publicCodes }),
        deps: { gatekeeper, users },
        logger,
      });
      const started = admin;
      cleanups.push(() => started.close());
    }
    let filter: OutgoingFilter | undefined;
    const send = (stanza: XmlElement): void => wire.send(stanza);
    gatekeeper.attach((stanza) => (filter === undefined ? send(stanza) : filter(stanza, send)));
    await gatekeeper.start();
    const interval = options.tickIntervalMs ?? 1000;
    if (interval > 0) {
      const timer = setInterval(() => {
        gatekeeper.tick().catch((err: unknown) => logger.warn({ err: String(err) }, "tick failed"));
      }, interval);
      timer.unref();
      cleanups.push(async () => clearInterval(timer));
    }
    logger.info({ service, mode: options.mode ?? "embedded" }, "gatekeeper simulator started");
    return {
      gatekeeper,
      users,
      knex: db.knex,
      server,
      service,
      media,
      admin,
      dataDir,
      tick: () => gatekeeper.tick(),
      setOutgoingFilter: (f) => {
        filter = f;
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

function mediaLimits(limits: Partial<Limits> | undefined) {
  const l = limits ?? {};
  const maxBytes: Record<string, number> = {};
  for (const kind of ["image", "video", "audio", "document"] as const) {
    const v = l[`max-${kind}-bytes`];
    if (v !== undefined) maxBytes[kind] = v;
  }
  return {
    maxBytes: maxBytes as never,
    ...(l["media-retention-seconds"] === undefined
      ? {}
      : { retentionSeconds: l["media-retention-seconds"] }),
    ...(l["uploads-per-hour"] === undefined ? {} : { uploadsPerHour: l["uploads-per-hour"] }),
  };
}
