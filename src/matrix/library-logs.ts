import { Writable } from "node:stream";
import { LogLevel, LogService } from "@vector-im/matrix-bot-sdk";
import { Logger as LibraryLogger } from "matrix-appservice-bridge";
import type { Logger } from "../util/log.js";

/**
 * matrix-appservice-bridge and the bot-sdk under it print to the console unless their logging is
 * configured, and on failed requests they print the homeserver's answer (which may quote message
 * content). Their output is routed into the bridge's logger instead, at debug: the bridge logs
 * what matters about a failure itself. The library's logging is process-wide, so the last bridge
 * started in a process receives it.
 */
export function routeLibraryLogs(log: Logger): void {
  const lib = log.child({ component: "matrix-library" });
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString("utf8").split("\n")) {
        if (line.trim() === "") continue;
        try {
          const entry = JSON.parse(line) as Record<string, unknown>;
          lib.debug(
            { module: entry["module"], libraryLevel: entry["level"], error: entry["error"] },
            String(entry["message"]),
          );
        } catch {
          lib.debug(line);
        }
      }
      done();
    },
  });
  LibraryLogger.root.configureLogging({ console: "off", json: true }, sink);
  // The library sets the bot-sdk to DEBUG and filters in winston, after the bot-sdk formatted
  // every request line (issue #15: a visible share of the W->M CPU). Everything it says lands at
  // debug here, so below debug it is filtered where it is cheapest: before formatting.
  if (!log.isLevelEnabled("debug")) {
    LogService.setLevel(LogLevel.ERROR);
    // The library's own lines (an Intent's debug line on every event it sends, morgan's access
    // line for every transaction) were timestamped, serialised to JSON, parsed back here and
    // then dropped: 2-3 % of a WhatsApp -> Matrix message's CPU (issue #15). Nothing of it is
    // kept below debug, so winston drops it before its formatters.
    const winston = LibraryLogger.root.winston;
    if (winston !== undefined) winston.silent = true;
  }
}
