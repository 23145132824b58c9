import type { Config } from "../config/schema.js";
import { ConfigError } from "../util/errors.js";
import { buildRegistration, type Registration } from "./registration.js";

/**
 * Problems that make a registration unusable with this config: the homeserver routes users by
 * the registration's namespaces and the bridge acts as `sender_localpart`, so a registration
 * written for another domain, bot or appservice id (an old `-r`, the wrong file) would leave the
 * bridge deaf. Throws one ConfigError naming both files and how to make a matching one.
 */
export function checkRegistrationMatches(
  config: Config,
  configFile: string,
  registration: Registration,
  registrationFile: string,
): void {
  const expected = buildRegistration(config, registration.url, {
    asToken: registration.as_token,
    hsToken: registration.hs_token,
  });
  const problems: string[] = [];
  if (registration.id !== expected.id) {
    problems.push(`id: ${registration.id}, appservice.id is ${expected.id}`);
  }
  if (registration.sender_localpart !== expected.sender_localpart) {
    problems.push(
      `sender_localpart: ${registration.sender_localpart}, appservice.bot.localpart is ${expected.sender_localpart}`,
    );
  }
  const claimed = new Set(registration.namespaces.users.map((n) => `${n.regex}|${n.exclusive}`));
  const missing = expected.namespaces.users.filter(
    (n) => !claimed.has(`${n.regex}|${n.exclusive}`),
  );
  if (missing.length > 0) {
    problems.push(
      `namespaces.users: does not claim ${missing.map((n) => n.regex).join(" and ")} exclusively ` +
        `(homeserver.domain is ${config.homeserver.domain})`,
    );
  }
  if (registration.as_token === registration.hs_token) {
    problems.push("as_token and hs_token: must differ");
  }
  if (problems.length === 0) return;
  throw new ConfigError(
    `${registrationFile} does not match ${configFile}; write a new one with ` +
      `\`matrix-whatsapp-interop -r -c ${configFile} -f ${registrationFile} --force\` and give it to the homeserver`,
    problems,
  );
}
