import { access, mkdir } from "node:fs/promises";
import path from "node:path";
import { renderSample } from "../config/sample.js";
import { loadConfig } from "../config/load.js";
import { ConfigError } from "../util/errors.js";
import { generateKeyFile } from "./generate-key.js";
import { writePrivateFile } from "./private-file.js";
import { buildRegistration, generateTokens } from "./registration.js";
import { writeRegistrationFile } from "./registration-file.js";

interface InitResult {
  created: string[];
  kept: string[];
}

/** What `init` needs to know about the homeserver; flags give it, or the operator is asked. */
interface InitAnswers {
  homeserverUrl: string | undefined;
  domain: string | undefined;
}

/** Asks one question on the terminal; `suggestion` is taken when the answer is empty. */
export type Ask = (question: string, suggestion?: string) => Promise<string>;

/** The files init writes, by name inside the directory: the README and `npm start` use these. */
export const INIT_FILES = {
  config: "config.yaml",
  registration: "registration.yaml",
  key: "encryption.key",
  database: "bridge.db",
  simulator: "simulator",
} as const;

/**
 * First run: writes what the bridge needs to start (config for the given homeserver, registration
 * for it, the key, an empty SQLite database, all readable by the owner only) under `dir`, and
 * leaves every existing file alone, so running it again is harmless and never replaces tokens or
 * keys. Paths in the config point under `dir` as given (relative to where the bridge runs, like
 * every relative path of the config).
 *
 * The homeserver URL and domain come from `answers`; what is missing is asked through `ask` (a
 * terminal), and without one init stops with a line naming the flags.
 */
export async function initDirectory(
  dir: string,
  answers: InitAnswers = { homeserverUrl: undefined, domain: undefined },
  ask?: Ask,
): Promise<InitResult> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const result: InitResult = { created: [], kept: [] };
  const file = (name: string) => path.join(dir, name);
  const configFile = file(INIT_FILES.config);
  if (await exists(configFile)) {
    result.kept.push(configFile);
  } else {
    const homeserver = await homeserverOf(answers, ask);
    await writePrivateFile(configFile, initialConfig(dir, homeserver), false);
    result.created.push(configFile);
  }
  const config = await loadConfig(configFile);
  const registrationFile = file(INIT_FILES.registration);
  if (await exists(registrationFile)) {
    result.kept.push(registrationFile);
  } else {
    const registration = buildRegistration(config, config.appservice.url, generateTokens());
    await writeRegistrationFile(registrationFile, registration, false);
    result.created.push(registrationFile);
  }
  if (config.encryption.key_env === "") {
    const keyFile = config.encryption.key_file;
    if (await exists(keyFile)) {
      result.kept.push(keyFile);
    } else {
      await generateKeyFile(keyFile, false);
      result.created.push(keyFile);
    }
  }
  if (config.database.type === "sqlite") {
    // Created empty here so that it is private from the start: SQLite gives its -wal and -shm
    // files the mode of the database file.
    const dbFile = config.database.uri;
    if (await exists(dbFile)) {
      result.kept.push(dbFile);
    } else {
      await mkdir(path.dirname(path.resolve(dbFile)), { recursive: true, mode: 0o700 });
      await writePrivateFile(dbFile, "", false);
      result.created.push(dbFile);
    }
  }
  return result;
}

interface Homeserver {
  url: string;
  domain: string;
}

async function homeserverOf(answers: InitAnswers, ask: Ask | undefined): Promise<Homeserver> {
  let url = answers.homeserverUrl;
  let domain = answers.domain;
  if ((url === undefined || domain === undefined) && ask === undefined) {
    throw new ConfigError(
      "init needs the homeserver: pass --homeserver-url URL and --domain DOMAIN " +
        "(or run it in a terminal to be asked)",
    );
  }
  if (url === undefined && ask !== undefined) {
    url = await ask("Homeserver URL (where the bridge reaches its client-server API)");
  }
  const parsedUrl = checkUrl(url ?? "");
  if (domain === undefined && ask !== undefined) {
    domain = await ask("Homeserver domain (the part after ':' in user ids)", parsedUrl.hostname);
  }
  return { url: url ?? "", domain: checkDomain(domain ?? "") };
}

function checkUrl(url: string): URL {
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  if (parsed === undefined || !/^https?:$/.test(parsed.protocol)) {
    throw new ConfigError(
      `homeserver URL: expected http(s)://host[:port] (got ${JSON.stringify(url)})`,
    );
  }
  return parsed;
}

function checkDomain(domain: string): string {
  if (!/^[A-Za-z0-9.-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$/.test(domain)) {
    throw new ConfigError(
      `homeserver domain: expected a server name such as example.org (got ${JSON.stringify(domain)})`,
    );
  }
  return domain;
}

/**
 * The sample config with the homeserver filled in, the homeserver's own users allowed, and the
 * files under `dir`. Edited line by line so that every comment of the sample stays.
 */
function initialConfig(dir: string, homeserver: Homeserver): string {
  const quote = (value: string) => JSON.stringify(value);
  const under = (name: string) => quote(path.join(dir, name));
  const replacements: [RegExp, string][] = [
    [/^ {2}url: http:\/\/localhost:8008$/m, `  url: ${quote(homeserver.url)}`],
    [/^ {2}domain: example\.org$/m, `  domain: ${quote(homeserver.domain)}`],
    [/^ {2}uri: \.\/data\/bridge\.db$/m, `  uri: ${under(INIT_FILES.database)}`],
    [
      /^ {2}embedded_data_dir: \.\/data\/simulator$/m,
      `  embedded_data_dir: ${under(INIT_FILES.simulator)}`,
    ],
    [/^ {2}key_file: \.\/data\/encryption\.key$/m, `  key_file: ${under(INIT_FILES.key)}`],
    [/^ {2}example\.org: user$/m, `  ${quote(homeserver.domain)}: user`],
    // The first run is embedded mode, for trying the bridge: its simulator page is how the admin
    // plays the WhatsApp side (127.0.0.1 only, behind a token logged at start).
    [/^ {2}web: false$/m, "  web: true"],
  ];
  let text = renderSample();
  for (const [line, replacement] of replacements) {
    // The sample is generated from the schema; a changed default must not silently leave it.
    if (!line.test(text)) throw new Error(`config sample has no line ${line.source}`);
    text = text.replace(line, replacement);
  }
  return text;
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}
