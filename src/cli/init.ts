import { access, mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { renderSample } from "../config/sample.js";
import { loadConfig } from "../config/load.js";
import { generateKeyFile } from "./generate-key.js";
import { buildRegistration, generateTokens } from "./registration.js";
import { writeRegistrationFile } from "./registration-file.js";

export interface InitResult {
  created: string[];
  kept: string[];
}

/**
 * First run: writes what the bridge needs to start on the embedded default (SQLite under the
 * directory, built-in gatekeeper simulator) and leaves every existing file alone, so running it
 * again is harmless and never replaces tokens or keys.
 */
export async function initDirectory(dir: string): Promise<InitResult> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const result: InitResult = { created: [], kept: [] };
  const configFile = path.join(dir, "config.yaml");
  if (await exists(configFile)) {
    result.kept.push(configFile);
  } else {
    await writeFile(configFile, renderSample(), { mode: 0o600, flag: "wx" });
    result.created.push(configFile);
  }
  const config = await loadConfig(configFile);
  const registrationFile = path.join(dir, "registration.yaml");
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
  return result;
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}
