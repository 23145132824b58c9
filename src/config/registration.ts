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
