/** The Signal-protocol layer at the bridge boundary (PROTOCOL.md §11, §12, §13.3, §17). */
export * from "./errors.js";
export * from "./types.js";
export { SignalCrypto, DeviceCrypto } from "./signal-crypto.js";
export { SessionCipher } from "./session-cipher.js";
export { GroupCipher } from "./group-cipher.js";
export { RetryLedger } from "./retry.js";
export { IdentityBook } from "./identity.js";
export {
  DeviceListCache,
  type DevicesChangedNotice,
  type DeviceListUpdate,
} from "./device-lists.js";
export { KEY_RETENTION_MS, type CreateDeviceOptions } from "./local-keys.js";
export { decodeBase64 } from "./base64.js";
