import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * Runs a real Prosody (Debian's 0.12 `/usr/bin/prosody`) for tests, configured from
 * `prosody.cfg.lua.template` after PROTOCOL.md Appendix A, in a fresh temporary directory.
 *
 * How the binary is driven, as read from its sources: `prosody -F --config <path>` runs in the
 * foreground with that config file (`PROSODY_CONFIG` is only read when `--config` is absent), and
 * mod_posix refuses to run as root unless the config says `run_as_root = true`, which the template
 * does because CI runs as root.
 */

export const PROSODY_BIN = process.env.PROSODY_BIN ?? "/usr/bin/prosody";

export const DEFAULT_PROSODY_SECRETS = {
  "wa.example": "gatekeeper-secret",
  "g.wa.example": "gatekeeper-secret",
  "matrix.bridge.example": "provider-secret",
} as const;

export interface ProsodyOptions {
  /** Component port on 127.0.0.1; default: a free port. Pass a previous port to restart. */
  port?: number;
  secrets?: Partial<Record<keyof typeof DEFAULT_PROSODY_SECRETS, string>>;
  /** `component_stanza_size_limit`; default 262144 + 16384 (Appendix A). */
  stanzaSizeLimit?: number;
  logLevel?: "debug" | "info" | "warn" | "error";
  startTimeoutMs?: number;
  /** Further components, domain -> secret (e.g. an attacker's component in security tests). */
  extraComponents?: Record<string, string>;
}

export interface ProsodyInstance {
  readonly port: number;
  /** `xmpp://127.0.0.1:<port>`, for ComponentConnection. */
  readonly service: string;
  readonly dir: string;
  /** Prosody's own log so far, for failure messages. */
  log(): Promise<string>;
  /** Stops Prosody (SIGTERM, then SIGKILL) and removes its directory. */
  stop(): Promise<void>;
  /** Kills Prosody at once (SIGKILL), as a crash would; the directory is kept for a restart. */
  kill(): Promise<void>;
}

export function hasProsody(): boolean {
  return existsSync(PROSODY_BIN);
}

/**
 * For a mocha `before` hook: skips the suite when Prosody is not installed, unless
 * `REQUIRE_PROSODY` is set (CI), where a missing Prosody is a failure.
 */
export function skipUnlessProsody(context: Mocha.Context): void {
  if (hasProsody()) return;
  const message = `Prosody not found at ${PROSODY_BIN} (apt-get install prosody)`;
  const required = process.env.REQUIRE_PROSODY;
  if (required !== undefined && required !== "" && required !== "0") {
    throw new Error(`${message}, and REQUIRE_PROSODY is set`);
  }
  // Mocha reports skipped tests as pending; the reason goes to stderr so it is not missed.
  process.stderr.write(`skipping Prosody tests: ${message}\n`);
  context.skip();
}

const TEMPLATE = fileURLToPath(new URL("./prosody.cfg.lua.template", import.meta.url));

export async function startProsody(options: ProsodyOptions = {}): Promise<ProsodyInstance> {
  const port = options.port ?? (await freePort());
  const dir = await mkdtemp(join(tmpdir(), "prosody-test-"));
  const secrets = { ...DEFAULT_PROSODY_SECRETS, ...options.secrets };
  const logFile = join(dir, "prosody.log");
  const config = fillTemplate(await readFile(TEMPLATE, "utf8"), {
    PID_FILE: luaString(join(dir, "prosody.pid")),
    DATA_DIR: luaString(dir),
    LOG_FILE: luaString(logFile),
    LOG_LEVEL: luaString(options.logLevel ?? "info"),
    COMPONENT_PORT: String(port),
    STANZA_SIZE_LIMIT: String(options.stanzaSizeLimit ?? 262144 + 16384),
    SECRET_WA: luaString(secrets["wa.example"]),
    SECRET_GROUPS: luaString(secrets["g.wa.example"]),
    SECRET_PROVIDER: luaString(secrets["matrix.bridge.example"]),
  });
  const extra = Object.entries(options.extraComponents ?? {})
    .map(
      ([domain, secret]) =>
        `Component ${luaString(domain)}\n  component_secret = ${luaString(secret)}\n`,
    )
    .join("");
  const configPath = join(dir, "prosody.cfg.lua");
  await writeFile(configPath, config + extra, { mode: 0o600 });

  const child = spawn(PROSODY_BIN, ["-F", "--config", configPath], {
    cwd: dir,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (d: Buffer) => (output += d.toString("utf8")));
  child.stderr.on("data", (d: Buffer) => (output += d.toString("utf8")));
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => resolve(code)),
  );
  child.once("error", (err) => (output += `\nspawn error: ${err.message}`));

  const readLog = async (): Promise<string> => {
    const file = await readFile(logFile, "utf8").catch(() => "");
    return `${output}\n${file}`.trim();
  };

  try {
    await waitForPort(port, options.startTimeoutMs ?? 15_000, () => child.exitCode !== null);
  } catch (err) {
    await terminate(child, exited);
    const log = await readLog();
    await rm(dir, { recursive: true, force: true });
    throw new Error(`Prosody did not start on port ${port}: ${(err as Error).message}\n${log}`);
  }

  return {
    port,
    service: `xmpp://127.0.0.1:${port}`,
    dir,
    log: readLog,
    async stop() {
      await terminate(child, exited);
      await rm(dir, { recursive: true, force: true });
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
    },
  };
}

async function terminate(child: ChildProcess, exited: Promise<unknown>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(timer);
}

function fillTemplate(template: string, values: Record<string, string>): string {
  const filled = template.replace(/\{\{([A-Z_]+)\}\}/g, (match, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`no value for ${match} in the Prosody template`);
    return value;
  });
  return filled;
}

/** A Lua string literal; only printable ASCII is accepted, so escaping `\` and `"` suffices. */
function luaString(value: string): string {
  if (!/^[\x20-\x7e]*$/.test(value)) {
    throw new Error(`unsupported character in Prosody config value ${JSON.stringify(value)}`);
  }
  return `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** A port that was free a moment ago (the usual bind-to-0 probe; races are unlikely in tests). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === "string") throw new Error("no port assigned");
  return address.port;
}

async function waitForPort(port: number, timeoutMs: number, gaveUp: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (gaveUp()) throw new Error("the process exited");
    if (await canConnect(port)) return;
    if (Date.now() > deadline) throw new Error(`port not open after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}
