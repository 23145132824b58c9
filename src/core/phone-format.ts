import { callingCodeLength } from "../util/phone.js";
import type { PhoneNumber } from "../util/ids.js";

/**
 * International format for display (`+49 170 1234567`). One formatter for the whole bridge, so a
 * ghost's name and a contact card show a number alike.
 */
export { formatInternational } from "../util/phone.js";

/** The country calling code of an E.164 number, without `+`. */
export function countryCodeOf(phone: PhoneNumber): string {
  const digits = phone.slice(1);
  return digits.slice(0, callingCodeLength(digits));
}

/** Whether a number may log in under the configured country codes (PROTOCOL.md §1: EEA only). */
export function isAllowedCountry(phone: PhoneNumber, allowed: readonly string[]): boolean {
  // Country codes are prefix-free (ITU-T E.164), so a configured code can only be the number's own.
  return allowed.some((code) => phone.startsWith(`+${code}`));
}
