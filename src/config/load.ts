import { readFile } from "node:fs/promises";
import { CORE_SCHEMA, YAMLException, load as loadYaml } from "js-yaml";
import type { z } from "zod";
import { ConfigError, describeError } from "../util/errors.js";
import { configSchema, type Config } from "./schema.js";

/**
 * Reads and validates config.yaml. Every problem becomes one line `<dotted.key>: <what was
 * expected>`; a ConfigError carries them all, so the operator fixes the file in one pass.
 */
export async function loadConfig(
  file: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Config> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new ConfigError(`cannot read the config file ${file}: ${describeError(err)}`);
  }
  return parseConfig(text, file, env);
}

export function parseConfig(text: string, file: string, env: NodeJS.ProcessEnv = {}): Config {
  // An empty file is an empty mapping: every key takes its default, and required ones are named.
  if (text.trim() === "") return validateConfig({}, file, env);
  let raw: unknown;
  try {
    raw = loadYaml(text, { schema: CORE_SCHEMA, filename: file });
  } catch (err) {
    const reason = err instanceof YAMLException ? err.message.split("\n")[0] : describeError(err);
    throw new ConfigError(`${file} is not valid YAML: ${reason}`);
  }
  return validateConfig(raw ?? {}, file, env);
}

export function validateConfig(raw: unknown, file: string, env: NodeJS.ProcessEnv = {}): Config {
  const result = configSchema.safeParse(raw, { reportInput: true });
  if (!result.success) {
    const problems = result.error.issues.flatMap(formatIssue);
    throw new ConfigError(
      `${file} has ${problems.length} problem${problems.length === 1 ? "" : "s"}`,
      problems,
    );
  }
  const config = result.data;
  const secretFromEnv = env.MWI_COMPONENT_SECRET;
  if (secretFromEnv !== undefined && secretFromEnv !== "") {
    config.interop.component_secret = secretFromEnv;
  }
  const provisioningSecret = env.MWI_PROVISIONING_SECRET;
  if (provisioningSecret !== undefined && provisioningSecret !== "") {
    config.provisioning.shared_secret = provisioningSecret;
  }
  const problems = crossChecks(config);
  if (problems.length > 0) {
    throw new ConfigError(
      `${file} has ${problems.length} problem${problems.length === 1 ? "" : "s"}`,
      problems,
    );
  }
  return config;
}

/** Rules that span several keys, which the per-key schema cannot express. */
function crossChecks(config: Config): string[] {
  const problems: string[] = [];
  if (config.interop.mode === "external" && config.interop.component_secret === "") {
    problems.push(
      "interop.component_secret: required when interop.mode is external (or set MWI_COMPONENT_SECRET)",
    );
  }
  const secret = config.provisioning.shared_secret;
  if (secret !== "" && secret.length < 32) {
    problems.push("provisioning.shared_secret: at least 32 characters (MWI_PROVISIONING_SECRET)");
  }
  if (config.database.type === "postgres" && !/^postgres(ql)?:\/\//.test(config.database.uri)) {
    problems.push("database.uri: expected a postgres:// URI when database.type is postgres");
  }
  if (config.database.type === "sqlite" && /^[a-z]+:\/\//.test(config.database.uri)) {
    problems.push("database.uri: expected a file path when database.type is sqlite");
  }
  if (config.interop.gatekeeper_domain === config.interop.component_domain) {
    problems.push("interop.component_domain: must differ from interop.gatekeeper_domain");
  }
  return problems;
}

function formatIssue(issue: z.core.$ZodIssue): string[] {
  const at = formatPath(issue.path);
  switch (issue.code) {
    case "unrecognized_keys":
      return issue.keys.map((key) => `${joinPath(at, key)}: unknown key`);
    case "invalid_type":
      return [
        `${at || "(top level)"}: ${issue.input === undefined ? "required, " : ""}expected ${describeExpected(issue)}`,
      ];
    default:
      return [`${at || "(top level)"}: ${issue.message}`];
  }
}

function describeExpected(issue: z.core.$ZodIssueInvalidType): string {
  const got = issue.input === undefined ? "" : ` (got ${describeValue(issue.input)})`;
  const expected = issue.expected === "object" ? "a mapping" : `a ${issue.expected}`;
  return `${expected}${got}`;
}

function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  return `${typeof value} ${JSON.stringify(value)}`;
}

function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((acc, part) => joinPath(acc, part), "");
}

function joinPath(acc: string, part: PropertyKey): string {
  if (typeof part === "number") return `${acc}[${part}]`;
  const key = String(part);
  const plain = /^[A-Za-z0-9_-]+$/.test(key) ? key : JSON.stringify(key);
  return acc === "" ? plain : `${acc}.${plain}`;
}
