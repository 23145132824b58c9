import { createHook, type AsyncHook } from "node:async_hooks";
import { writeSync } from "node:fs";

/**
 * Loaded by mocha for every run (.mocharc.json `require`): says what keeps the process alive after
 * the last test, since mocha no longer forces an exit (test/README.md). A leak delays the end of the
 * process, and this report names what delays it; only one that holds it past HOLD_LIMIT_MS fails.
 *
 * How it knows: `mochaGlobalTeardown` runs once mocha is done and arms an unref'd timer. That timer
 * cannot keep the process alive itself, so if it fires, something else does. It then prints the
 * handles still alive; with creation stacks where tracking is on (`REPORT_LEAKS=1`), the kinds
 * alone otherwise (tracking every async resource costs time, so runs skip it unless asked). A leak
 * that holds the process a minute after the run ends it with a failure (HOLD_LIMIT_MS).
 */

/** How long after the run a handle may still close by itself (a socket finishing its close). */
const GRACE_MS = 2_000;
/** At most this many handles are printed with their stacks. */
const MAX_LISTED = 20;

/** Async resource types that are libuv handles or timers, the things that keep a process alive. */
const HANDLE_TYPES = new Set([
  "Timeout",
  "TCPWRAP",
  "TCPSERVERWRAP",
  "PIPEWRAP",
  "PIPESERVERWRAP",
  "UDPWRAP",
  "PROCESSWRAP",
  "TTYWRAP",
  "FSEVENTWRAP",
  "STATWATCHER",
  "SIGNALWRAP",
  "HTTP2SESSION",
  "MESSAGEPORT",
  "WORKER",
]);

interface Tracked {
  type: string;
  resource: object;
  stack: string;
}

function trackingWanted(env: NodeJS.ProcessEnv): boolean {
  const flag = (value: string | undefined): boolean =>
    value !== undefined && value !== "" && value !== "0" && value !== "false";
  // Not on by default in CI: a stack for every timer of the whole suite costs time on 2 cores, and
  // the kinds alone, with the rerun hint, say enough to find a leak.
  return flag(env["REPORT_LEAKS"]);
}

const tracked = new Map<number, Tracked>();
let hook: AsyncHook | undefined;

if (trackingWanted(process.env)) {
  hook = createHook({
    init(id, type, _trigger, resource) {
      if (!HANDLE_TYPES.has(type)) return;
      const limit = Error.stackTraceLimit;
      Error.stackTraceLimit = 14;
      const holder: { stack?: string } = {};
      Error.captureStackTrace(holder);
      Error.stackTraceLimit = limit;
      const frames = (holder.stack ?? "")
        .split("\n")
        .slice(1)
        .filter(
          (line) => !/node:(internal\/)?(async_hooks|timers)|\/test\/helpers\/leaks\.ts/.test(line),
        );
      tracked.set(id, { type, resource: resource as object, stack: frames.join("\n") });
    },
    destroy(id) {
      tracked.delete(id);
    },
  });
  hook.enable();
}

/** Whether a tracked resource can still keep the loop alive (unref'd and closed ones cannot). */
function holdsProcess(entry: Tracked): boolean {
  const resource = entry.resource as {
    hasRef?: () => boolean;
    _destroyed?: boolean;
    _idleTimeout?: number;
  };
  if (entry.type === "Timeout" && (resource._destroyed === true || resource._idleTimeout === -1)) {
    return false;
  }
  if (
    [process.stdin, process.stdout, process.stderr].some(
      (stream) => (stream as unknown as { _handle?: object })._handle === resource,
    )
  ) {
    return false;
  }
  try {
    return typeof resource.hasRef === "function" ? resource.hasRef() : true;
  } catch {
    return true;
  }
}

function describeTimer(entry: Tracked): string {
  if (entry.type !== "Timeout") return "";
  const timer = entry.resource as { _idleTimeout?: number; _repeat?: number | null };
  const every = timer._repeat !== null && timer._repeat !== undefined;
  return ` (${every ? "setInterval" : "setTimeout"} ${timer._idleTimeout} ms)`;
}

/** The report: what is active, and with tracking on, where each handle still held was created. */
function leakReport(): string {
  const active = process.getActiveResourcesInfo();
  const lines = [
    `[leaks] ${GRACE_MS} ms after the last test the process is still running; active resources: ` +
      `${active.join(", ") || "(none listed)"}.`,
  ];
  if (hook === undefined) {
    lines.push("[leaks] Run with REPORT_LEAKS=1 for where each was created.");
    return lines.join("\n");
  }
  const holding = [...tracked.values()].filter(holdsProcess);
  lines.push(`[leaks] ${holding.length} handle(s) keep it alive, created at:`);
  for (const entry of holding.slice(0, MAX_LISTED)) {
    lines.push(`--- ${entry.type}${describeTimer(entry)}`, entry.stack);
  }
  if (holding.length > MAX_LISTED)
    lines.push(`[leaks] ... and ${holding.length - MAX_LISTED} more.`);
  return lines.join("\n");
}

/**
 * How long a leak may hold the process after the run before it is ended with a failure. A leak
 * that never ends would otherwise hold CI until its timeout (40 minutes) and fail it there, with
 * less to read; here it fails a minute after the run, its report printed first.
 */
const HOLD_LIMIT_MS = Number(process.env["LEAK_HOLD_LIMIT_MS"] ?? "") || 60_000;

export function mochaGlobalTeardown(): void {
  setTimeout(() => {
    // Only reached when something other than this timer keeps the process alive.
    hook?.disable();
    writeSync(2, `${leakReport()}\n`);
  }, GRACE_MS).unref();
  setTimeout(() => {
    writeSync(
      2,
      `[leaks] still running ${HOLD_LIMIT_MS / 1000} s after the last test: ended with a failure; ` +
        `${process.getActiveResourcesInfo().join(", ")}\n`,
    );
    // mocha (without --exit) sets the exit code in an 'exit' listener of its own; this one runs
    // after it, so a passing run held by a leak still ends as a failure.
    process.on("exit", () => {
      if (Number(process.exitCode ?? 0) === 0) process.exitCode = 1;
    });
    process.exit();
  }, HOLD_LIMIT_MS).unref();
}
