/** The Signal-protocol layer at the bridge boundary (PROTOCOL.md §11, §12, §13.3, §17). */
export * from "./errors.js";
export * from "./types.js";
export { SignalCrypto, DeviceCrypto, type SignalCryptoOptions } from "./signal-crypto.js";
export { SessionCipher, type EncryptOptions } from "./session-cipher.js";
export { GroupCipher, type SenderKeyDistribution } from "./group-cipher.js";
export {
  RetryLedger,
  MAX_RETRY_COUNT,
  type RetryAuthorization,
  type RetryRefusal,
} from "./retry.js";
export { IdentityBook } from "./identity.js";
export {
  DeviceListCache,
  type DeviceList,
  type DeviceListEntry,
  type DeviceChange,
  type DevicesChangedNotice,
  type DeviceListUpdate,
} from "./device-lists.js";
export { KEY_RETENTION_MS, MAX_PREKEY_ID, type CreateDeviceOptions } from "./local-keys.js";
export { decodeBase64 } from "./base64.js";
