/**
 * express 4 (under matrix-appservice-bridge) calls the deprecated util._extend when it loads; that
 * warning is noise to an admin and not theirs to fix, so only that one is dropped. Every other
 * warning is printed as Node would.
 */
export function filterKnownWarnings(): void {
  process.removeAllListeners("warning");
  process.on("warning", (warning: Error & { code?: string }) => {
    if (warning.code === "DEP0060") return;
    process.stderr.write(`${warning.name}: ${warning.message}\n`);
  });
}
