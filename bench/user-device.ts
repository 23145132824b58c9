/**
 * The benchmark user's own Matrix device in encrypted portals: an OlmMachine
 * (matrix-sdk-crypto-wasm) driven by hand over the client-server API with the user's access
 * token, in memory. It lives in the world process (bench/world-child.ts), so that the Megolm
 * work of the load generator and of the probe is not counted as the bridge's CPU.
 */
import * as wasm from "@matrix-org/matrix-sdk-crypto-wasm";

type Json = Record<string, unknown>;

const V3 = "/_matrix/client/v3";

type OutgoingRequest =
  | wasm.KeysUploadRequest
  | wasm.KeysQueryRequest
  | wasm.KeysClaimRequest
  | wasm.ToDeviceRequest
  | wasm.SignatureUploadRequest
  | wasm.RoomMessageRequest
  | wasm.KeysBackupRequest;

export class UserDevice {
  private since: string | undefined;
  /** Rooms whose outbound Megolm session this device has shared already. */
  private readonly shared = new Set<string>();

  private constructor(
    private readonly baseUrl: string,
    private readonly token: string,
    readonly userId: string,
    readonly machine: wasm.OlmMachine,
  ) {}

  static async create(
    baseUrl: string,
    session: { userId: string; accessToken: string; deviceId: string },
  ): Promise<UserDevice> {
    await wasm.initAsync();
    const machine = (await wasm.OlmMachine.initialize(
      new wasm.UserId(session.userId),
      new wasm.DeviceId(session.deviceId),
    )) as wasm.OlmMachine;
    const device = new UserDevice(baseUrl, session.accessToken, session.userId, machine);
    await device.processOutgoing();
    return device;
  }

  async call(method: string, path: string, body?: unknown): Promise<Json> {
    const response = await fetch(`${this.baseUrl}${V3}${path}`, {
      method,
      headers: { authorization: `Bearer ${this.token}`, "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`${method} ${path} answered ${response.status}: ${text}`);
    return JSON.parse(text) as Json;
  }

  async processOutgoing(): Promise<void> {
    for (;;) {
      const requests = (await this.machine.outgoingRequests()) as OutgoingRequest[];
      if (requests.length === 0) return;
      for (const request of requests) await this.send(request);
    }
  }

  private async send(request: OutgoingRequest): Promise<void> {
    let answer: Json = {};
    const body = JSON.parse(request.body) as Json;
    if (request instanceof wasm.KeysUploadRequest)
      answer = await this.call("POST", "/keys/upload", body);
    else if (request instanceof wasm.KeysQueryRequest)
      answer = await this.call("POST", "/keys/query", body);
    else if (request instanceof wasm.KeysClaimRequest)
      answer = await this.call("POST", "/keys/claim", body);
    else if (request instanceof wasm.SignatureUploadRequest)
      answer = await this.call("POST", "/keys/signatures/upload", body);
    else if (request instanceof wasm.ToDeviceRequest) {
      answer = await this.call(
        "PUT",
        `/sendToDevice/${encodeURIComponent(request.event_type)}/${encodeURIComponent(request.txn_id)}`,
        body,
      );
    } else if (request instanceof wasm.RoomMessageRequest) {
      throw new Error("the bench device sends no room messages itself");
    }
    if (request.id !== undefined)
      await this.machine.markRequestAsSent(request.id, request.type, JSON.stringify(answer));
  }

  /** One /sync: to-device events (the bridge's room keys), device lists, key counts. */
  async sync(): Promise<void> {
    const since = this.since === undefined ? "" : `&since=${encodeURIComponent(this.since)}`;
    const sync = await this.call("GET", `/sync?timeout=0${since}`);
    this.since = sync["next_batch"] as string;
    const lists =
      (sync["device_lists"] as { changed?: string[]; left?: string[] } | undefined) ?? {};
    await this.machine.receiveSyncChanges(
      JSON.stringify((sync["to_device"] as { events?: Json[] } | undefined)?.events ?? []),
      new wasm.DeviceLists(
        (lists.changed ?? []).map((u) => new wasm.UserId(u)),
        (lists.left ?? []).map((u) => new wasm.UserId(u)),
      ),
      new Map(
        Object.entries((sync["device_one_time_keys_count"] as Json | undefined) ?? {}),
      ) as Map<string, number>,
      new Set((sync["device_unused_fallback_key_types"] as string[] | undefined) ?? []),
    );
    await this.processOutgoing();
  }

  /**
   * Megolm-encrypts `texts` for `room` (sharing the room key with every device of `members`
   * first, once per room): the contents of the m.room.encrypted events the benchmark pushes.
   */
  async encryptTexts(room: string, members: string[], texts: string[]): Promise<Json[]> {
    const roomId = new wasm.RoomId(room);
    if (!this.shared.has(room)) {
      // wasm-bindgen moves a Vec<UserId> argument into Rust: each call needs its own objects.
      const users = (): wasm.UserId[] => members.map((u) => new wasm.UserId(u));
      await this.machine.updateTrackedUsers(users());
      await this.processOutgoing();
      const claim = await this.machine.getMissingSessions(users());
      if (claim !== undefined && claim !== null) await this.send(claim as OutgoingRequest);
      const settings = new wasm.EncryptionSettings();
      // One session for the whole benchmark: re-sharing would time the load generator.
      settings.rotationPeriodMessages = 1_000_000_000n;
      settings.rotationPeriod = 10n ** 12n;
      for (const request of await this.machine.shareRoomKey(roomId, users(), settings)) {
        await this.send(request as OutgoingRequest);
      }
      this.shared.add(room);
    }
    const contents: Json[] = [];
    for (const text of texts) {
      const encrypted = await this.machine.encryptRoomEvent(
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
      const decrypted = await this.machine.decryptRoomEvent(
        JSON.stringify(event),
        new wasm.RoomId(room),
        new wasm.DecryptionSettings(wasm.TrustRequirement.Untrusted),
      );
      return (JSON.parse(decrypted.event) as { content: Json }).content;
    } catch {
      return undefined;
    }
  }

  close(): void {
    this.machine.close();
  }
}
