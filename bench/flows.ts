/**
 * Bridged-message throughput and added latency, both directions, through the real bridge
 * (startBridge) on one database backend. The bridge runs in this process; the test homeserver and
 * the gatekeeper simulator run in a child process (bench/world-child.ts), so that the CPU this
 * process uses is the bridge's (plus the thin instrumentation below).
 *
 * Matrix -> WhatsApp: this process pushes appservice transactions over HTTP (http.request with a
 *   keep-alive agent) into the bridge's appservice listener, as a homeserver does: one transaction
 *   in flight, everything queued meanwhile batched into the next (at most 100 events).
 *   arrival  = the transaction carrying the event is written to the listener's socket;
 *   hand-off = the bridge's <message> stanza carrying the event (its origin-id) has been written
 *              to the component connection to the gatekeeper (ComponentConnection.send resolved).
 * WhatsApp -> Matrix: simulated WhatsApp users send through the simulator's in-process API.
 *   arrival  = the stanza reaches the bridge's component connection (first inbound handler);
 *   hand-off = the bridge issues its PUT /rooms/{room}/send/m.room.message to the homeserver
 *              (the Matrix client's request function is called with it).
 */
import { fork, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { XmlElement } from "../src/interop/codec/xml.js";
import knexFactory from "knex";
import pg from "pg";
import { getRequestFn, setRequestFn } from "@vector-im/matrix-bot-sdk";
import { startBridge, type RunningBridge } from "../src/bridge.js";
import { buildRegistration, type Registration } from "../src/cli/registration.js";
import { configSchema } from "../src/config/schema.js";
import type { DatabaseType } from "../src/db/database.js";
import { driverStatements } from "../src/db/node-sqlite.js";
import { runnerStats } from "../src/db/sql.js";
import { httpHooks } from "../src/matrix/http.js";
import { RoomCrypto } from "../src/matrix/crypto/room-crypto.js";
import { InteropConnector } from "../src/interop/connector/connector.js";
import { OFFERED_FEATURES } from "../src/interop/connector/factory.js";
import { SignalCrypto } from "../src/interop/crypto/index.js";
import { timingFromConfig } from "../src/interop/provider/types.js";
import { ComponentConnection } from "../src/interop/transport/component.js";
import { createLogger, silentLogger, type LogLevel } from "../src/util/log.js";
import { createWriteStream } from "node:fs";
import { writeFile } from "node:fs/promises";
import { Session } from "node:inspector/promises";
import type { AppserviceRegistration } from "../test/homeserver/index.js";
import { TEST_POSTGRES_URI } from "../test/helpers/db.js";
import type { ChildReply, ChildRequest, SentRecord, WorldPortal } from "./protocol.js";
import { latencyOf, type Latency } from "./stats.js";

const DOMAIN = "bench.example";
const KEY_ENV = "MWI_BENCH_KEY";
/** How long the last messages of a run may take to come out of the bridge. */
const DRAIN_MS = 120_000;

export interface Throughput {
  readonly messages: number;
  /** Messages that came out on the other side. */
  readonly delivered: number;
  readonly seconds: number;
  readonly perSecond: number;
  /** The rate the sending side managed (the simulator for WhatsApp -> Matrix). */
  readonly senderPerSecond: number;
}

export interface DirectionFigures {
  readonly throughput: Throughput;
  readonly at100: Latency;
  readonly at80: Latency;
}

export interface FlowFigures {
  readonly backend: DatabaseType;
  /** Megolm-encrypted portals (end-to-bridge encryption) rather than plaintext ones. */
  readonly encrypted: boolean;
  readonly portals: number;
  readonly setupSeconds: number;
  readonly m2w: DirectionFigures;
  readonly w2m: DirectionFigures;
  /** CPU time of this (the bridge's) process per bridged message, over the maximum runs, µs. */
  readonly bridgeCpuUsPerMessage: { m2w: number; w2m: number };
  /** Database statements per bridged message over the maximum runs (BEGIN/COMMIT included). */
  readonly queriesPerMessage: { m2w: number; w2m: number };
  /** Hot-path group commits per bridged message over the maximum runs (below 1: shared). */
  readonly commitsPerMessage: { m2w: number; w2m: number };
  /**
   * Encrypted runs: the bridge's W->M events of the maximum run that the user's device decrypted,
   * and those it could not decrypt (the probe, bench/user-device.ts).
   */
  readonly userDecrypted?: { decrypted: number; undecryptable: number };
}

export interface FlowOptions {
  readonly backend: DatabaseType;
  readonly portals: number;
  /** Messages of the maximum-throughput run, per direction. */
  readonly maxMessages: number;
  /** Length of each fixed-rate run. */
  readonly fixedSeconds: number;
  /** Megolm-encrypted portals; the user's device encrypts and decrypts in the world process. */
  readonly encrypted?: boolean;
  readonly progress: (line: string) => void;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no free port found");
  return address.port;
}

/** The world process: homeserver and simulator. */
class World {
  private readonly waiters: { type: string; resolve: (r: ChildReply) => void }[] = [];
  private failure: Error | undefined;

  private constructor(private readonly child: ChildProcess) {
    child.on("message", (raw) => {
      const message = raw as ChildReply;
      if (message.type === "error") {
        this.fail(new Error(`world process: ${message.message}`));
        return;
      }
      const i = this.waiters.findIndex((w) => w.type === message.type);
      if (i >= 0) this.waiters.splice(i, 1)[0]?.resolve(message);
    });
    child.on("exit", (code) => {
      if (this.waiters.length > 0) this.fail(new Error(`world process exited (${code})`));
    });
  }

  private rejecters: ((err: Error) => void)[] = [];

  private fail(err: Error): void {
    this.failure = err;
    for (const reject of this.rejecters.splice(0)) reject(err);
  }

  static async start(): Promise<World> {
    // Compiled by tsc (to profile with readable line numbers: tsx minifies whitespace, so every
    // frame of a tsx-loaded module is on line 1), the world runs compiled too.
    const compiled = import.meta.url.endsWith(".js");
    const entry = fileURLToPath(
      new URL(compiled ? "./world-child.js" : "./world-child.ts", import.meta.url),
    );
    const child = fork(entry, [], {
      execArgv: compiled ? [] : ["--import", "tsx"],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    const world = new World(child);
    await world.expect("hello");
    return world;
  }

  expect<T extends ChildReply["type"]>(type: T): Promise<Extract<ChildReply, { type: T }>> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.rejecters.push(reject);
      this.waiters.push({ type, resolve: resolve as (r: ChildReply) => void });
    });
  }

  async ask<T extends ChildReply["type"]>(
    request: ChildRequest,
    answer: T,
  ): Promise<Extract<ChildReply, { type: T }>> {
    const reply = this.expect(answer);
    this.child.send(request);
    return reply;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once("exit", () => resolve()));
    try {
      this.child.send({ type: "stop" } satisfies ChildRequest);
    } catch {
      // Already gone.
    }
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 15_000);
    await exited;
    clearTimeout(timer);
  }
}

/** Timestamps of arrivals and hand-offs, keyed by what identifies a message at that point. */
class Marks {
  /** M->W: event id -> transaction written. */
  readonly m2wArrival = new Map<string, number>();
  /** M->W: origin-id -> stanza written to the gatekeeper connection. */
  readonly m2wHandoff = new Map<string, number>();
  /** W->M: origin-id -> stanza received from the gatekeeper connection. */
  readonly w2mArrival = new Map<string, number>();
  /** W->M: "marker seq" (the text) -> PUT of the m.room.message issued. */
  readonly w2mHandoff = new Map<string, number>();

  clear(): void {
    this.m2wArrival.clear();
    this.m2wHandoff.clear();
    this.w2mArrival.clear();
    this.w2mHandoff.clear();
  }
}

function originIdOf(stanza: XmlElement): string | undefined {
  // An outbox stanza is sent as its stored text (SerializedStanza): read the id from the text,
  // without the parse that reading its children would cost in the bridge's process.
  const text = (stanza as { text?: unknown }).text;
  if (typeof text === "string") {
    const id = /<origin-id\b[^>]*\sid="([^"]+)"/.exec(text) ?? /^<[^>]*\sid="([^"]+)"/.exec(text);
    return id?.[1];
  }
  const origin = stanza.children.find(
    (c): c is XmlElement => typeof c !== "string" && c.name === "origin-id",
  );
  const id = origin?.attrs.id ?? stanza.attrs.id;
  return typeof id === "string" ? id : undefined;
}

/** The gatekeeper connection, with the moment each message stanza is written recorded. */
class TimedConnection extends ComponentConnection {
  constructor(
    options: ConstructorParameters<typeof ComponentConnection>[0],
    private readonly marks: Marks,
  ) {
    super(options);
    this.onStanza((stanza) => {
      if (stanza.name !== "message") return;
      const id = originIdOf(stanza);
      if (id !== undefined && !marks.w2mArrival.has(id))
        marks.w2mArrival.set(id, performance.now());
    });
  }

  override async send(stanza: XmlElement): Promise<void> {
    await super.send(stanza);
    if (stanza.name !== "message") return;
    const id = originIdOf(stanza);
    if (id !== undefined && !this.marks.m2wHandoff.has(id)) {
      this.marks.m2wHandoff.set(id, performance.now());
    }
  }
}

type RequestFn = (params: Record<string, unknown>, callback: unknown) => unknown;

/**
 * Records the bridge's PUTs of m.room.message carrying a benchmark text (W->M hand-off): event
 * sends go through src/matrix/http.ts's pool, other requests through the bot-sdk.
 */
function watchMatrixSends(marks: Marks, prefix: string): () => void {
  // Encrypted portals: the bridge PUTs m.room.encrypted; its ciphertext is matched to the text
  // it was made from, recorded as RoomCrypto.encrypt returns it (the bridge's own encryptor).
  const clearOf = new Map<string, string>();
  const encrypt = RoomCrypto.prototype.encrypt;
  RoomCrypto.prototype.encrypt = async function (this: RoomCrypto, as, room, type, content) {
    const result = await encrypt.call(this, as, room, type, content);
    const text = content["body"];
    const ciphertext = result.content["ciphertext"];
    if (typeof text === "string" && text.startsWith(prefix) && typeof ciphertext === "string")
      clearOf.set(ciphertext, text);
    return result;
  };
  const mark = (method: unknown, uri: string, body: unknown) => {
    if (method === "PUT" && uri.includes("/send/m.room.encrypted/") && typeof body === "string") {
      const ciphertext = (JSON.parse(body) as { ciphertext?: unknown }).ciphertext;
      const text = typeof ciphertext === "string" ? clearOf.get(ciphertext) : undefined;
      if (text !== undefined) {
        clearOf.delete(ciphertext as string);
        if (!marks.w2mHandoff.has(text)) marks.w2mHandoff.set(text, performance.now());
      }
      return;
    }
    if (
      method === "PUT" &&
      uri.includes("/send/m.room.message/") &&
      typeof body === "string" &&
      body.includes(prefix)
    ) {
      const text = (JSON.parse(body) as { body?: unknown }).body;
      if (typeof text === "string" && !marks.w2mHandoff.has(text)) {
        marks.w2mHandoff.set(text, performance.now());
      }
    }
  };
  const original = getRequestFn() as unknown as RequestFn;
  const wrapped: RequestFn = (params, callback) => {
    mark(params["method"], String(params["uri"] ?? ""), params["body"]);
    return original(params, callback);
  };
  setRequestFn(wrapped);
  httpHooks.beforeRequest = mark;
  return () => {
    setRequestFn(original);
    httpHooks.beforeRequest = undefined;
    RoomCrypto.prototype.encrypt = encrypt;
  };
}

/**
 * Pushes m.room.message events into the appservice listener as a homeserver would: one
 * transaction in flight, what queued meanwhile goes in the next one (at most 100 events).
 */
class TransactionPusher {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  private queue: Record<string, unknown>[] = [];
  private inFlight = false;
  private txn = 0;
  private idleWaiters: (() => void)[] = [];
  failures = 0;

  constructor(
    private readonly port: number,
    private readonly hsToken: string,
    private readonly marks: Marks,
  ) {}

  enqueue(event: Record<string, unknown>): void {
    this.queue.push(event);
    this.kick();
  }

  whenIdle(): Promise<void> {
    if (!this.inFlight && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  close(): void {
    this.agent.destroy();
  }

  private kick(): void {
    if (this.inFlight) return;
    if (this.queue.length === 0) {
      for (const resolve of this.idleWaiters.splice(0)) resolve();
      return;
    }
    const events = this.queue.splice(0, 100);
    this.inFlight = true;
    void this.push(events).then(() => {
      this.inFlight = false;
      this.kick();
    });
  }

  private async push(events: Record<string, unknown>[]): Promise<void> {
    const id = `bench-${process.pid}-${++this.txn}`;
    const body = JSON.stringify({ events });
    for (;;) {
      const status = await new Promise<number>((resolve) => {
        const req = http.request(
          {
            host: "127.0.0.1",
            port: this.port,
            method: "PUT",
            path: `/_matrix/app/v1/transactions/${id}`,
            agent: this.agent,
            timeout: 60_000,
            headers: {
              authorization: `Bearer ${this.hsToken}`,
              "content-type": "application/json",
              "content-length": Buffer.byteLength(body),
            },
          },
          (res) => {
            res.resume();
            res.on("end", () => resolve(res.statusCode ?? 0));
          },
        );
        req.on("timeout", () => req.destroy(new Error("transaction push timed out")));
        req.on("error", () => resolve(0));
        const now = performance.now();
        for (const e of events) {
          const eventId = e["event_id"] as string;
          if (!this.marks.m2wArrival.has(eventId)) this.marks.m2wArrival.set(eventId, now);
        }
        req.end(body);
      });
      if (status === 200) return;
      // A homeserver retries the same transaction; so does this one.
      this.failures += 1;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

/** A database for the bridge: a file in a temporary directory, or a new PostgreSQL database. */
async function bridgeDatabase(
  backend: DatabaseType,
): Promise<{ uri: string; dispose: () => Promise<void> }> {
  if (backend === "sqlite") {
    const dir = await mkdtemp(path.join(tmpdir(), "mwi-bench-db-"));
    return {
      uri: path.join(dir, "bridge.db"),
      dispose: () => rm(dir, { recursive: true, force: true }),
    };
  }
  const name = `bench_${randomBytes(5).toString("hex")}`;
  const admin = knexFactory({ client: "pg", connection: TEST_POSTGRES_URI });
  await admin.raw(`create database "${name}"`);
  await admin.destroy();
  const url = new URL(TEST_POSTGRES_URI);
  url.pathname = `/${name}`;
  return {
    uri: url.toString(),
    async dispose() {
      const cleanup = knexFactory({ client: "pg", connection: TEST_POSTGRES_URI });
      await cleanup.raw(`drop database if exists "${name}" with (force)`);
      await cleanup.destroy();
    },
  };
}

export { bridgeDatabase, freePort };

interface Running {
  readonly world: World;
  readonly bridge: RunningBridge;
  readonly registration: Registration;
  readonly marks: Marks;
  readonly pusher: TransactionPusher;
  readonly matrixUserId: string;
  readonly myJid: string;
  readonly portals: WorldPortal[];
  readonly queries: StatementCounter;
  readonly encrypted: boolean;
}

async function startAll(
  options: FlowOptions,
  cleanups: (() => Promise<unknown>)[],
): Promise<Running> {
  process.env[KEY_ENV] ??= randomBytes(32).toString("base64");
  const database = await bridgeDatabase(options.backend);
  cleanups.push(database.dispose);
  const port = await freePort();
  const secret = randomBytes(24).toString("hex");
  const base = {
    homeserver: { url: "http://127.0.0.1:1", domain: DOMAIN },
    database: { type: options.backend, uri: database.uri },
    encryption: { key_env: KEY_ENV },
    permissions: { "*": "none", [DOMAIN]: "user" },
    logging: { level: "warn" },
    // New portals are created Megolm-encrypted or not, per variant (issue 12).
    matrix_encryption: { default: options.encrypted === true },
    // The per-user abuse limits would measure themselves, not the bridge: one user sends it all.
    limits: {
      messages_per_minute: 1_000_000,
      new_chats_per_hour: 1_000_000,
      message_requests_per_hour: 1_000_000,
    },
  };
  const registration = buildRegistration(configSchema.parse(base), `http://127.0.0.1:${port}`, {
    asToken: randomBytes(16).toString("hex"),
    hsToken: randomBytes(16).toString("hex"),
  });
  const world = await World.start();
  cleanups.push(() => world.stop());
  const probe = configSchema.parse(base);
  const started = await world.ask(
    {
      type: "start",
      domain: DOMAIN,
      registration: registration as unknown as AppserviceRegistration,
      provider: {
        id: probe.interop.provider_id,
        name: probe.appservice.bot.display_name,
        domain: probe.interop.component_domain,
        secret,
      },
      adminToken: randomBytes(12).toString("hex"),
    },
    "started",
  );
  const config = configSchema.parse({
    ...base,
    homeserver: { url: started.hsUrl, domain: DOMAIN },
  });
  const marks = new Marks();
  let connector: InteropConnector | undefined;
  const bridge = await startBridge({
    config,
    registration,
    port,
    log: benchLogger(),
    createConnector: (callbacks, deps) => {
      const crypto = new SignalCrypto({ knex: deps.db.knex, vault: deps.vault });
      connector = new InteropConnector({
        callbacks,
        log: deps.log,
        engine: {
          connection: new TimedConnection(
            {
              service: started.service,
              domain: config.interop.component_domain,
              secret,
              logger: deps.log,
            },
            marks,
          ),
          knex: deps.db.knex,
          crypto,
          vault: deps.vault,
          providerId: config.interop.provider_id,
          gatekeeperDomain: config.interop.gatekeeper_domain,
          groupDomain: config.interop.group_domain,
          features: OFFERED_FEATURES,
          timing: timingFromConfig(config.interop),
          allowInsecureMediaOnLoopback: true,
        },
      });
      return connector;
    },
  });
  cleanups.push(() => bridge.stop());
  if (connector === undefined || !(await connector.whenReady(30_000))) {
    throw new Error("the simulated gatekeeper did not answer hello within 30 s");
  }
  const ready = await world.ask(
    {
      type: "setup",
      contacts: options.portals,
      botUserId: `@${config.appservice.bot.localpart}:${DOMAIN}`,
      componentDomain: config.interop.component_domain,
      encrypted: options.encrypted === true,
    },
    "ready",
  );
  const pusher = new TransactionPusher(port, registration.hs_token, marks);
  // Counted at the driver (node:sqlite's prepare, pg's Client.query), so that statements run
  // outside knex's query builder count too. BENCH_SQL=1 prints the statements of each run, most
  // frequent first (what a message costs).
  const queries = countStatements(options.backend, process.env["BENCH_SQL"] === "1");
  cleanups.push(async () => pusher.close());
  return {
    world,
    bridge,
    registration,
    marks,
    pusher,
    matrixUserId: ready.matrixUserId,
    myJid: ready.myJid,
    portals: ready.portals,
    queries,
    encrypted: options.encrypted === true,
  };
}

/** Statements (and group commits) the bridge runs, counted at the database driver. */
interface StatementCounter {
  readonly count: number;
  readonly commits: number;
  readonly sql: Map<string, number>;
}

let pgCount = 0;
let pgTally: ((sql: string) => void) | undefined;
let pgPatched = false;

function countStatements(backend: DatabaseType, tally: boolean): StatementCounter {
  const sql = new Map<string, number>();
  const add = tally ? (text: string) => sql.set(text, (sql.get(text) ?? 0) + 1) : undefined;
  if (backend === "sqlite") {
    driverStatements.tally = add;
    return {
      get count() {
        return driverStatements.count;
      },
      get commits() {
        return runnerStats.groups;
      },
      sql,
    };
  }
  pgTally = add;
  if (!pgPatched) {
    pgPatched = true;
    const proto = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
    const query = proto.query;
    proto.query = function (this: unknown, ...args: unknown[]) {
      pgCount += 1;
      const text = typeof args[0] === "string" ? args[0] : (args[0] as { text?: string }).text;
      if (text !== undefined) pgTally?.(text);
      return query.apply(this, args);
    };
  }
  return {
    get count() {
      return pgCount;
    },
    get commits() {
      return runnerStats.groups;
    },
    sql,
  };
}

/** The bridge's log: off, unless BENCH_LOG names a level (written to bench-bridge.log). */
function benchLogger() {
  const level = process.env["BENCH_LOG"];
  if (level === undefined || level === "") return silentLogger();
  return createLogger({
    level: level as LogLevel,
    format: "json",
    destination: createWriteStream("bench-bridge.log"),
  });
}

async function waitUntil(what: string, done: () => Promise<boolean> | boolean): Promise<void> {
  const start = Date.now();
  while (!(await done())) {
    if (Date.now() - start > DRAIN_MS) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

interface RunResult {
  /** The text every message of the run starts with. */
  readonly marker: string;
  readonly latencies: number[];
  readonly messages: number;
  readonly firstArrival: number;
  readonly lastHandoff: number;
  readonly senderSeconds: number;
  readonly cpuUs: number;
  /** Database statements the bridge ran during the run (its own and the Signal stores'). */
  readonly queries: number;
  /** Group commits of the hot path (SqlRunner) during the run. */
  readonly commits: number;
}

let runCounter = 0;

/** Matrix -> WhatsApp: `count` texts round robin over the portals, at `rate`/s (0: all at once). */
async function runM2W(r: Running, count: number, rate: number): Promise<RunResult> {
  const marker = `benchm2w${++runCounter}`;
  r.marks.clear();
  const eventIds: string[] = [];
  const roomOf = (seq: number) => (r.portals[seq % r.portals.length] as WorldPortal).room;
  // Encrypted portals: the user's device encrypts every text in the world process, before the
  // clock starts; the bridge's share is decrypting them.
  const encrypted = r.encrypted
    ? (
        await r.world.ask(
          {
            type: "encrypt",
            texts: Array.from({ length: count }, (_, seq) => ({
              room: roomOf(seq),
              text: `${marker} ${seq}`,
            })),
          },
          "encrypted",
        )
      ).contents
    : undefined;
  const cpu = process.cpuUsage();
  const queries = r.queries.count;
  const commits = r.queries.commits;
  const started = performance.now();
  for (let seq = 0; seq < count; seq++) {
    if (rate > 0) {
      const wait = started + (seq * 1000) / rate - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    }
    const portal = r.portals[seq % r.portals.length] as WorldPortal;
    const eventId = `$${marker}-${seq}:${DOMAIN}`;
    eventIds.push(eventId);
    r.pusher.enqueue({
      type: encrypted === undefined ? "m.room.message" : "m.room.encrypted",
      room_id: portal.room,
      sender: r.matrixUserId,
      event_id: eventId,
      origin_server_ts: Date.now(),
      content: encrypted?.[seq] ?? { msgtype: "m.text", body: `${marker} ${seq}` },
      unsigned: {},
    });
  }
  await r.pusher.whenIdle();
  const senderSeconds = (performance.now() - started) / 1000;
  // The origin-id of each event, from the bridge's own mapping, once its stanza is out. The probe
  // is the bench's, not the bridge's, and runs in the bridge's process: it waits in memory until
  // as many message stanzas as events are out, and only then asks for the events still unmapped,
  // by their (indexed) event ids. It used to scan `messages` with a LIKE every 20 ms during the
  // whole run, which the CPU figure charged to the bridge (7.8 % of a maximum run's samples).
  // Its statements are taken out of the count (one statement per probe at the driver, on both
  // backends).
  const knex = r.bridge.db.knex;
  const origins = new Map<string, string>();
  const probeSql = new Map<string, number>();
  let probes = 0;
  await waitUntil(`${count} Matrix messages to reach the gatekeeper`, async () => {
    if (r.marks.m2wHandoff.size < count) return false;
    const missing = eventIds.filter((id) => !origins.has(id));
    for (let i = 0; i < missing.length; i += 500) {
      const probe = knex("messages")
        .select("event_id", "remote_id")
        .whereIn("event_id", missing.slice(i, i + 500));
      const sql = probe.toSQL().toNative().sql;
      probeSql.set(sql, (probeSql.get(sql) ?? 0) + 1);
      probes += 1;
      const rows = (await probe) as { event_id: string; remote_id: string }[];
      for (const row of rows) origins.set(row.event_id, row.remote_id);
    }
    return (
      origins.size >= count &&
      [...origins.values()].every((origin) => r.marks.m2wHandoff.has(origin))
    );
  });
  for (const [sql, n] of probeSql) {
    const counted = r.queries.sql.get(sql);
    if (counted === undefined) continue;
    if (counted > n) r.queries.sql.set(sql, counted - n);
    else r.queries.sql.delete(sql);
  }
  const used = process.cpuUsage(cpu);
  const timed = pairTimes(
    eventIds.map((eventId) => [
      r.marks.m2wArrival.get(eventId),
      r.marks.m2wHandoff.get(origins.get(eventId) ?? ""),
    ]),
  );
  return {
    ...timed,
    marker,
    messages: count,
    senderSeconds,
    cpuUs: used.user + used.system,
    queries: r.queries.count - queries - probes,
    commits: r.queries.commits - commits,
  };
}

/** Latencies and the span of a run from (arrival, hand-off) pairs; unmatched pairs are skipped. */
function pairTimes(pairs: readonly (readonly [number | undefined, number | undefined])[]): {
  latencies: number[];
  firstArrival: number;
  lastHandoff: number;
} {
  const latencies: number[] = [];
  let firstArrival = Infinity;
  let lastHandoff = 0;
  for (const [arrival, handoff] of pairs) {
    if (arrival === undefined || handoff === undefined) continue;
    latencies.push(handoff - arrival);
    firstArrival = Math.min(firstArrival, arrival);
    lastHandoff = Math.max(lastHandoff, handoff);
  }
  return { latencies, firstArrival, lastHandoff };
}

/** WhatsApp -> Matrix: the simulated users send `count` texts at `rate`/s (0: all at once). */
async function runW2M(r: Running, count: number, rate: number): Promise<RunResult> {
  const marker = `benchw2m${++runCounter}`;
  r.marks.clear();
  const cpu = process.cpuUsage();
  const queries = r.queries.count;
  const commits = r.queries.commits;
  const done = await r.world.ask(
    { type: "w2m", count, rate, marker, myJid: r.myJid, portals: r.portals },
    "w2m-done",
  );
  const bySeq = new Map<number, SentRecord>(done.sent.map((s) => [s.seq, s]));
  await waitUntil(`${done.sent.length} WhatsApp messages to reach the homeserver`, () =>
    done.sent.every((s) => r.marks.w2mHandoff.has(`${marker} ${s.seq}`)),
  );
  const used = process.cpuUsage(cpu);
  const timed = pairTimes(
    Array.from({ length: count }, (_, seq) => {
      const sent = bySeq.get(seq);
      return [
        sent === undefined ? undefined : r.marks.w2mArrival.get(sent.originId),
        r.marks.w2mHandoff.get(`${marker} ${seq}`),
      ];
    }),
  );
  return {
    ...timed,
    marker,
    messages: count,
    senderSeconds: done.durationMs / 1000,
    cpuUs: used.user + used.system,
    queries: r.queries.count - queries,
    commits: r.queries.commits - commits,
  };
}

function printStatements(r: Running, name: string, messages: number): void {
  if (r.queries.sql.size === 0) return;
  const sorted = [...r.queries.sql.entries()].sort((a, b) => b[1] - a[1]);
  process.stdout.write(`  statements of ${name}, per message:\n`);
  for (const [sql, n] of sorted.slice(0, 40)) {
    process.stdout.write(`    ${(n / messages).toFixed(2).padStart(6)}  ${sql.slice(0, 150)}\n`);
  }
  r.queries.sql.clear();
}

function throughputOf(run: RunResult): Throughput {
  const seconds = (run.lastHandoff - run.firstArrival) / 1000;
  return {
    messages: run.messages,
    delivered: run.latencies.length,
    seconds,
    perSecond: run.latencies.length / seconds,
    senderPerSecond: run.messages / run.senderSeconds,
  };
}

async function direction(
  name: string,
  run: (count: number, rate: number) => Promise<RunResult>,
  options: FlowOptions,
): Promise<{
  figures: DirectionFigures;
  /** The maximum-throughput run's marker. */
  maxMarker: string;
  cpuUsPerMessage: number;
  queriesPerMessage: number;
  commitsPerMessage: number;
}> {
  // Warm-up: JIT, caches, prepared statements; not counted. Its rate sizes the maximum run to
  // about fixedSeconds, so that a slow bridge does not make the run take minutes.
  const warm = await run(Math.min(50, options.maxMessages), 0);
  const estimate = throughputOf(warm).perSecond;
  const count = Math.max(
    Math.min(options.maxMessages, 20),
    Math.min(options.maxMessages, Math.round(estimate * options.fixedSeconds * 1.5)),
  );
  const max = await profiled(name, () => run(count, 0));
  const throughput = throughputOf(max);
  options.progress(
    `  ${name} max: ${throughput.perSecond.toFixed(0)} msg/s ` +
      `(${throughput.delivered}/${throughput.messages} in ${throughput.seconds.toFixed(2)} s; ` +
      `sender ${throughput.senderPerSecond.toFixed(0)} msg/s)`,
  );
  // Above the maximum the queue only grows: a shorter run shows that as well as a long one, and
  // keeps the drain at about 1.5 fixedSeconds.
  const cap = Math.max(20, Math.round(throughput.perSecond * options.fixedSeconds * 1.5));
  const fixed = await run(Math.min(Math.round(100 * options.fixedSeconds), cap), 100);
  const at100 = latencyOf(fixed.latencies, 100, fixed.messages);
  options.progress(`  ${name} at 100 msg/s: ${describeLatency(at100)}`);
  const rate80 = Math.max(1, Math.round(throughput.perSecond * 0.8));
  const eighty = await run(Math.max(20, Math.round(rate80 * options.fixedSeconds)), rate80);
  const at80 = latencyOf(eighty.latencies, rate80, eighty.messages);
  options.progress(`  ${name} at ${rate80} msg/s (80 %): ${describeLatency(at80)}`);
  return {
    figures: { throughput, at100, at80 },
    maxMarker: max.marker,
    cpuUsPerMessage: max.cpuUs / Math.max(1, max.latencies.length),
    queriesPerMessage: max.queries / Math.max(1, max.latencies.length),
    commitsPerMessage: max.commits / Math.max(1, max.latencies.length),
  };
}

/**
 * BENCH_CPU_PROF=<dir>: a CPU profile of this (the bridge's) process during one direction's
 * maximum run alone, `<dir>/<direction>.cpuprofile`. `--cpu-prof` on the whole bench mixes the
 * set-up, both directions and the fixed-rate runs.
 */
async function profiled<T>(name: string, body: () => Promise<T>): Promise<T> {
  const dir = process.env["BENCH_CPU_PROF"];
  if (dir === undefined || dir === "") return body();
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.setSamplingInterval", { interval: 200 });
  await session.post("Profiler.start");
  try {
    return await body();
  } finally {
    const { profile } = await session.post("Profiler.stop");
    session.disconnect();
    const file = path.join(dir, `${name.replace(/[^A-Za-z]+/g, "-")}.cpuprofile`);
    await writeFile(file, JSON.stringify(profile));
  }
}

function describeLatency(l: Latency): string {
  return `p50 ${l.p50Ms.toFixed(2)} ms, p99 ${l.p99Ms.toFixed(2)} ms, max ${l.maxMs.toFixed(2)} ms (${l.delivered}/${l.messages})`;
}

export async function measureFlows(options: FlowOptions): Promise<FlowFigures> {
  const cleanups: (() => Promise<unknown>)[] = [];
  const setupStart = performance.now();
  try {
    const running = await startAll(options, cleanups);
    const stopWatching = watchMatrixSends(running.marks, "benchw2m");
    cleanups.push(async () => stopWatching());
    const setupSeconds = (performance.now() - setupStart) / 1000;
    const variant = options.encrypted === true ? " (encrypted portals)" : "";
    options.progress(
      `  ${options.backend}${variant}: world and ${options.portals} portals ready in ${setupSeconds.toFixed(1)} s`,
    );
    const m2w = await direction(
      "Matrix -> WhatsApp",
      async (count, rate) => {
        running.queries.sql.clear();
        const result = await runM2W(running, count, rate);
        printStatements(running, "Matrix -> WhatsApp", count);
        return result;
      },
      options,
    );
    const w2m = await direction(
      "WhatsApp -> Matrix",
      async (count, rate) => {
        running.queries.sql.clear();
        const result = await runW2M(running, count, rate);
        printStatements(running, "WhatsApp -> Matrix", count);
        return result;
      },
      options,
    );
    const userDecrypted = running.encrypted
      ? await running.world.ask(
          { type: "verify", marker: w2m.maxMarker, portals: running.portals },
          "verified",
        )
      : undefined;
    if (userDecrypted !== undefined) {
      options.progress(
        `  the user's device decrypted ${userDecrypted.decrypted} of the maximum run's ` +
          `WhatsApp -> Matrix messages (${userDecrypted.undecryptable} undecryptable)`,
      );
    }
    return {
      backend: options.backend,
      encrypted: running.encrypted,
      ...(userDecrypted === undefined
        ? {}
        : {
            userDecrypted: {
              decrypted: userDecrypted.decrypted,
              undecryptable: userDecrypted.undecryptable,
            },
          }),
      portals: options.portals,
      setupSeconds,
      m2w: m2w.figures,
      w2m: w2m.figures,
      bridgeCpuUsPerMessage: { m2w: m2w.cpuUsPerMessage, w2m: w2m.cpuUsPerMessage },
      queriesPerMessage: { m2w: m2w.queriesPerMessage, w2m: w2m.queriesPerMessage },
      commitsPerMessage: { m2w: m2w.commitsPerMessage, w2m: w2m.commitsPerMessage },
    };
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  }
}
