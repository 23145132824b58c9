import { createRequire } from "node:module";
import { appendFileSync } from "node:fs";
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { dump } from "js-yaml";
import type { EncryptingMatrixUser } from "../../scripts/demo/crypto-user.js";
import { buildRegistration } from "../../src/cli/registration.js";
import { localpartFromMatrixUserId } from "../../src/interop/codec/jid.js";
import { configSchema } from "../../src/config/schema.js";
import { matrixUserId } from "../../src/util/ids.js";
import { startSimulator, type Simulator } from "../../simulator/main.js";
import { MatrixUser, WhatsAppUser, type RoomEvent } from "../../scripts/demo/clients.js";
import { createTestHomeserver, type AppserviceRegistration } from "../homeserver/index.js";
import type { TestHomeserver } from "../homeserver/index.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
// Resolved here, not by the child: the child runs in a temporary directory.
// Resolved with require's resolver: import.meta.resolve("tsx") runs the tsx loader's resolve
// hook, and after matrix-js-sdk was loaded in the same process (mocha loads test/e2e before
// test/faults) that made matrix-js-sdk evaluate a second time ("Multiple entrypoints detected").
const TSX = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
export const DOMAIN = "faults.example";
const PROVIDER_DOMAIN = "matrix.bridge.example";
const PROVIDER_ID = "matrix-bridge-example";

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no free port found");
  return address.port;
}

export const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it returns something other than undefined/false, or fails after `ms`. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  ms = 60_000,
  describe?: () => Promise<string> | string,
): Promise<T> {
  const deadline = Date.now() + ms;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const detail = describe === undefined ? "" : `; ${await describe()}`;
      const cause = lastError === undefined ? "" : `; last error: ${String(lastError)}`;
      throw new Error(`timed out after ${ms} ms waiting for ${what}${detail}${cause}`);
    }
    await sleep(200);
  }
}

export interface WorldOptions {
  /** Database of the bridge: SQLite in the world's directory (default) or this PostgreSQL URI. */
  postgresUri?: string;
  /** Where the bridge connects as a component; default: the simulator's embedded server. */
  componentService?: () => string;
  /** The simulator connects to this XMPP server (external mode) instead of its own. */
  externalXmpp?: { service: string; secret: string; providerSecret: string };
  /** §8.3 limits the simulator announces. */
  limits?: Record<string, number>;
  /** Extra config for the bridge, merged at the top level. */
  bridgeConfig?: Record<string, unknown>;
}

/**
 * The end-to-end world of the fault tests: the in-process test homeserver, the gatekeeper
 * simulator in-process (its admin API drives the WhatsApp users), and the real bridge as a child
 * process started from the sources with the command line an operator uses, so that a test can
 * SIGKILL it.
 */
export class FaultWorld {
  readonly hs: TestHomeserver;
  sim!: Simulator;
  readonly dir: string;
  readonly adminToken = randomBytes(12).toString("hex");
  private readonly secret = randomBytes(16).toString("hex");
  private bridgeChild: ChildProcess | undefined;
  private bridgeExit: Promise<void> | undefined;
  /** Everything the bridge printed to stderr, across restarts. */
  bridgeLog = "";
  readonly bridgePort: number;
  private readonly cleanups: (() => Promise<unknown>)[] = [];

  private constructor(
    dir: string,
    bridgePort: number,
    hs: TestHomeserver,
    private readonly options: WorldOptions,
  ) {
    this.dir = dir;
    this.bridgePort = bridgePort;
    this.hs = hs;
  }

  static async start(options: WorldOptions = {}): Promise<FaultWorld> {
    const dir = await mkdtemp(path.join(tmpdir(), "mwi-faults-"));
    const bridgePort = await freePort();
    const base = {
      homeserver: { url: "http://127.0.0.1:1", domain: DOMAIN },
      appservice: { port: bridgePort },
    };
    const registration = buildRegistration(
      configSchema.parse(base),
      `http://127.0.0.1:${bridgePort}`,
      { asToken: randomBytes(16).toString("hex"), hsToken: randomBytes(16).toString("hex") },
    );
    const hs = createTestHomeserver({
      serverName: DOMAIN,
      appservices: [registration as unknown as AppserviceRegistration],
      retryInitialMs: 50,
      retryMaxMs: 1000,
      pushTimeoutMs: 30_000,
    });
    await hs.start();
    const world = new FaultWorld(dir, bridgePort, hs, options);
    world.cleanups.push(() => rm(dir, { recursive: true, force: true }));
    world.cleanups.push(() => hs.stop());
    try {
      await writeFile(path.join(dir, "registration.yaml"), dump(registration));
      await writeFile(path.join(dir, "encryption.key"), randomBytes(32).toString("base64"));
      await world.startSimulator();
      await world.writeConfig();
      return world;
    } catch (err) {
      await world.stop();
      throw err;
    }
  }

  private async startSimulator(): Promise<void> {
    const external = this.options.externalXmpp;
    this.sim = await startSimulator({
      ...(external === undefined
        ? { mode: "embedded" as const }
        : {
            mode: "external" as const,
            externalService: external.service,
            gatekeeperSecret: external.secret,
          }),
      providers: [
        {
          id: PROVIDER_ID,
          name: "Fault test bridge",
          domain: PROVIDER_DOMAIN,
          secret: this.secret,
        },
      ],
      dataDir: path.join(this.dir, "simulator"),
      admin: { token: this.adminToken },
      limits: {
        "messages-per-minute": 100_000,
        "request-messages": 100_000,
        "ack-timeout-seconds": 3,
        ...this.options.limits,
      } as never,
      tickIntervalMs: 500,
    });
    const sim = this.sim;
    this.cleanups.push(() => sim.stop());
  }

  get componentService(): string {
    return this.options.componentService?.() ?? this.sim.service;
  }

  async writeConfig(): Promise<void> {
    const service = new URL(this.componentService.replace(/^xmpp:/, "http:"));
    const config = {
      homeserver: { url: this.hs.url, domain: DOMAIN },
      appservice: { port: this.bridgePort },
      database:
        this.options.postgresUri === undefined
          ? { type: "sqlite", uri: path.join(this.dir, "bridge.db") }
          : { type: "postgres", uri: this.options.postgresUri },
      encryption: { key_file: path.join(this.dir, "encryption.key") },
      permissions: { "*": "none", [DOMAIN]: "user" },
      interop: {
        mode: "external",
        component_host: service.hostname,
        component_port: Number(service.port),
        component_domain: PROVIDER_DOMAIN,
        component_secret: this.options.externalXmpp?.providerSecret ?? this.secret,
        provider_id: PROVIDER_ID,
        allow_insecure_media_on_loopback: true,
      },
      logging: { level: "info", format: "text" },
      // The bursts come from one Matrix user: the per-user abuse limits would refuse them.
      limits: {
        messages_per_minute: 1_000_000,
        new_chats_per_hour: 1_000_000,
        message_requests_per_hour: 1_000_000,
      },
      // The fault scenarios read portals as a client without crypto.
      matrix_encryption: { default: false },
      ...this.options.bridgeConfig,
    };
    configSchema.parse(config);
    await writeFile(path.join(this.dir, "config.yaml"), dump(config));
  }

  /** Starts the bridge process and waits until it listens and is connected to the gatekeeper. */
  async startBridge(): Promise<void> {
    if (this.bridgeChild !== undefined) throw new Error("the bridge is already running");
    const child = spawn(
      process.execPath,
      [
        "--import",
        TSX,
        `${ROOT}test/helpers/cli-entry.ts`,
        "-c",
        "config.yaml",
        "-f",
        "registration.yaml",
      ],
      { cwd: this.dir, stdio: ["ignore", "ignore", "pipe"], env: { ...process.env } },
    );
    const startedAt = this.bridgeLog.length;
    child.stderr.on("data", (chunk: Buffer) => {
      this.bridgeLog += chunk.toString("utf8");
      // FAULT_BRIDGE_LOG=<file> keeps the whole log for a failure's post-mortem.
      const keep = process.env.FAULT_BRIDGE_LOG;
      if (keep !== undefined) appendFileSync(keep, chunk);
    });
    this.bridgeChild = child;
    this.bridgeExit = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    await waitFor(
      "the bridge to start and say hello to the gatekeeper",
      () => {
        if (child.exitCode !== null) {
          throw new Error(`the bridge exited with ${child.exitCode}`);
        }
        const log = this.bridgeLog.slice(startedAt);
        return log.includes("appservice listener ready") && log.includes("hello succeeded");
      },
      90_000,
      () => this.bridgeLog.slice(startedAt).slice(-3000),
    );
  }

  /** The bridge process's id, for memory sampling. */
  get bridgePid(): number | undefined {
    return this.bridgeChild?.pid;
  }

  get bridgeRunning(): boolean {
    return this.bridgeChild !== undefined;
  }

  /** SIGKILL: no shutdown handler, nothing flushed; only committed transactions survive. */
  async killBridge(): Promise<void> {
    const child = this.bridgeChild;
    if (child === undefined) return;
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await this.bridgeExit;
    this.bridgeChild = undefined;
  }

  /** SIGTERM, as an admin stops it; waits for the exit. */
  async stopBridge(): Promise<number | null> {
    const child = this.bridgeChild;
    if (child === undefined) return null;
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    await this.bridgeExit;
    clearTimeout(timer);
    this.bridgeChild = undefined;
    return child.exitCode;
  }

  async stop(): Promise<void> {
    await this.killBridge().catch(() => undefined);
    for (const cleanup of this.cleanups.reverse()) await cleanup().catch(() => undefined);
    this.cleanups.length = 0;
  }

  whatsApp(phone: string): WhatsAppUser {
    return new WhatsAppUser(
      this.sim.admin?.url ?? "",
      this.adminToken,
      phone,
      `${phone.slice(1)}@wa.example`,
    );
  }

  matrixUser(localpart: string): MatrixUser {
    const user = this.hs.registerUser(localpart, "password");
    return new MatrixUser(this.hs.url, user.userId, user.accessToken);
  }

  botUserId(): string {
    return `@whatsappbot:${DOMAIN}`;
  }

  jidOf(user: { userId: string }): string {
    return `${localpartFromMatrixUserId(matrixUserId(user.userId))}@${PROVIDER_DOMAIN}`;
  }
}

/** All events of a room, oldest first, paging through /messages. */
export async function timeline(user: FaultMatrixUser, room: string): Promise<RoomEvent[]> {
  // An encrypting client's own (decrypted) view: the homeserver holds only ciphertext.
  if ("client" in user) return user.events(room);
  const events: RoomEvent[] = [];
  let from: string | undefined;
  for (;;) {
    const query = `dir=f&limit=1000${from === undefined ? "" : `&from=${encodeURIComponent(from)}`}`;
    const answer = await user.request(
      "GET",
      `/_matrix/client/v3/rooms/${encodeURIComponent(room)}/messages?${query}`,
    );
    if (answer.status !== 200) throw new Error(`messages answered ${answer.status}`);
    const chunk = (answer.json["chunk"] as RoomEvent[] | undefined) ?? [];
    events.push(...chunk);
    const end = answer.json["end"] as string | undefined;
    if (chunk.length === 0 || end === undefined || end === from) return events;
    from = end;
  }
}

/**
 * A Matrix user logged in to WhatsApp through the bot, with a portal to one WhatsApp contact that
 * accepted the chat: the conversation the fault tests send through.
 */
/** The Matrix user of a conversation: plain HTTP, or a js-sdk client with Rust crypto. */
export type FaultMatrixUser = MatrixUser | EncryptingMatrixUser;

export interface Conversation {
  me: FaultMatrixUser;
  contact: WhatsAppUser;
  mgmt: string;
  portal: string;
  myJid: string;
}

async function botSays(
  world: FaultWorld,
  me: FaultMatrixUser,
  room: string,
  pattern: RegExp,
  after: number,
): Promise<string> {
  return waitFor(`the bot to answer ${pattern}`, async () => {
    const events = (await me.events(room)).slice(after);
    const found = events.find(
      (e) => e.sender === world.botUserId() && pattern.test(String(e.content["body"])),
    );
    return found === undefined ? undefined : String(found.content["body"]);
  });
}

async function command(
  world: FaultWorld,
  me: FaultMatrixUser,
  room: string,
  text: string,
  answer: RegExp,
): Promise<string> {
  const before = (await me.events(room)).length;
  await me.send(room, "m.room.message", { msgtype: "m.text", body: text });
  return botSays(world, me, room, answer, before);
}

export async function openConversation(
  world: FaultWorld,
  localpart: string,
  myPhone: string,
  contactPhone: string,
  /** The Matrix user's client, when not the plain one `localpart` gets. */
  client?: FaultMatrixUser,
): Promise<Conversation> {
  const me = client ?? world.matrixUser(localpart);
  const contact = world.whatsApp(contactPhone);
  await contact.create();
  const mgmt = await me.createDm(world.botUserId());
  await botSays(world, me, mgmt, /login/, 0);
  await command(world, me, mgmt, "login", /./);
  await command(world, me, mgmt, "phone", /phone number/i);
  await command(world, me, mgmt, myPhone, /code/i);
  const code = await waitFor("the verification code", async () => {
    const answer = await contact.request("GET", `/_test/verification-codes/${myPhone.slice(1)}`);
    return answer.status === 200 ? String(answer.json["code"]) : undefined;
  });
  await command(world, me, mgmt, code, /^Logged in/);
  const before = new Set(await me.invites());
  await command(world, me, mgmt, `start-chat ${contactPhone}`, /Invited you|already have a chat/);
  const portal = await waitFor("the portal invite", async () =>
    (await me.invites()).find((room) => !before.has(room)),
  );
  await me.join(portal);
  const myJid = world.jidOf(me);
  // The first message opens a chat request; the contact accepts it, so nothing is held back.
  await me.send(portal, "m.room.message", { msgtype: "m.text", body: "hello" });
  await waitFor("the first message at the contact", async () =>
    (await contact.received("message")).some((e) => JSON.stringify(e.data).includes("hello")),
  );
  await contact.acceptRequest(myJid);
  return { me, contact, mgmt, portal, myJid };
}
