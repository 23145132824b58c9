import path from "node:path";
import { parseArgs } from "node:util";
import { ConfigError } from "../util/errors.js";

export type Command =
  | { kind: "help" }
  | { kind: "version" }
  | { kind: "register"; config: string; url: string | undefined; file: string; force: boolean }
  | { kind: "run"; config: string; registration: string; port: number | undefined }
  | { kind: "migrate"; config: string }
  | { kind: "validate-config"; config: string }
  | { kind: "generate-key"; file: string; force: boolean }
  | {
      kind: "init";
      dir: string;
      homeserverUrl: string | undefined;
      domain: string | undefined;
    };

export const USAGE = `Usage: matrix-whatsapp-interop [command] [options]

Commands:
  (none)             run the bridge
  migrate            apply pending database migrations and exit
  validate-config    check the config file and exit
  generate-key       write a new key for encryption at rest to the file given with -f
  init               create config.yaml, registration.yaml, the encryption key and the
                     database in the directory given with -d (default: data), keeping files
                     that exist; asks for the homeserver when not given and run in a terminal

Options:
  -c, --config FILE        config file (default: config.yaml)
  -f, --file FILE          registration file (default: registration.yaml beside the config file),
                           or key file for generate-key
  -r, --generate-registration
                           write the appservice registration to -f and exit
  -u, --url URL            with -r: URL at which the homeserver reaches the bridge
                           (default: appservice.url from the config)
  -p, --port PORT          port of the appservice listener (overrides appservice.port)
  -d, --dir DIR            with init: the directory to create the files in (default: data)
      --homeserver-url URL with init: the homeserver's client-server API URL
      --domain DOMAIN      with init: the homeserver's domain (server name in user ids)
      --force              with -r or generate-key: replace an existing file
  -h, --help               show this help
  -v, --version            print the version`;

/** Parses argv (without node and script). Usage errors are ConfigErrors: one line, exit code 1. */
export function parseCommand(argv: readonly string[]): Command {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        config: { type: "string", short: "c", default: "config.yaml" },
        file: { type: "string", short: "f" },
        "generate-registration": { type: "boolean", short: "r", default: false },
        url: { type: "string", short: "u" },
        port: { type: "string", short: "p" },
        dir: { type: "string", short: "d", default: "data" },
        "homeserver-url": { type: "string" },
        domain: { type: "string" },
        force: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
        version: { type: "boolean", short: "v", default: false },
      },
    });
  } catch (err) {
    throw new ConfigError(`${(err as Error).message} (see --help)`);
  }
  const { values, positionals } = parsed;
  if (values.help) return { kind: "help" };
  if (values.version) return { kind: "version" };
  if (positionals.length > 1) {
    throw new ConfigError(`unexpected arguments: ${positionals.slice(1).join(" ")} (see --help)`);
  }
  const sub = positionals[0];
  const config = values.config;
  // Beside the config: `-r` writes and the run reads the same file without a -f on either.
  const registration = values.file ?? path.join(path.dirname(config), "registration.yaml");
  if (values["generate-registration"]) {
    if (sub !== undefined) throw new ConfigError(`-r cannot be combined with ${sub}`);
    return {
      kind: "register",
      config,
      url: values.url,
      file: registration,
      force: values.force,
    };
  }
  switch (sub) {
    case undefined:
      return {
        kind: "run",
        config,
        registration,
        port: values.port === undefined ? undefined : parsePort(values.port),
      };
    case "migrate":
      return { kind: "migrate", config };
    case "validate-config":
      return { kind: "validate-config", config };
    case "generate-key":
      if (values.file === undefined) throw new ConfigError("generate-key needs -f FILE");
      return { kind: "generate-key", file: values.file, force: values.force };
    case "init":
      return {
        kind: "init",
        dir: values.dir,
        homeserverUrl: values["homeserver-url"],
        domain: values.domain,
      };
    default:
      throw new ConfigError(`unknown command: ${sub} (see --help)`);
  }
}

function parsePort(text: string): number {
  const port = Number(text);
  if (!/^[0-9]+$/.test(text) || port < 1 || port > 65535) {
    throw new ConfigError(`-p: expected a port number 1-65535 (got ${JSON.stringify(text)})`);
  }
  return port;
}
