import { readFile } from "node:fs/promises";
import path from "node:path";
import { createInterface } from "node:readline/promises";
import { USAGE, type Command } from "./args.js";
import { loadEmbeddedGatekeeper } from "./embedded-entry.js";
import { generateKeyFile } from "./generate-key.js";
import { INIT_FILES, initDirectory, type Ask } from "./init.js";
import { configuredNetwork } from "./network.js";
import { buildRegistration, generateTokens } from "./registration.js";
import { checkRegistrationMatches } from "./registration-check.js";
import { readRegistration, writeRegistrationFile } from "./registration-file.js";
import { loadConfig } from "../config/load.js";
import { openDatabase } from "../db/database.js";
import { migrateToLatest } from "../db/migrate.js";
import { BridgeError, ConfigError, describeError } from "../util/errors.js";
import { createLogger } from "../util/log.js";

/** Runs one parsed command. Returns the exit code; throws what reportFailure turns into a line. */
export async function runCommand(command: Command): Promise<number> {
  switch (command.kind) {
    case "help":
      process.stdout.write(USAGE + "\n");
      return 0;
    case "version":
      process.stdout.write((await packageVersion()) + "\n");
      return 0;
    case "generate-key":
      await generateKeyFile(command.file, command.force);
      process.stdout.write(`wrote a new encryption key to ${command.file}\n`);
      return 0;
    case "init": {
      const answers = { homeserverUrl: command.homeserverUrl, domain: command.domain };
      const terminal = process.stdin.isTTY ? terminalAsk() : undefined;
      let result;
      try {
        result = await initDirectory(command.dir, answers, terminal?.ask);
      } finally {
        terminal?.close();
      }
      for (const file of result.created) process.stdout.write(`created ${file}\n`);
      for (const file of result.kept) process.stdout.write(`kept ${file} (exists)\n`);
      const registration = path.join(command.dir, INIT_FILES.registration);
      process.stdout.write(
        `next: give ${registration} to the homeserver (Synapse: app_service_config_files), ` +
          `restart it, then run the bridge with -c ${path.join(command.dir, INIT_FILES.config)}\n`,
      );
      return 0;
    }
    case "validate-config":
      await loadConfig(command.config);
      process.stdout.write(`${command.config} is valid\n`);
      return 0;
    case "register": {
      const config = await loadConfig(command.config);
      const registration = buildRegistration(
        config,
        command.url ?? config.appservice.url,
        generateTokens(),
      );
      await writeRegistrationFile(command.file, registration, command.force);
      process.stdout.write(`wrote the appservice registration to ${command.file}\n`);
      return 0;
    }
    case "migrate": {
      const config = await loadConfig(command.config);
      const db = await openDatabase({ type: config.database.type, uri: config.database.uri });
      try {
        const { applied } = await migrateToLatest(db.knex);
        process.stdout.write(
          applied.length === 0
            ? "database schema is current\n"
            : `applied ${applied.length} migration(s): ${applied.join(", ")}\n`,
        );
      } finally {
        await db.close();
      }
      return 0;
    }
    case "run":
      return runBridge(command);
  }
}

async function runBridge(command: Extract<Command, { kind: "run" }>): Promise<number> {
  const config = await loadConfig(command.config);
  const log = createLogger({ level: config.logging.level, format: config.logging.format });
  const registration = await readRegistration(command.registration);
  checkRegistrationMatches(config, command.config, registration, command.registration);
  if (registration.url !== "" && registration.url !== config.appservice.url) {
    // -u may legitimately differ from appservice.url (it is where the homeserver reaches us).
    log.info(
      { registrationUrl: registration.url, configUrl: config.appservice.url },
      "the registration's url differs from appservice.url; the homeserver uses the registration's",
    );
  }
  // Loaded only to run: the Matrix libraries take a while to import and no other command needs them.
  const { startBridge } = await import("../bridge.js");
  const { createInteropConnector } = await import("../interop/connector/factory.js");
  // Only an embedded bridge needs the simulator, and only the embedded build has it.
  const startEmbedded =
    config.interop.mode === "embedded" ? await loadEmbeddedGatekeeper() : undefined;
  let fail: (err: Error) => void = () => undefined;
  const fatal = new Promise<Error>((resolve) => (fail = resolve));
  // Listening from before the start: a signal while the bridge is still starting (migrating, say)
  // must stop it cleanly once the start is done, not kill it with the signal's exit status.
  const signals: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];
  let starting = true;
  const signalled = new Promise<NodeJS.Signals>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      for (const s of signals) process.off(s, onSignal);
      if (starting) log.info({ signal }, "stopping as soon as the start-up has finished");
      // A second signal while stopping means the operator wants out now.
      const force = () => process.exit(1);
      for (const s of signals) process.once(s, force);
      resolve(signal);
    };
    for (const signal of signals) process.on(signal, onSignal);
  });
  const bridge = await startBridge({
    config,
    registration,
    registrationFile: command.registration,
    onFatal: (err) => fail(err),
    port: command.port ?? config.appservice.port,
    log,
    network: configuredNetwork(config),
    createConnector: (callbacks, deps) =>
      createInteropConnector(config, callbacks, {
        ...deps,
        ...(startEmbedded === undefined ? {} : { startEmbedded }),
      }),
  });
  starting = false;
  const stopBy = await Promise.race([signalled, fatal]);
  if (stopBy instanceof Error) {
    log.error({ err: stopBy.message }, "stopping: the bridge cannot work with this homeserver");
    await bridge.stop();
    throw stopBy;
  }
  log.info({ signal: stopBy }, "shutting down");
  await bridge.stop();
  return 0;
}

/** Questions on the terminal, for `init` run by a person. */
function terminalAsk(): { ask: Ask; close: () => void } {
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  return {
    ask: async (question, suggestion) => {
      const answer = (
        await rl.question(
          suggestion === undefined ? `${question}: ` : `${question} [${suggestion}]: `,
        )
      ).trim();
      return answer === "" ? (suggestion ?? "") : answer;
    },
    close: () => rl.close(),
  };
}

/** One clear line for what a user can fix; the stack only for bugs. */
export function reportFailure(err: unknown): number {
  if (err instanceof ConfigError) {
    process.stderr.write(`error: ${err.message}\n`);
    if (err.problems.length > 1 || err.problems[0] !== err.message) {
      for (const problem of err.problems) process.stderr.write(`  ${problem}\n`);
    }
    return 1;
  }
  if (err instanceof BridgeError) {
    process.stderr.write(`error: ${describeError(err)}\n`);
    return 1;
  }
  process.stderr.write(`internal error: ${describeError(err)}\n`);
  if (err instanceof Error && err.stack !== undefined) process.stderr.write(err.stack + "\n");
  return 70;
}

/**
 * The version in the package.json above this module: two levels up from the sources, three from
 * the build (dist/src/cli), so the nearest one named matrix-whatsapp-interop is searched for.
 */
async function packageVersion(): Promise<string> {
  let dir = new URL("./", import.meta.url);
  for (let depth = 0; depth < 5; depth++) {
    dir = new URL("../", dir);
    try {
      const pkg = JSON.parse(await readFile(new URL("package.json", dir), "utf8")) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === "matrix-whatsapp-interop" && pkg.version !== undefined) return pkg.version;
    } catch {
      // not here: keep walking up
    }
  }
  throw new Error("package.json of matrix-whatsapp-interop not found");
}
