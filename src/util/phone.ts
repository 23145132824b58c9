import { isPhoneNumber, type ContactAddress, type PhoneNumber } from "./ids.js";

/**
 * Readable international form of an E.164 number, for display names and contact cards.
 *
 * What it does: splits off the country calling code (ITU-T E.164 assigns 1-, 2- and 3-digit codes
 * without overlap, so the prefix alone decides its length), groups North American numbers as
 * 3-3-4, and otherwise separates the first three digits of the national number from the rest
 * (`+49 170 1234567`).
 *
 * What it does not do: it knows no national numbering plans, so area codes and mobile prefixes of
 * other lengths are not found (`+44 7911 123456` reads `+44 791 1123456`), it checks neither that
 * a number is assigned nor its length per country, and it never adds trunk prefixes. A full
 * libphonenumber dataset would; this is display sugar, never parsed back.
 */

/** Codes of one digit: +1 (North American Numbering Plan) and +7 (Russia, Kazakhstan). */
const ONE_DIGIT = new Set(["1", "7"]);

/** Every assigned two-digit code; any other code is three digits. */
const TWO_DIGIT = new Set([
  "20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45", "46", "47",
  "48", "49", "51", "52", "53", "54", "55", "56", "57", "58", "60", "61", "62", "63", "64", "65",
  "66", "81", "82", "84", "86", "90", "91", "92", "93", "94", "95", "98",
]); // prettier-ignore

export function callingCodeLength(digits: string): 1 | 2 | 3 {
  if (ONE_DIGIT.has(digits.slice(0, 1))) return 1;
  if (TWO_DIGIT.has(digits.slice(0, 2))) return 2;
  return 3;
}

export function formatInternational(phone: PhoneNumber): string {
  const digits = phone.slice(1);
  const cc = digits.slice(0, callingCodeLength(digits));
  const rest = digits.slice(cc.length);
  if (cc === "1" && rest.length === 10) {
    return `+1 ${rest.slice(0, 3)} ${rest.slice(3, 6)} ${rest.slice(6)}`;
  }
  if (rest.length <= 6) return `+${cc} ${rest}`;
  return `+${cc} ${rest.slice(0, 3)} ${rest.slice(3)}`;
}

/** Whether a number may log in under the configured country codes (PROTOCOL.md §1: EEA only). */
export function isAllowedCountry(phone: PhoneNumber, allowed: readonly string[]): boolean {
  // Country codes are prefix-free (ITU-T E.164), so a configured code can only be the number's own.
  return allowed.some((code) => phone.startsWith(`+${code}`));
}

/**
 * The identifier kind (core/network.ts IdentifierKind, which it satisfies structurally: util
 * imports no layer above it) of networks whose users are phone numbers: E.164 typed with `+`,
 * shown in international format, the digits without `+` in ghost localparts.
 */
export const phoneIdentifier = {
  noun: "number",
  argument: "+number",
  example: "+491701234567",
  uriScheme: "tel",
  parse: (input: string): ContactAddress | undefined => (isPhoneNumber(input) ? input : undefined),
  format: (address: ContactAddress): string =>
    isPhoneNumber(address) ? formatInternational(address) : address,
  toLocalpart: (address: ContactAddress): string => address.slice(1),
  localpartPattern: "[1-9][0-9]{7,14}",
  fromLocalpart: (localpart: string): ContactAddress | undefined => {
    const phone = `+${localpart}`;
    return /^[0-9]+$/.test(localpart) && isPhoneNumber(phone) ? phone : undefined;
  },
  thirdPartyField: {
    name: "phone",
    regexp: "^\\+?[0-9 ()./-]{8,24}$",
    placeholder: "+49 151 12345678",
    parse: (text: string): ContactAddress | undefined => parsePhoneField(text),
  },
};

/**
 * A number as people write it: `+49 151 12345678`, `+49 (151) 123-456-78`, `0049151...`, or the
 * digits with the country code. National forms without the country code cannot be told apart.
 */
export function parsePhoneField(text: string): PhoneNumber | undefined {
  const compact = text.trim().replace(/[\s()./-]/g, "");
  const international = compact.startsWith("00") ? `+${compact.slice(2)}` : compact;
  const withPlus = international.startsWith("+") ? international : `+${international}`;
  return isPhoneNumber(withPlus) ? withPlus : undefined;
}
