import { randomBytes } from "node:crypto";
import type { Config } from "../config/schema.js";

/** The application service registration, as the Matrix application service API defines it. */
export interface Registration {
  id: string;
  url: string;
  as_token: string;
  hs_token: string;
  sender_localpart: string;
  rate_limited: boolean;
  namespaces: {
    users: { exclusive: boolean; regex: string }[];
    aliases: { exclusive: boolean; regex: string }[];
    rooms: { exclusive: boolean; regex: string }[];
  };
  protocols: string[];
  receive_ephemeral: boolean;
  /** Synapse before the stable name of MSC2409 reads this key instead of receive_ephemeral. */
  "de.sorunome.msc2409.push_ephemeral": boolean;
  /**
   * Asks for device lists, one-time-key counts and fallback key types of the bridge's devices
   * in transactions (MSC3202), and to-device events (MSC2409, with push_ephemeral): what
   * end-to-bridge encryption needs. Present only when matrix_encryption.allow is on.
   */
  "org.matrix.msc3202"?: boolean;
  /** The later unstable name of the MSC2409 to-device push. */
  "org.matrix.msc2409.push_to_device"?: boolean;
}

export interface RegistrationTokens {
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

/**
 * Builds the registration from the config alone (plus the URL and tokens): a pure function, so
 * that what `-r` writes is unit-tested. The user namespace is exclusive and covers exactly the bot
 * and the ghosts (the template with {phone} as digits), so no other user on the homeserver can
 * take a ghost's name and the homeserver routes their events to the bridge.
 */
export function buildRegistration(
  config: Config,
  url: string,
  tokens: RegistrationTokens,
): Registration {
  const domain = escapeRegex(config.homeserver.domain);
  const [before, after] = config.appservice.ghost_localpart_template.split("{phone}") as [
    string,
    string,
  ];
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
          regex: `^@${escapeRegex(before)}[1-9][0-9]{7,14}${escapeRegex(after)}:${domain}$`,
        },
      ],
      aliases: [],
      rooms: [],
    },
    protocols: ["whatsapp"],
    receive_ephemeral: true,
    "de.sorunome.msc2409.push_ephemeral": true,
    ...(config.matrix_encryption.allow
      ? { "org.matrix.msc3202": true, "org.matrix.msc2409.push_to_device": true }
      : {}),
  };
}
