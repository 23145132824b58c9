import { callingCodeLength } from "../util/phone.js";
import type { PhoneNumber } from "../util/ids.js";

/**
 * International format for display (`+49 170 1234567`). One formatter for the whole bridge, so a
 * ghost's name and a contact card show a number alike.
 */
export { formatInternational, isAllowedCountry } from "../util/phone.js";

/** The country calling code of an E.164 number, without `+`. */
export function countryCodeOf(phone: PhoneNumber): string {
  const digits = phone.slice(1);
  return digits.slice(0, callingCodeLength(digits));
}
