/**
 * The benchmark user's own Matrix device in encrypted portals: an OlmMachine
 * (matrix-sdk-crypto-wasm) driven over the client-server API with the user's access token, in
 * memory: the homeserver tests' device (test/homeserver/olmDevice.ts) made for a client login,
 * plus what the benchmark needs (one room key per portal for the whole run, many texts at once).
 * It lives in the world process (bench/world-child.ts), so that the Megolm work of the load
 * generator and of the probe is not counted as the bridge's CPU.
 */
import * as wasm from "@matrix-org/matrix-sdk-crypto-wasm";
import { OlmAppserviceDevice } from "../test/homeserver/olmDevice.js";

type Json = Record<string, unknown>;

export class UserDevice {
  private since: string | undefined;
  /** Rooms whose outbound Megolm session this device has shared already. */
  private readonly shared = new Set<string>();

  private constructor(private readonly device: OlmAppserviceDevice) {}

  static async create(
    baseUrl: string,
    session: { userId: string; accessToken: string; deviceId: string },
  ): Promise<UserDevice> {
    return new UserDevice(await OlmAppserviceDevice.forUser(baseUrl, session));
  }

  get userId(): string {
    return this.device.userId;
  }

  call(method: string, path: string, body?: unknown): Promise<Json> {
    return this.device.call(method, path, body);
  }

  /** One /sync: to-device events (the bridge's room keys), device lists, key counts. */
  async sync(): Promise<void> {
    this.since = (await this.device.syncOnce(this.since)).next;
  }

  /**
   * Megolm-encrypts `texts` for `room` (sharing the room key with every device of `members`
   * first, once per room): the contents of the m.room.encrypted events the benchmark pushes.
   */
  async encryptTexts(room: string, members: string[], texts: string[]): Promise<Json[]> {
    if (!this.shared.has(room)) {
      const settings = new wasm.EncryptionSettings();
      // One session for the whole benchmark: re-sharing would time the load generator.
      settings.rotationPeriodMessages = 1_000_000_000n;
      settings.rotationPeriod = 10n ** 12n;
      await this.device.shareRoomKey(room, members, settings);
      this.shared.add(room);
    }
    const roomId = new wasm.RoomId(room);
    const contents: Json[] = [];
    for (const text of texts) {
      const encrypted = await this.device.machine.encryptRoomEvent(
        roomId,
        "m.room.message",
        JSON.stringify({ msgtype: "m.text", body: text }),
      );
      contents.push(JSON.parse(encrypted) as Json);
    }
    return contents;
  }

  /** The clear content of an m.room.encrypted event, or undefined when it cannot be decrypted. */
  async decrypt(event: Json, room: string): Promise<Json | undefined> {
    try {
      return await this.device.decrypt(event, room);
    } catch {
      return undefined;
    }
  }

  close(): void {
    this.device.close();
  }
}
