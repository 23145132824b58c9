import type { PhoneNumber } from "../util/ids.js";
import { isPhoneNumber } from "../util/ids.js";
import type { NetworkConnector, NetworkLogin, RemoteUserId } from "./network.js";

/**
 * How a connector names contacts by phone number without asking the network. network.ts has no
 * such method yet (see docs/core.md); a connector that offers it is used, otherwise the core falls
 * back to the gatekeeper's addressing, where a contact's id starts with the number's digits
 * (PROTOCOL.md §5.1), and to the contacts it has already seen.
 */
export interface ContactDirectory {
  /** The phone number of a contact, or undefined if the id is not a phone-number contact. */
  contactPhone(contact: RemoteUserId): PhoneNumber | undefined;
  /** The contact id of a phone number. Pure: contacts nobody, counts against no quota. */
  contactForPhone(phone: PhoneNumber): RemoteUserId;
}

export const isContactDirectory = (c: NetworkConnector): c is NetworkConnector & ContactDirectory =>
  "contactPhone" in c && "contactForPhone" in c;

const PHONE_ID = /^([1-9][0-9]{7,14})@/;

export function phoneOfContact(
  connector: NetworkConnector,
  contact: RemoteUserId,
): PhoneNumber | undefined {
  if (isContactDirectory(connector)) return connector.contactPhone(contact);
  const digits = PHONE_ID.exec(contact)?.[1];
  const phone = digits === undefined ? undefined : `+${digits}`;
  return phone !== undefined && isPhoneNumber(phone) ? phone : undefined;
}

/**
 * A login that names its own user on the network (interop: the provider user's bare JID), so
 * references to the user's own messages carry the right author. Not in network.ts yet (see
 * docs/core.md); without it the core uses the Matrix user id, which the connector can map.
 */
export interface SelfIdentified {
  readonly self: RemoteUserId;
}

export function selfIdOf(login: NetworkLogin): RemoteUserId {
  return "self" in login
    ? (login as NetworkLogin & SelfIdentified).self
    : (login.user as string as RemoteUserId);
}
