import { EEA_COUNTRY_CODES, type Config } from "../../config/schema.js";
import type { NetworkDescription } from "../../core/network.js";
import { isAllowedCountry, phoneIdentifier } from "../../util/phone.js";
import { isPhoneNumber } from "../../util/ids.js";

/** What the interop description is built from: the operator's settings for this network. */
export interface InteropDescriptionSettings {
  /** The provider name contacts see next to a user's number (`interop.provider_id`). */
  readonly providerId: string;
  /** `appservice.ghost_localpart_template`, whose `{id}` is the number's digits. */
  readonly ghostLocalpartTemplate: string;
  /** `appservice.ghost_display_name_template`, whose `{id}` is the number, formatted. */
  readonly ghostDisplayNameTemplate: string;
  /** `interop.allowed_country_codes`: whose numbers may log in. */
  readonly allowedCountryCodes: readonly string[];
  /** `interop.identity_change`: whether sending stops after a contact's identity changed. */
  readonly identityChange: "warn" | "hold";
}

/** The settings of a default config (tests that build a connector without one). */
export const DEFAULT_INTEROP_SETTINGS: InteropDescriptionSettings = {
  providerId: "matrix-bridge-example",
  ghostLocalpartTemplate: "whatsapp_{id}",
  ghostDisplayNameTemplate: "{id} (WhatsApp)",
  allowedCountryCodes: [...EEA_COUNTRY_CODES],
  identityChange: "warn",
};

export function interopDescriptionSettings(config: Config): InteropDescriptionSettings {
  return {
    providerId: config.interop.provider_id,
    ghostLocalpartTemplate: config.appservice.ghost_localpart_template,
    ghostDisplayNameTemplate: config.appservice.ghost_display_name_template,
    allowedCountryCodes: config.interop.allowed_country_codes,
    identityChange: config.interop.identity_change,
  };
}

/**
 * WhatsApp's interop network as the core sees it: phone numbers as addresses, `!wa` in portals,
 * and the security points PROTOCOL.md §19 says a user must read before opting in.
 */
export function interopDescription(settings: InteropDescriptionSettings): NetworkDescription {
  const { providerId, allowedCountryCodes } = settings;
  return {
    id: "whatsapp",
    displayName: "WhatsApp",
    commandPrefix: "!wa",
    // The config's templates (`{phone}` of older files read as `{id}` by the schema).
    ghostLocalpartTemplate: settings.ghostLocalpartTemplate,
    ghostDisplayNameTemplate: settings.ghostDisplayNameTemplate,
    identifier: phoneIdentifier,
    unverifiedHandles: true,
    securityNotes: [
      "End-to-end encryption ends at this bridge. WhatsApp messages are encrypted between your " +
        "contact's phone and the bridge; the bridge decrypts them to post them to Matrix and " +
        "re-encrypts what you send. Whoever runs this bridge could read your WhatsApp messages, " +
        "and the bridge keeps your encryption keys on its server (encrypted at rest).",
      "WhatsApp's gatekeeper sees metadata, not content: who writes to whom (phone numbers and " +
        "your bridge identity), when, message sizes and media kinds, delivery receipts, read " +
        "markers and typing (you can turn those two off with `settings`), your block list, and " +
        "which numbers you look up. It never sees what you write, file names, captions or reactions.",
      `Your contacts see your phone number: a verified login is shown to them as "<your number> · ${providerId}". ` +
        `An unverified username identity is shown as "<username> · ${providerId} · Unverified" and cannot be found by number.`,
      "Only WhatsApp users who opted in to chats with third-party apps can be reached, and your first " +
        "message to someone new is a message request they must accept before they can reply.",
      "Blocking (`block`) happens at WhatsApp's gatekeeper and works across apps. Reporting " +
        "(`report`) sends WhatsApp the contact's number and, only if you choose, copies of up to " +
        "5 of their latest messages; WhatsApp cannot verify those copies cryptographically.",
      "WhatsApp admits third-party users in the European Economic Area only.",
    ],
    reachableContacts: {
      who: "who allow chats with third-party apps",
      whyNot: "its owner has not allowed chats with third-party apps",
    },
    identityChangeCauses: "they reinstall WhatsApp or switch phones",
    // §16.2: a report carries at most 5 of the reported user's messages.
    reportDisclosureLimit: 5,
    refuseLoginValue(field, value) {
      if (field.id !== "phone" || !isPhoneNumber(value)) return undefined;
      if (isAllowedCountry(value, allowedCountryCodes)) return undefined;
      return (
        `Numbers from ${value.slice(0, 4)}… cannot log in here: WhatsApp admits third-party ` +
        "chat users in the European Economic Area only, and this bridge allows the country " +
        `codes ${allowedCountryCodes.map((c) => `+${c}`).join(", ")}.`
      );
    },
  };
}
