/**
 * Resident memory of an idle bridge with N mapped users and portals, and its time from start to
 * ready. The database is seeded in bulk through the project's database module (openDatabase,
 * migrateToLatest, then batch inserts into its tables), then the bridge starts in a child process
 * (bench/memory-child.ts) connected to a gatekeeper simulator in this process. The child runs the
 * project compiled by tsc (incrementally, into a cache under the system's temporary directory), not
 * under tsx: tsx's loader thread and on-the-fly transforms would add tens of MB and seconds that a
 * deployment (`npm run build`, `node bin/...`) does not have.
 *
 * Each user is logged in, with a local Signal identity and device row (placeholder key bytes: an
 * idle bridge does not unseal them), one WhatsApp contact with its ghost and an accepted portal.
 */
import { execFile, fork } from "node:child_process";
import { createHash } from "node:crypto";
import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile, mkdtemp, rm, symlink } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { buildRegistration } from "../src/cli/registration.js";
import { configSchema } from "../src/config/schema.js";
import { openDatabase, type DatabaseType } from "../src/db/database.js";
import { migrateToLatest } from "../src/db/migrate.js";
import { localpartFromMatrixUserId } from "../src/interop/codec/jid.js";
import { matrixUserId } from "../src/util/ids.js";
import { startSimulator } from "../simulator/main.js";
import { bridgeDatabase, freePort } from "./flows.js";

const DOMAIN = "bench.example";
const KEY_ENV = "MWI_BENCH_KEY";
/**
 * How long the idle bridge is left alone before its RSS is read: long enough for it to find itself
 * idle and give back what start-up left committed to the heap (src/util/heap-compaction.ts: two
 * quiet looks 2 s apart), as any bridge that has been idle for a few seconds has.
 */
const SETTLE_MS = Number(process.env["BENCH_SETTLE_MS"] ?? 12_000);

export interface MemoryFigure {
  readonly users: number;
  /** Resident set size of the idle bridge process, MB (1e6 bytes). */
  readonly rssMb: number;
  /** V8 heap in use and external (native buffers) memory at the same moment, MB. */
  readonly heapUsedMb: number;
  readonly externalMb: number;
  /** Process spawn to startBridge resolved (Node start, tsx, module loading, start-up). */
  readonly readySeconds: number;
  /** startBridge call to resolved (database, listener, logins), inside the child. */
  readonly startBridgeSeconds: number;
  readonly seedSeconds: number;
}

export async function measureMemory(
  backend: DatabaseType,
  sizes: readonly number[],
  progress: (line: string) => void,
): Promise<MemoryFigure[]> {
  process.env[KEY_ENV] ??= randomBytes(32).toString("base64");
  const secret = randomBytes(24).toString("hex");
  const probe = configSchema.parse({ homeserver: { url: "http://127.0.0.1:9", domain: DOMAIN } });
  const sim = await startSimulator({
    providers: [
      {
        id: probe.interop.provider_id,
        name: probe.appservice.bot.display_name,
        domain: probe.interop.component_domain,
        secret,
      },
    ],
    media: false,
    database: ":memory:",
    tickIntervalMs: 0,
  });
  const figures: MemoryFigure[] = [];
  try {
    const entry = await compiledChild();
    for (const users of sizes) {
      const figure = await measureOne(backend, users, sim.service, secret, entry);
      progress(
        `  ${backend}, ${users} users and portals: RSS ${figure.rssMb.toFixed(1)} MB ` +
          `(V8 heap ${figure.heapUsedMb.toFixed(1)} MB, external ${figure.externalMb.toFixed(1)} MB), ` +
          `ready in ${figure.readySeconds.toFixed(2)} s (startBridge ${figure.startBridgeSeconds.toFixed(2)} s)`,
      );
      figures.push(figure);
    }
  } finally {
    await sim.stop();
  }
  return figures;
}

async function measureOne(
  backend: DatabaseType,
  users: number,
  service: string,
  secret: string,
  entry: string,
): Promise<MemoryFigure> {
  const database = await bridgeDatabase(backend);
  const dir = await mkdtemp(path.join(tmpdir(), "mwi-bench-mem-"));
  try {
    const url = new URL(service);
    const raw = {
      homeserver: { url: "http://127.0.0.1:9", domain: DOMAIN },
      database: { type: backend, uri: database.uri },
      encryption: { key_env: KEY_ENV },
      permissions: { "*": "none", [DOMAIN]: "user" },
      ...(process.env["BENCH_NO_E2B"] === "1"
        ? { matrix_encryption: { allow: false, default: false } }
        : {}),
      interop: {
        mode: "external",
        component_host: url.hostname,
        component_port: Number(url.port),
        component_secret: secret,
      },
    };
    const config = configSchema.parse(raw);
    const seedStart = performance.now();
    await seed(backend, database.uri, users, config);
    const seedSeconds = (performance.now() - seedStart) / 1000;
    const port = await freePort();
    const registration = buildRegistration(config, `http://127.0.0.1:${port}`, {
      asToken: randomBytes(16).toString("hex"),
      hsToken: randomBytes(16).toString("hex"),
    });
    const file = path.join(dir, "child.json");
    await writeFile(file, JSON.stringify({ config: raw, registration, port }));
    const spawned = performance.now();
    const child = fork(entry, [file], {
      execArgv: childExecArgv(),
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    try {
      const ready = await new Promise<{ startBridgeMs: number }>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error("the bridge was not ready in 120 s")),
          120_000,
        );
        child.once("message", (m) => {
          clearTimeout(timer);
          resolve(m as { startBridgeMs: number });
        });
        child.once("exit", (code) => reject(new Error(`the bridge exited (${code}) before ready`)));
      });
      const readySeconds = (performance.now() - spawned) / 1000;
      await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
      const rssMb = (await rssOf(child.pid ?? 0)) / 1e6;
      const usage = await new Promise<{ heapUsed: number; external: number }>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error("the bridge did not report its memory")),
          30_000,
        );
        child.once("message", (m) => {
          clearTimeout(timer);
          resolve(m as { heapUsed: number; external: number });
        });
        child.send({ type: "memory" });
      });
      return {
        users,
        rssMb,
        heapUsedMb: usage.heapUsed / 1e6,
        externalMb: usage.external / 1e6,
        readySeconds,
        startBridgeSeconds: ready.startBridgeMs / 1000,
        seedSeconds,
      };
    } finally {
      const exited = new Promise<void>((resolve) => {
        if (child.exitCode !== null) resolve();
        else child.once("exit", () => resolve());
      });
      if (child.connected) child.disconnect();
      const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
      await exited;
      clearTimeout(timer);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
    await database.dispose();
  }
}

/**
 * Node options of the bridge process. BENCH_CHILD_PROF=<dir>: a CPU profile of each bridge process
 * (start-up included). BENCH_CHILD_ARGS: further options, space-separated, for finding where the
 * memory goes (e.g. `--import ./trace-loads.mjs` or `--heapsnapshot-signal=SIGUSR2`).
 */
function childExecArgv(): string[] {
  const prof = process.env["BENCH_CHILD_PROF"];
  const extra = process.env["BENCH_CHILD_ARGS"];
  return [
    ...(prof === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${prof}`]),
    ...(extra === undefined ? [] : extra.split(" ").filter((a) => a !== "")),
  ];
}

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/**
 * Compiles the bridge and bench/memory-child.ts with the project's tsc into a cache directory
 * (incremental: only the first run, or one after changes, takes long); returns the child's entry.
 */
export async function compiledChild(): Promise<string> {
  const hash = createHash("sha256").update(ROOT).digest("hex").slice(0, 12);
  const cache = path.join(tmpdir(), `mwi-bench-build-${hash}`);
  await mkdir(cache, { recursive: true });
  // The compiled files import packages by name: they resolve through this link to the project's.
  await symlink(path.join(ROOT, "node_modules"), path.join(cache, "node_modules")).catch(
    (err: NodeJS.ErrnoException) => {
      if (err.code !== "EEXIST") throw err;
    },
  );
  const tsconfig = path.join(cache, "tsconfig.json");
  await writeFile(
    tsconfig,
    JSON.stringify({
      extends: path.join(ROOT, "tsconfig.build.json"),
      compilerOptions: {
        outDir: path.join(cache, "out"),
        rootDir: ROOT,
        incremental: true,
        tsBuildInfoFile: path.join(cache, "tsbuildinfo"),
        sourceMap: false,
        // Type packages resolve from the tsconfig's directory by default, which is the cache.
        typeRoots: [path.join(ROOT, "node_modules", "@types")],
      },
      include: ["src", "simulator", "migrations", "bench/memory-child.ts"].map((p) =>
        path.join(ROOT, p),
      ),
    }),
  );
  const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
  await new Promise<void>((resolve, reject) =>
    execFile(process.execPath, [tsc, "-p", tsconfig], { timeout: 300_000 }, (err, stdout) =>
      err === null ? resolve() : reject(new Error(`tsc failed: ${stdout}`, { cause: err })),
    ),
  );
  return path.join(cache, "out", "bench", "memory-child.js");
}

/** VmRSS of a process, bytes (Linux). */
async function rssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (match === null) throw new Error(`no VmRSS for process ${pid}`);
  return Number(match[1]) * 1024;
}

const CHUNK = 500;

async function seed(
  type: DatabaseType,
  uri: string,
  users: number,
  config: ReturnType<typeof configSchema.parse>,
): Promise<void> {
  const db = await openDatabase({ type, uri });
  try {
    await migrateToLatest(db.knex);
    const now = Date.now();
    const rows = {
      users: [] as Record<string, unknown>[],
      identities: [] as Record<string, unknown>[],
      devices: [] as Record<string, unknown>[],
      ghosts: [] as Record<string, unknown>[],
      contacts: [] as Record<string, unknown>[],
      portals: [] as Record<string, unknown>[],
    };
    for (let i = 0; i < users; i++) {
      const mxid = `@user${i}:${DOMAIN}`;
      const localpart = localpartFromMatrixUserId(matrixUserId(mxid));
      const jid = `${localpart}@${config.interop.component_domain}`;
      const phone = `+4915${String(i).padStart(8, "0")}`;
      const contactDigits = `4916${String(i).padStart(8, "0")}`;
      const contact = `${contactDigits}@${config.interop.gatekeeper_domain}`;
      const ghost = `@${config.appservice.ghost_localpart_template.replace("{id}", contactDigits)}:${DOMAIN}`;
      rows.users.push({
        mxid,
        address: phone,
        login_state: "logged-in",
        management_room: `!mgmt${i}:${DOMAIN}`,
        created_at: now,
        updated_at: now,
      });
      rows.identities.push({
        jid,
        key_pair_enc: randomBytes(92),
        public_key: randomBytes(33),
        created_at: now,
      });
      rows.devices.push({
        jid,
        device_id: 1,
        registration_id: 1 + (i % 16380),
        next_prekey_id: 1,
        next_signed_prekey_id: 1,
        next_kyber_prekey_id: 1,
        created_at: now,
      });
      rows.ghosts.push({
        remote_id: contact,
        address: `+${contactDigits}`,
        mxid: ghost,
        created_at: now,
      });
      rows.contacts.push({ user_mxid: mxid, remote_id: contact, created_at: now });
      rows.portals.push({
        user_mxid: mxid,
        remote_id: contact,
        room_id: `!portal${i}:${DOMAIN}`,
        request_state: "accepted",
        user_membership: "join",
        created_at: now,
        updated_at: now,
      });
    }
    await db.knex.transaction(async (trx) => {
      await trx.batchInsert("users", rows.users, CHUNK);
      await trx.batchInsert("signal_local_identities", rows.identities, CHUNK);
      await trx.batchInsert("signal_local_devices", rows.devices, CHUNK);
      await trx.batchInsert("ghosts", rows.ghosts, CHUNK);
      await trx.batchInsert("contacts", rows.contacts, CHUNK);
      await trx.batchInsert("portals", rows.portals, CHUNK);
    });
  } finally {
    await db.close();
  }
}
