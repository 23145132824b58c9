import { parseCommand } from "./cli/args.js";
import { reportFailure, runCommand } from "./cli/commands.js";
import { filterKnownWarnings } from "./util/warnings.js";

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
