import { z } from "zod";

/**
 * The one schema of config.yaml. Types (`Config`), validation (`loadConfig`) and the commented
 * sample file (`config.sample.yaml`, rendered by `renderSample`) all derive from it, so they cannot
 * drift apart. Every key has a description (`describe`) and, where it can have one, a safe default.
 * Objects are strict: an unknown key is an error, since a typo would otherwise be silently ignored.
 */

const PORT = z.number().int().min(1).max(65535);
const LOCALPART = z
  .string()
  .regex(/^[a-z0-9._=\-/]+$/, "a Matrix localpart: lowercase letters, digits and ._=-/");

/**
 * Country calling codes of the EEA: the EU 27 (with the outermost regions that have codes of their
 * own: Réunion and Mayotte 262, Guadeloupe 590, French Guiana 594, Martinique 596), Iceland,
 * Liechtenstein and Norway. Without `+`.
 */
// prettier-ignore
export const EEA_COUNTRY_CODES = [
  "30", "31", "32", "33", "34", "36", "39", "40", "43", "45", "46", "47", "48", "49", "262",
  "351", "352", "353", "354", "356", "357", "358", "359", "370", "371", "372", "385", "386",
  "420", "421", "423", "590", "594", "596",
] as const;

const homeserver = z
  .strictObject({
    url: z
      .url({ protocol: /^https?$/ })
      .describe("Required. Client-server API URL the bridge uses to reach the homeserver.")
      .meta({ example: "http://localhost:8008" }),
    domain: z
      .string()
      .regex(/^[A-Za-z0-9.:[\]-]+$/, "a server name such as example.org")
      .describe("Required. The homeserver's server name: the part after ':' in user ids.")
      .meta({ example: "example.org" }),
  })
  .describe("The Matrix homeserver the bridge belongs to.");

/**
 * A ghost template as the network's description takes it (core/network.ts), with `{id}` for the
 * contact's address. Config files written before the core knew more than one network say
 * `{phone}`: it is read as `{id}`, here only, so that nothing after the schema sees the old name.
 */
const withIdPlaceholder = (template: string): string => template.replace("{phone}", "{id}");

const appservice = z
  .strictObject({
    id: z
      .string()
      .regex(/^[A-Za-z0-9._-]+$/)
      .describe("Application service id written to the registration.")
      .default("whatsapp-interop"),
    url: z
      .url({ protocol: /^https?$/ })
      .describe("URL at which the homeserver reaches the bridge (used by -r when -u is not given).")
      .default("http://localhost:29330"),
    bind_address: z
      .string()
      .describe("Address the bridge's HTTP listener binds to.")
      .default("127.0.0.1"),
    port: PORT.describe("Port of the bridge's HTTP listener (overridden by -p).").default(29330),
    bot: z
      .strictObject({
        localpart: LOCALPART.describe("Localpart of the bridge bot user.").default("whatsappbot"),
        display_name: z
          .string()
          .max(256)
          .describe("Display name of the bridge bot.")
          .default("WhatsApp bridge bot"),
        avatar: z
          .string()
          .regex(/^(mxc:\/\/[^/]+\/[A-Za-z0-9_-]+)?$/, "an mxc:// URI or empty")
          .describe("Avatar of the bridge bot, as an mxc:// URI; empty for none.")
          .default(""),
      })
      .describe("The bridge bot that users talk to.")
      .prefault({}),
    ghost_localpart_template: z
      .string()
      .regex(/^[a-z0-9._=\-/]*\{(?:id|phone)\}[a-z0-9._=\-/]*$/, "a localpart containing {id} once")
      .overwrite(withIdPlaceholder)
      .describe(
        "Localpart of ghost users; {id} is the contact's address as a localpart (for WhatsApp the " +
          "number's digits without '+'). {phone}, its older name, is still accepted.",
      )
      .default("whatsapp_{id}"),
    ghost_display_name_template: z
      .string()
      .regex(/\{(?:id|phone)\}/, "a template containing {id}")
      .overwrite(withIdPlaceholder)
      .describe(
        "Display name of ghost users; {id} is the contact's address as shown (for WhatsApp the " +
          "number in international format; {phone}, its older name, is still accepted). WhatsApp " +
          "never shares names, so the number is all there is.",
      )
      .default("{id} (WhatsApp)"),
  })
  .describe("The application service: how the homeserver and the bridge reach each other.");

const database = z
  .strictObject({
    type: z
      .enum(["sqlite", "postgres"])
      .describe("Database engine: sqlite (default, one file) or postgres (larger installs).")
      .default("sqlite"),
    uri: z
      .string()
      .min(1)
      .describe("sqlite: path of the database file. postgres: a postgres:// connection URI.")
      .default("./data/bridge.db"),
    max_connections: z
      .number()
      .int()
      .min(1)
      .max(100)
      .describe("Connection pool size (postgres only).")
      .default(10),
  })
  .describe(
    "Where the bridge keeps its state: identities, keys, portals, message mappings, queues.",
  );

const interop = z
  .strictObject({
    mode: z
      .enum(["embedded", "external"])
      .describe(
        "embedded: run the built-in gatekeeper simulator in-process (demo, tests; no XMPP server). " +
          "external: connect as an XEP-0114 component to the XMPP server given below.",
      )
      .default("embedded"),
    embedded_data_dir: z
      .string()
      .min(1)
      .describe(
        "embedded mode: where the built-in gatekeeper simulator keeps its state (its WhatsApp " +
          "users, key directory and queues), so that a restart keeps them.",
      )
      .default("./data/simulator"),
    component_host: z
      .string()
      .describe("XMPP server host for the component connection (external mode).")
      .default("127.0.0.1"),
    component_port: PORT.describe("XMPP server component port.").default(5347),
    component_domain: z
      .string()
      .regex(/^[a-z0-9.-]+$/, "a lowercase domain name")
      .describe("The bridge's own XMPP domain, as enlisted with the gatekeeper.")
      .default("matrix.bridge.example"),
    component_secret: z
      .string()
      .describe(
        "Component secret shared with the XMPP server. Required in external mode; " +
          "may be given in the environment variable MWI_COMPONENT_SECRET instead.",
      )
      .default(""),
    provider_id: z
      .string()
      .regex(/^[a-z0-9-]{1,64}$/, "1-64 characters of a-z, 0-9 and -")
      .describe("The provider id the gatekeeper enlisted the bridge under.")
      .default("matrix-bridge-example"),
    gatekeeper_domain: z
      .string()
      .regex(/^[a-z0-9.-]+$/, "a lowercase domain name")
      .describe("The gatekeeper's user domain.")
      .default("wa.example"),
    group_domain: z
      .string()
      .regex(/^[a-z0-9.-]+$/, "a lowercase domain name")
      .describe("The gatekeeper's group domain.")
      .default("g.wa.example"),
    iq_timeout_seconds: z
      .number()
      .int()
      .min(1)
      .max(300)
      .describe("How long to wait for an answer to a request to the gatekeeper.")
      .default(30),
    outbox_deadline_seconds: z
      .number()
      .int()
      .min(60)
      .max(601200)
      .describe(
        "Give up on an unconfirmed outgoing message after this long and report it as failed. At " +
          "most the gatekeeper's de-duplication window minus one hour (601200).",
      )
      .default(601200),
    media_max_bytes: z
      .number()
      .int()
      .min(1)
      .max(104857600)
      .describe(
        "Largest file the bridge transfers in either direction; the gatekeeper's own limits per " +
          "kind apply on top.",
      )
      .default(104857600),
    allow_insecure_media_on_loopback: z
      .boolean()
      .describe("Accept http:// media URLs on loopback addresses (test deployments only).")
      .default(false),
    identity_change: z
      .enum(["warn", "hold"])
      .describe(
        "When a contact's security code changes: warn (keep sending, show a notice) or hold " +
          "(stop sending until the user confirms with the verify command).",
      )
      .default("warn"),
    allowed_country_codes: z
      .array(z.string().regex(/^[1-9][0-9]{0,2}$/, "a country calling code without '+'"))
      .describe(
        "Country calling codes whose numbers may log in. The gatekeeper admits users located in " +
          "the EEA only; the default is the EEA's codes.",
      )
      .default([...EEA_COUNTRY_CODES]),
  })
  .describe("The WhatsApp side: the gatekeeper's interop interface.");

const permissionLevel = z.enum(["none", "user", "admin"]);
const permissions = z
  .record(
    z
      .string()
      .regex(/^(\*|@[^:\s]+:[^\s]+|[A-Za-z0-9.:[\]-]+)$/, "'*', a Matrix user id or a server name"),
    permissionLevel,
  )
  .describe(
    "Who may use the bridge, by Matrix user id, server name or '*': none, user or admin. The most " +
      "specific entry wins (user id, then server name, then '*').",
  )
  .default({ "*": "none", "example.org": "user" });

const logging = z
  .strictObject({
    level: z
      .enum(["fatal", "error", "warn", "info", "debug", "trace"])
      .describe("Log level. Message content, tokens and keys are never logged above debug.")
      .default("info"),
    format: z
      .enum(["text", "json"])
      .describe("text for people, json for log collectors.")
      .default("text"),
  })
  .describe("Logging to stderr.");

const metrics = z
  .strictObject({
    enabled: z.boolean().describe("Serve Prometheus metrics.").default(false),
    bind_address: z.string().describe("Address of the metrics listener.").default("127.0.0.1"),
    port: PORT.describe("Port of the metrics listener.").default(9090),
  })
  .describe("Prometheus metrics.");

const provisioning = z
  .strictObject({
    enabled: z
      .boolean()
      .describe("Serve the provisioning API on the appservice listener (docs/provisioning.md).")
      .default(true),
    prefix: z
      .string()
      .regex(/^\/[A-Za-z0-9_/.-]*[A-Za-z0-9_.-]$/, "a URL path such as /_matrix/provision")
      .describe("Path prefix of the API; its endpoints are under <prefix>/v3/.")
      .default("/_matrix/provision"),
    shared_secret: z
      .string()
      .refine((v) => v === "" || v.length >= 32, "empty, or at least 32 characters")
      .describe(
        "Secret that lets an integration act for any user (with ?user_id=). Empty: only users' " +
          "own Matrix access tokens are accepted. May be given in MWI_PROVISIONING_SECRET instead.",
      )
      .default(""),
  })
  .describe(
    "The provisioning API (mautrix-style /_matrix/provision/v3): log in, log out and start chats " +
      "from a client or an integration instead of the bot.",
  );

const limits = z
  .strictObject({
    messages_per_minute: z
      .number()
      .int()
      .min(1)
      .max(1_000_000)
      .describe(
        "Messages one Matrix user may send to WhatsApp per minute; beyond it they are refused with a notice.",
      )
      .default(60),
    new_chats_per_hour: z
      .number()
      .int()
      .min(1)
      .max(1_000_000)
      .describe("New conversations (start-chat, create_dm) one Matrix user may open per hour.")
      .default(20),
    message_requests_per_hour: z
      .number()
      .int()
      .min(1)
      .max(1_000_000)
      .describe(
        "Message requests from unknown numbers shown to one user per hour. Beyond it they are " +
          "held (kept, unacknowledged) and shown once the hour allows; the user is told.",
      )
      .default(20),
  })
  .describe("Abuse controls per Matrix user (docs/operations.md).");

const matrixEncryption = z
  .strictObject({
    allow: z
      .boolean()
      .describe(
        "Whether the bridge takes part in encrypted portals at all. False: a portal whose user " +
          "turns on encryption gets a notice that the bridge cannot read it.",
      )
      .default(true),
    default: z
      .boolean()
      .describe("New portals are created end-to-bridge encrypted (Megolm). Needs allow.")
      .default(true),
    require: z
      .boolean()
      .describe(
        "Plaintext messages in portals are refused with a notice: only encrypted ones are bridged.",
      )
      .default(false),
    delete_keys: z
      .boolean()
      .describe(
        "Forget a Matrix message's Megolm key once it is bridged (like mautrix's delete_keys): " +
          "edits and replies to it can then no longer be decrypted by the bridge.",
      )
      .default(false),
    share_keys_with: z
      .enum(["all", "cross-signed"])
      .describe(
        "Which devices of the room's members receive the bridge's room keys: all of them (the " +
          "portal owner's unverified devices included), or only devices their owner cross-signed.",
      )
      .default("all"),
    decrypt_wait_ms: z
      .number()
      .int()
      .min(0)
      .max(600_000)
      .describe(
        "How long an incoming encrypted message waits for its room key before the user is told " +
          "it could not be decrypted.",
      )
      .default(10_000),
    receive: z
      .enum(["push", "sync"])
      .describe(
        "How the bridge's devices get to-device events, device lists and key counts: pushed in " +
          "appservice transactions (MSC2409/MSC3202, Synapse experimental_features), or by /sync " +
          "per device where the homeserver does not push them.",
      )
      .default("push"),
    idle_device_ms: z
      .number()
      .int()
      .min(1000)
      .describe("A ghost device's crypto machine unused this long is unloaded from memory.")
      .default(10 * 60 * 1000),
  })
  .refine((v) => v.allow || (!v.default && !v.require), {
    message: "default and require need allow: true",
  })
  .describe(
    "End-to-bridge encryption of portals on the Matrix side (docs/matrix-encryption.md). " +
      "Needs m.login.application_service on the homeserver.",
  );

const encryption = z
  .strictObject({
    key_file: z
      .string()
      .describe(
        "File holding the 32-byte key that encrypts private keys at rest (create it with " +
          "`matrix-whatsapp-interop generate-key -f <file>`). Ignored when key_env is set.",
      )
      .default("./data/encryption.key"),
    key_env: z
      .string()
      .regex(/^([A-Z_][A-Z0-9_]*)?$/, "an environment variable name or empty")
      .describe("Name of an environment variable holding the key (base64) instead of the file.")
      .default(""),
  })
  .describe("Encryption at rest of every private key and Signal session the bridge stores.");

const simulator = z
  .strictObject({
    web: z
      .boolean()
      .describe(
        "embedded mode: serve on 127.0.0.1 a page to play the WhatsApp side (create simulated " +
          "WhatsApp users, chat with bridge users, read login verification codes) and the " +
          "simulator's admin API (docs/simulator.md), behind a random token logged at start.",
      )
      .default(false),
    port: PORT.describe("Port of the page and admin API on 127.0.0.1.").default(29331),
  })
  .describe("The built-in gatekeeper simulator of embedded mode (trying the bridge out).");

export const configSchema = z
  .strictObject({
    homeserver,
    appservice: appservice.prefault({}),
    database: database.prefault({}),
    interop: interop.prefault({}),
    permissions,
    logging: logging.prefault({}),
    metrics: metrics.prefault({}),
    provisioning: provisioning.prefault({}),
    limits: limits.prefault({}),
    encryption: encryption.prefault({}),
    simulator: simulator.prefault({}),
    matrix_encryption: matrixEncryption.prefault({}),
  })
  .describe("matrix-whatsapp-interop configuration.");

export type Config = z.output<typeof configSchema>;
export type MatrixEncryptionConfig = Config["matrix_encryption"];
export type PermissionLevel = z.infer<typeof permissionLevel>;
