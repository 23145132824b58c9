import * as sdk from "matrix-js-sdk";
import { createSdkClient, stopSdkClient } from "./sdkClient.js";

/**
 * A matrix-js-sdk client with its Rust crypto (matrix-sdk-crypto-wasm), kept in memory
 * (`useIndexedDB: false`: Node has no IndexedDB and the tests need no persistence), for tests that
 * exchange end-to-end encrypted messages through the test homeserver. Call `silenceMatrixSdk()`
 * (testHelpers.ts) in the suite as for any js-sdk client, and `stop()` each client before stopping
 * the homeserver (see sdkClient.ts for what a stop has to end).
 */
export interface CryptoClient {
  client: sdk.MatrixClient;
  userId: string;
  deviceId: string;
  accessToken: string;
  /**
   * Stops syncing, closes the crypto machine and ends every request in flight (stopSdkClient), so
   * nothing of this client keeps the process alive. Idempotent.
   */
  stop(): void;
}

export interface CryptoLogin {
  /** Localpart or full user id. */
  user: string;
  password: string;
  /** Log in on this device id (reusing it if it exists); a new device otherwise. */
  deviceId?: string;
  deviceName?: string;
}

/** Logs in with a password, starts the Rust crypto and syncs until the client is Prepared. */
export async function loginCryptoClient(
  baseUrl: string,
  login: CryptoLogin,
): Promise<CryptoClient> {
  const anonymous = sdk.createClient({ baseUrl });
  const answer = await anonymous.loginRequest({
    type: "m.login.password",
    identifier: { type: "m.id.user", user: login.user },
    password: login.password,
    ...(login.deviceId === undefined ? {} : { device_id: login.deviceId }),
    ...(login.deviceName === undefined ? {} : { initial_device_display_name: login.deviceName }),
  });
  return startCryptoClient(baseUrl, {
    userId: answer.user_id,
    accessToken: answer.access_token,
    deviceId: answer.device_id,
  });
}

/** Starts a crypto client on an existing session (e.g. from `TestHomeserver.registerUser`). */
export async function startCryptoClient(
  baseUrl: string,
  session: { userId: string; accessToken: string; deviceId: string },
): Promise<CryptoClient> {
  const client = createSdkClient({ baseUrl, ...session });
  quietRustCrypto();
  try {
    await client.initRustCrypto({ useIndexedDB: false });
    await startSyncing(client);
  } catch (err) {
    // A client that never got ready must not outlive the test either.
    stopSdkClient(client);
    throw err;
  }
  return {
    client,
    ...session,
    stop: () => stopSdkClient(client),
  };
}

/**
 * js-sdk turns the Rust SDK's tracing on at DEBUG for every client it starts, printed through
 * console.debug/console.info; a fresh `Tracing` with a higher level did not quiet it here. Tests
 * assert outcomes, so those lines (and only those) are dropped; warnings and errors still print.
 */
let rustLogsQuiet = false;
function quietRustCrypto(): void {
  if (rustLogsQuiet) return;
  rustLogsQuiet = true;
  for (const method of ["debug", "info", "log"] as const) {
    const original = console[method].bind(console);
    console[method] = (...args: unknown[]): void => {
      const first = args[0];
      if (typeof first === "string" && /^(TRACE|DEBUG|INFO) matrix_sdk/.test(first)) return;
      original(...args);
    };
  }
}

async function startSyncing(client: sdk.MatrixClient): Promise<void> {
  const prepared = new Promise<void>((resolve) => {
    const onSync = (state: sdk.SyncState): void => {
      if (state === sdk.SyncState.Prepared) {
        client.off(sdk.ClientEvent.Sync, onSync);
        resolve();
      }
    };
    client.on(sdk.ClientEvent.Sync, onSync);
  });
  await client.startClient({ initialSyncLimit: 20 });
  await prepared;
}

/** The `initial_state` entry that makes a new room Megolm-encrypted. */
export const ENCRYPTION_STATE = {
  type: "m.room.encryption",
  state_key: "",
  content: { algorithm: "m.megolm.v1.aes-sha2" },
};

/**
 * Resolves with the first event of `roomId` whose clear (decrypted) content satisfies `predicate`,
 * among those already in the live timeline and those arriving later. Encrypted events are awaited
 * until decrypted; one that fails to decrypt is skipped (`isDecryptionFailure`), so a timeout in
 * the caller's test names what never arrived.
 */
export function nextClearEvent(
  client: sdk.MatrixClient,
  roomId: string,
  predicate: (event: sdk.MatrixEvent) => boolean,
): Promise<sdk.MatrixEvent> {
  return new Promise((resolve) => {
    const done = (event: sdk.MatrixEvent): void => {
      client.off(sdk.RoomEvent.Timeline, onTimeline);
      client.off(sdk.MatrixEventEvent.Decrypted, onDecrypted);
      resolve(event);
    };
    const consider = (event: sdk.MatrixEvent): boolean => {
      if (event.getRoomId() !== roomId || event.status !== null) return false;
      if (event.isBeingDecrypted() || event.isDecryptionFailure()) return false;
      if (event.getType() === "m.room.encrypted") return false;
      if (!predicate(event)) return false;
      done(event);
      return true;
    };
    const onTimeline = (event: sdk.MatrixEvent): void => void consider(event);
    const onDecrypted = (event: sdk.MatrixEvent): void => void consider(event);
    client.on(sdk.RoomEvent.Timeline, onTimeline);
    client.on(sdk.MatrixEventEvent.Decrypted, onDecrypted);
    for (const event of client.getRoom(roomId)?.getLiveTimeline().getEvents() ?? []) {
      if (consider(event)) return;
    }
  });
}

/** Rejects after `ms` with a message naming `what`, so a hung wait fails clearly. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
