import { parseCommand } from "./cli/args.js";
import { reportFailure, runCommand } from "./cli/commands.js";

/**
 * Entry point (bin/matrix-whatsapp-interop.js loads the build of this file): parse the command
 * line, run the command, and turn any failure into one clear line. Returns the exit code.
 */
export async function main(argv: readonly string[]): Promise<number> {
  filterKnownWarnings();
  try {
    return await runCommand(parseCommand(argv));
  } catch (err) {
    return reportFailure(err);
  }
}

/**
 * express 4 (under matrix-appservice-bridge) calls the deprecated util._extend when it loads; that
 * warning is noise to an admin and not theirs to fix, so only that one is dropped.
 */
function filterKnownWarnings(): void {
  process.removeAllListeners("warning");
  process.on("warning", (warning: Error & { code?: string }) => {
    if (warning.code === "DEP0060") return;
    process.stderr.write(`${warning.name}: ${warning.message}\n`);
  });
}
