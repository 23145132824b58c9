import type { ContactAddress } from "../util/ids.js";
import {
  hasContactAddresses,
  isSelfIdentified,
  type NetworkConnector,
  type NetworkLogin,
  type RemoteUserId,
} from "./network.js";

/**
 * The address users type and read for a contact: the connector's when it names addresses
 * (ContactAddresses), otherwise the contact id itself when the network's identifier kind parses
 * it. Undefined when the contact has no address of the network's kind (interop: a user of
 * another provider, who has no phone number).
 */
export function addressOfContact(
  connector: NetworkConnector,
  contact: RemoteUserId,
): ContactAddress | undefined {
  if (hasContactAddresses(connector)) return connector.addressOf(contact);
  return connector.describe().identifier.parse(contact);
}

/** The login's own id on the network (SelfIdentified), or its Matrix id for the connector to map. */
export function selfIdOf(login: NetworkLogin): RemoteUserId {
  return isSelfIdentified(login) ? login.self : (login.user as string as RemoteUserId);
}
