import { randomBytes } from "node:crypto";
import type { Config } from "../config/schema.js";
import type { NetworkDescription } from "../core/network.js";
import { configuredNetwork } from "./network.js";

// The type lives in config/ (the bridge and the Matrix side read it); -r builds it here.
import type { Registration } from "../config/registration.js";
export type { Registration } from "../config/registration.js";

interface RegistrationTokens {
  asToken: string;
  hsToken: string;
}

/** 256 random bits, URL-safe: tokens travel in headers and query strings. */
export function generateTokens(): RegistrationTokens {
  return {
    asToken: randomBytes(32).toString("base64url"),
    hsToken: randomBytes(32).toString("base64url"),
  };
}

const escapeRegex = (text: string): string => text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");

/** What the registration needs of the network: its id and how its ghosts are named. */
type GhostNamespace = Pick<NetworkDescription, "id" | "ghostLocalpartTemplate"> & {
  readonly identifier: Pick<NetworkDescription["identifier"], "localpartPattern">;
};

/**
 * Builds the registration from the config alone (plus the URL and tokens, and the network the
 * config runs): a pure function, so that what `-r` writes is unit-tested. The user namespace is
 * exclusive and covers exactly the bot and the ghosts, so no other user on the homeserver can take
 * a ghost's name and the homeserver routes their events to the bridge. Ghosts are the network's
 * template with `{id}` either an address's localpart form (`identifier.localpartPattern`,
 * interop: the number's digits) or `_` and the escaped remote id of a group member without an
 * address (core/ghosts.ts `mxidForRemote`: [a-z0-9.-] kept, every other byte `=xx`).
 */
export function buildRegistration(
  config: Config,
  url: string,
  tokens: RegistrationTokens,
  network: GhostNamespace = configuredNetwork(config),
): Registration {
  const domain = escapeRegex(config.homeserver.domain);
  const [before, after] = network.ghostLocalpartTemplate.split("{id}") as [string, string];
  return {
    id: config.appservice.id,
    url,
    as_token: tokens.asToken,
    hs_token: tokens.hsToken,
    sender_localpart: config.appservice.bot.localpart,
    rate_limited: false,
    namespaces: {
      users: [
        {
          exclusive: true,
          regex: `^@${escapeRegex(config.appservice.bot.localpart)}:${domain}$`,
        },
        {
          exclusive: true,
          regex: `^@${escapeRegex(before)}(?:${network.identifier.localpartPattern}|_[a-z0-9.=-]+)${escapeRegex(after)}:${domain}$`,
        },
      ],
      aliases: [],
      rooms: [],
    },
    protocols: [network.id],
    receive_ephemeral: true,
    "de.sorunome.msc2409.push_ephemeral": true,
    ...(config.matrix_encryption.allow
      ? { "org.matrix.msc3202": true, "org.matrix.msc2409.push_to_device": true }
      : {}),
  };
}
