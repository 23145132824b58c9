import { Writable } from "node:stream";
import { pino, type Logger as PinoLogger, type LevelWithSilent } from "pino";

/**
 * The project's logger: pino, with a child logger per login, portal and connection.
 * Message content, tokens and keys are only ever logged at `debug` or `trace`; the paths below are
 * redacted at every level as a second line of defence.
 */
export type Logger = PinoLogger;
export type LogLevel = Exclude<LevelWithSilent, "silent"> | "silent";
type LogFormat = "json" | "text";

const REDACT = [
  "as_token",
  "hs_token",
  "secret",
  "password",
  "accessToken",
  "access_token",
  "token",
  "*.as_token",
  "*.hs_token",
  "*.secret",
  "*.password",
  "*.accessToken",
  "*.access_token",
  "*.token",
];

interface LoggerOptions {
  level: LogLevel;
  format: LogFormat;
  /** Defaults to stderr, so that stdout stays free for command output (registration, --version). */
  destination?: NodeJS.WritableStream;
}

export function createLogger(options: LoggerOptions): Logger {
  const out = options.destination ?? process.stderr;
  const stream = options.format === "text" ? textStream(out) : out;
  return pino(
    {
      level: options.level,
      redact: { paths: REDACT, censor: "[redacted]" },
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    stream,
  );
}

/** A logger that discards everything, for tests and for library use without configuration. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}

/** Turns pino's JSON lines into `time LEVEL [component] message key=value` for people. */
function textStream(out: NodeJS.WritableStream): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString("utf8").split("\n")) {
        if (line.length === 0) continue;
        out.write(formatLine(line) + "\n");
      }
      callback();
    },
  });
}

function formatLine(line: string): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const { time, level, msg, component, ...rest } = record;
  const head = [
    String(time ?? ""),
    String(level ?? "")
      .toUpperCase()
      .padEnd(5),
    component === undefined ? "" : `[${String(component)}]`,
    String(msg ?? ""),
  ]
    .filter((part) => part.length > 0)
    .join(" ");
  const tail = Object.entries(rest)
    .map(([key, value]) => `${key}=${typeof value === "string" ? value : JSON.stringify(value)}`)
    .join(" ");
  return tail.length > 0 ? `${head} ${tail}` : head;
}
