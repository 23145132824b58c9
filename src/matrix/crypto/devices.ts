import type { Knex } from "knex";
import type { KeyVault } from "../../vault/key-vault.js";
import { KeyedMutex } from "../../util/mutex.js";
import { BridgeError } from "../../util/errors.js";
import type { CryptoHttp } from "./homeserver.js";
import type { DeviceCredentials } from "./machine.js";

const TABLE = "matrix_crypto_devices";
const DEVICE_DISPLAY_NAME = "WhatsApp bridge";

/**
 * The devices of the bot and the ghosts, created on first use with `m.login.application_service`
 * (the appservice logs in as its own user without a password) and kept in `matrix_crypto_devices`
 * with the access token sealed by the key vault. One device per user for the bridge's lifetime:
 * a new device would have to be re-trusted by every client.
 */
export class DeviceRegistry {
  private readonly cache = new Map<string, DeviceCredentials>();
  private readonly creating = new KeyedMutex();

  constructor(
    private readonly knex: Knex,
    private readonly vault: KeyVault,
    private readonly http: CryptoHttp,
    private readonly asToken: string,
  ) {}

  /** The device of `userId`, created when it has none yet. */
  async credentials(userId: string): Promise<DeviceCredentials> {
    const cached = this.cache.get(userId);
    if (cached !== undefined) return cached;
    return this.creating.run([userId], async () => {
      const known = this.cache.get(userId) ?? (await this.load(userId));
      if (known !== undefined) {
        this.cache.set(userId, known);
        return known;
      }
      const created = await this.login(userId);
      await this.knex(TABLE)
        .insert({
          user_id: userId,
          device_id: created.deviceId,
          access_token: this.vault.seal(Buffer.from(created.accessToken), [TABLE, userId]),
          created_at: Date.now(),
        })
        .onConflict("user_id")
        .ignore();
      // A concurrent bridge process may have won the insert: its device is the one that counts.
      const stored = await this.load(userId);
      if (stored === undefined) throw new BridgeError("crypto-device", "device row vanished");
      this.cache.set(userId, stored);
      return stored;
    });
  }

  /** The stored device of `userId`, without creating one. */
  async existing(userId: string): Promise<DeviceCredentials | undefined> {
    return this.cache.get(userId) ?? (await this.load(userId));
  }

  private async load(userId: string): Promise<DeviceCredentials | undefined> {
    const row = (await this.knex(TABLE).where({ user_id: userId }).first()) as
      { device_id: string; access_token: Buffer } | undefined;
    if (row === undefined) return undefined;
    const token = this.vault.open(row.access_token, [TABLE, userId]).toString("utf8");
    return { userId, deviceId: row.device_id, accessToken: token };
  }

  private async login(userId: string): Promise<DeviceCredentials> {
    const body = {
      type: "m.login.application_service",
      identifier: { type: "m.id.user", user: userId },
      initial_device_display_name: DEVICE_DISPLAY_NAME,
    };
    let answer: Record<string, unknown>;
    try {
      answer = await this.http.request("POST", "/_matrix/client/v3/login", this.asToken, body);
    } catch (err) {
      if ((err as { code?: unknown }).code === "homeserver-unavailable") throw err;
      // Not registered yet (the bot before its first profile update): register, then log in.
      const localpart = userId.slice(1, userId.indexOf(":"));
      await this.http
        .request("POST", "/_matrix/client/v3/register", this.asToken, {
          type: "m.login.application_service",
          username: localpart,
          inhibit_login: true,
        })
        .catch(() => undefined);
      answer = await this.http.request("POST", "/_matrix/client/v3/login", this.asToken, body);
    }
    const { device_id: deviceId, access_token: accessToken } = answer;
    if (typeof deviceId !== "string" || typeof accessToken !== "string") {
      throw new BridgeError(
        "crypto-device",
        "the homeserver's answer to m.login.application_service lacks a device or token",
      );
    }
    return { userId, deviceId, accessToken };
  }
}
