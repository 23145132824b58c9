import { createHook, type AsyncHook } from "node:async_hooks";
import { writeSync } from "node:fs";

/**
 * Loaded by mocha for every run (.mocharc.json `require`): says what keeps the process alive after
 * the last test, since mocha no longer forces an exit (test/README.md). It never fails a run: a
 * leak delays the end of the process, and this report names what delays it.
 *
 * How it knows: `mochaGlobalTeardown` runs once mocha is done and arms an unref'd timer. That timer
 * cannot keep the process alive itself, so if it fires, something else does. It then prints the
 * handles still alive; with creation stacks where tracking is on (`CI` set, as CI services do, or
 * `REPORT_LEAKS=1`), the kinds alone otherwise (tracking every async resource costs time, so local
 * runs skip it).
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
  return flag(env["REPORT_LEAKS"]) || flag(env["CI"]);
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

export function mochaGlobalTeardown(): void {
  setTimeout(() => {
    // Only reached when something other than this timer keeps the process alive.
    hook?.disable();
    writeSync(2, `${leakReport()}\n`);
  }, GRACE_MS).unref();
}
