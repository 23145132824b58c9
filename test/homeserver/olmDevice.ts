import * as wasm from "@matrix-org/matrix-sdk-crypto-wasm";
import type { JsonObject } from "./types.js";

const V3 = "/_matrix/client/v3";

/**
 * A device of an appservice user driven by matrix-sdk-crypto-wasm's `OlmMachine` directly, the
 * way an encrypting bridge drives one: logged in with `m.login.application_service`, acting
 * through the as_token with MSC3202 device masquerading, fed either from transaction pushes
 * (`receiveTransaction`) or from its own /sync (`syncOnce`). In memory; for homeserver tests.
 * {@link forUser} makes the same device for an ordinary client login (the benchmark's user,
 * bench/user-device.ts): its own access token, no masquerading.
 */
export class OlmAppserviceDevice {
  private constructor(
    private readonly baseUrl: string,
    /** The as_token (masquerading) or the user's own access token. */
    private readonly token: string,
    readonly userId: string,
    readonly deviceId: string,
    readonly machine: wasm.OlmMachine,
    private readonly masquerade: boolean,
  ) {}

  /** A device of an ordinary client login, acting with its own access token. */
  static async forUser(
    baseUrl: string,
    session: { userId: string; accessToken: string; deviceId: string },
  ): Promise<OlmAppserviceDevice> {
    await wasm.initAsync();
    const machine = (await wasm.OlmMachine.initialize(
      new wasm.UserId(session.userId),
      new wasm.DeviceId(session.deviceId),
    )) as wasm.OlmMachine;
    const device = new OlmAppserviceDevice(
      baseUrl,
      session.accessToken,
      session.userId,
      session.deviceId,
      machine,
      false,
    );
    await device.processOutgoing();
    return device;
  }

  static async create(
    baseUrl: string,
    asToken: string,
    userId: string,
    deviceId: string,
  ): Promise<OlmAppserviceDevice> {
    const login = await fetch(`${baseUrl}${V3}/login`, {
      method: "POST",
      headers: { authorization: `Bearer ${asToken}`, "content-type": "application/json" },
      body: JSON.stringify({
        type: "m.login.application_service",
        identifier: { type: "m.id.user", user: userId },
        device_id: deviceId,
      }),
    });
    if (!login.ok)
      throw new Error(`login of ${userId} failed: ${login.status} ${await login.text()}`);
    await wasm.initAsync();
    const machine = (await wasm.OlmMachine.initialize(
      new wasm.UserId(userId),
      new wasm.DeviceId(deviceId),
    )) as wasm.OlmMachine;
    const device = new OlmAppserviceDevice(baseUrl, asToken, userId, deviceId, machine, true);
    await device.processOutgoing();
    return device;
  }

  /**
   * One client-server call as this device (as_token, `user_id`, MSC3202 `device_id`; for a
   * {@link forUser} device, its own token).
   */
  async call(method: string, path: string, body?: unknown): Promise<JsonObject> {
    const sep = path.includes("?") ? "&" : "?";
    const query = this.masquerade
      ? `${sep}user_id=${encodeURIComponent(this.userId)}&org.matrix.msc3202.device_id=${encodeURIComponent(this.deviceId)}`
      : "";
    const response = await fetch(`${this.baseUrl}${V3}${path}${query}`, {
      method,
      headers: { authorization: `Bearer ${this.token}`, "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`${method} ${path} answered ${response.status}: ${text}`);
    return JSON.parse(text) as JsonObject;
  }

  /** Sends every request the machine has queued and reports the answers back to it. */
  async processOutgoing(): Promise<void> {
    for (;;) {
      const requests = await this.machine.outgoingRequests();
      if (requests.length === 0) return;
      for (const request of requests) await this.send(request);
    }
  }

  private async send(request: OutgoingRequest): Promise<void> {
    let answer: JsonObject = {};
    const body = JSON.parse(request.body) as JsonObject;
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
      answer = await this.call(
        "PUT",
        `/rooms/${encodeURIComponent(request.room_id)}/send/${encodeURIComponent(request.event_type)}/${encodeURIComponent(request.txn_id)}`,
        JSON.parse(request.body) as JsonObject,
      );
    }
    if (request.id !== undefined)
      await this.machine.markRequestAsSent(request.id, request.type, JSON.stringify(answer));
  }

  /** Feeds what one sync or transaction said about this device into the machine. */
  async receive(data: {
    toDevice: JsonObject[];
    changed: string[];
    left: string[];
    otkCounts: Record<string, number>;
    fallback: string[] | undefined;
  }): Promise<void> {
    const counts = new Map(Object.entries(data.otkCounts));
    await this.machine.receiveSyncChanges(
      JSON.stringify(data.toDevice),
      new wasm.DeviceLists(
        data.changed.map((u) => new wasm.UserId(u)),
        data.left.map((u) => new wasm.UserId(u)),
      ),
      counts,
      data.fallback === undefined ? undefined : new Set(data.fallback),
    );
    await this.processOutgoing();
  }

  /** Takes this device's share of an appservice transaction's MSC2409/MSC3202 data. */
  async receiveTransaction(body: JsonObject): Promise<void> {
    const toDevice = ((body["de.sorunome.msc2409.to_device"] as JsonObject[] | undefined) ?? [])
      .filter((e) => e["to_user_id"] === this.userId && e["to_device_id"] === this.deviceId)
      .map(({ to_user_id: _u, to_device_id: _d, ...event }) => event);
    const lists = (body["org.matrix.msc3202.device_lists"] as
      { changed: string[]; left: string[] } | undefined) ?? { changed: [], left: [] };
    const counts = (body["org.matrix.msc3202.device_one_time_keys_count"] ??
      body["org.matrix.msc3202.device_one_time_key_counts"]) as
      Record<string, Record<string, Record<string, number>>> | undefined;
    const fallback = body["org.matrix.msc3202.device_unused_fallback_key_types"] as
      Record<string, Record<string, string[]>> | undefined;
    await this.receive({
      toDevice,
      changed: lists.changed,
      left: lists.left,
      otkCounts: counts?.[this.userId]?.[this.deviceId] ?? {},
      fallback: fallback?.[this.userId]?.[this.deviceId],
    });
  }

  /** One /sync as this device (the fallback without pushes); returns the next since token. */
  async syncOnce(since: string | undefined): Promise<{ next: string; sync: JsonObject }> {
    const sync = await this.call(
      "GET",
      `/sync?timeout=0${since === undefined ? "" : `&since=${since}`}`,
    );
    // Every field may be absent from a sync with nothing to say.
    const lists =
      (sync["device_lists"] as { changed?: string[]; left?: string[] } | undefined) ?? {};
    await this.receive({
      toDevice: (sync["to_device"] as { events?: JsonObject[] } | undefined)?.events ?? [],
      changed: lists.changed ?? [],
      left: lists.left ?? [],
      otkCounts: (sync["device_one_time_keys_count"] as Record<string, number> | undefined) ?? {},
      fallback: sync["device_unused_fallback_key_types"] as string[] | undefined,
    });
    return { next: sync["next_batch"] as string, sync };
  }

  /** Decrypts a room event (as pushed or synced) and returns its clear content. */
  async decrypt(event: JsonObject, roomId: string): Promise<JsonObject> {
    const decrypted = await this.machine.decryptRoomEvent(
      JSON.stringify(event),
      new wasm.RoomId(roomId),
      new wasm.DecryptionSettings(wasm.TrustRequirement.Untrusted),
    );
    return (JSON.parse(decrypted.event) as { content: JsonObject }).content;
  }

  /**
   * Shares this device's outbound room key for `roomId` with every device of `members` (Olm
   * sessions claimed first where missing), so that what it encrypts next can be read.
   */
  async shareRoomKey(
    roomId: string,
    members: string[],
    settings: wasm.EncryptionSettings = new wasm.EncryptionSettings(),
  ): Promise<void> {
    // wasm-bindgen moves a Vec<UserId> argument into Rust: each call needs its own objects.
    const users = (): wasm.UserId[] => members.map((u) => new wasm.UserId(u));
    await this.machine.updateTrackedUsers(users());
    await this.processOutgoing();
    const claim = await this.machine.getMissingSessions(users());
    // The binding answers null (not undefined) when every device has a session.
    if (claim !== undefined && claim !== null) await this.send(claim);
    for (const request of await this.machine.shareRoomKey(
      new wasm.RoomId(roomId),
      users(),
      settings,
    )) {
      await this.send(request as OutgoingRequest);
    }
  }

  /** Encrypts for every device of `members` (sharing the room key first) and sends it. */
  async sendEncrypted(
    roomId: string,
    members: string[],
    type: string,
    content: JsonObject,
    txnId: string,
  ): Promise<string> {
    await this.shareRoomKey(roomId, members);
    const room = new wasm.RoomId(roomId);
    const encrypted = await this.machine.encryptRoomEvent(room, type, JSON.stringify(content));
    const sent = await this.call(
      "PUT",
      `/rooms/${encodeURIComponent(roomId)}/send/m.room.encrypted/${encodeURIComponent(txnId)}`,
      JSON.parse(encrypted) as JsonObject,
    );
    return sent["event_id"] as string;
  }

  close(): void {
    this.machine.close();
  }
}

type OutgoingRequest =
  | wasm.KeysUploadRequest
  | wasm.KeysQueryRequest
  | wasm.KeysClaimRequest
  | wasm.ToDeviceRequest
  | wasm.SignatureUploadRequest
  | wasm.RoomMessageRequest
  | wasm.KeysBackupRequest;
