import { createCipheriv, createHash, randomBytes } from "node:crypto";
import * as sdk from "matrix-js-sdk";
import type { RoomEvent } from "./clients.js";

/**
 * The demo's Matrix user as a real client with end-to-end encryption: matrix-js-sdk with its Rust
 * crypto (kept in memory). Same surface as MatrixUser (clients.ts), so the script reads the same;
 * events are the client's decrypted view, sends in encrypted rooms are encrypted by the client,
 * and attachments uploaded for an encrypted room are encrypted (spec v2) before they leave.
 */
export class EncryptingMatrixUser {
  /** mxc URI -> the `file` object of an attachment uploaded encrypted. */
  private readonly files = new Map<string, Record<string, unknown>>();

  private constructor(
    readonly client: sdk.MatrixClient,
    readonly userId: string,
  ) {}

  static async start(
    baseUrl: string,
    session: { userId: string; accessToken: string },
  ): Promise<EncryptingMatrixUser> {
    const whoami = await fetch(`${baseUrl}/_matrix/client/v3/account/whoami`, {
      headers: { authorization: `Bearer ${session.accessToken}` },
    });
    const { device_id: deviceId } = (await whoami.json()) as { device_id?: string };
    const client = sdk.createClient({
      baseUrl,
      userId: session.userId,
      accessToken: session.accessToken,
      ...(deviceId === undefined ? {} : { deviceId }),
    });
    quietRustTracing();
    await client.initRustCrypto({ useIndexedDB: false });
    const prepared = new Promise<void>((resolve) => {
      const onSync = (state: sdk.SyncState): void => {
        if (state !== sdk.SyncState.Prepared) return;
        client.off(sdk.ClientEvent.Sync, onSync);
        resolve();
      };
      client.on(sdk.ClientEvent.Sync, onSync);
    });
    await client.startClient({ initialSyncLimit: 50 });
    await prepared;
    return new EncryptingMatrixUser(client, session.userId);
  }

  stop(): void {
    this.client.stopClient();
  }

  isEncrypted(room: string): boolean {
    return this.client.isRoomEncrypted(room);
  }

  async createDm(invite: string): Promise<string> {
    const { room_id: room } = await this.client.createRoom({
      invite: [invite],
      is_direct: true,
      preset: sdk.Preset.TrustedPrivateChat,
    });
    await this.joined(room);
    return room;
  }

  async join(room: string): Promise<void> {
    await this.client.joinRoom(room);
    await this.joined(room);
  }

  async leave(room: string): Promise<void> {
    await this.client.leave(room);
  }

  async send(room: string, type: string, content: Record<string, unknown>): Promise<string> {
    const url = content["url"];
    const file = typeof url === "string" ? this.files.get(url) : undefined;
    const sent =
      file === undefined || !this.isEncrypted(room)
        ? content
        : (({ url: _url, ...rest }) => ({ ...rest, file }))(content);
    const { event_id: id } = await this.client.sendEvent(room, type as never, sent as never);
    return id;
  }

  async redact(room: string, eventId: string): Promise<void> {
    await this.client.redactEvent(room, eventId, undefined, { reason: "demo" });
  }

  async readUpTo(room: string, eventId: string): Promise<void> {
    // Straight to the API: the client skips receipts for events it considers read already.
    await this.client.http.authedRequest(
      sdk.Method.Post,
      `/rooms/${encodeURIComponent(room)}/receipt/m.read/${encodeURIComponent(eventId)}`,
      undefined,
      {},
    );
  }

  /**
   * Uploads an attachment encrypted (AES-256-CTR, spec v2): the demo sends attachments only into
   * the portal, which is encrypted; `send` puts the `file` object in place of `url`.
   */
  async upload(data: Buffer, _type: string, filename: string): Promise<string> {
    const key = randomBytes(32);
    const iv = Buffer.concat([randomBytes(8), Buffer.alloc(8)]);
    const cipher = createCipheriv("aes-256-ctr", key, iv);
    const encrypted = Buffer.concat([cipher.update(data), cipher.final()]);
    const { content_uri: url } = await this.client.uploadContent(encrypted, {
      type: "application/octet-stream",
      name: filename,
    });
    const unpadded = (b: Buffer) => b.toString("base64").replace(/=+$/, "");
    this.files.set(url, {
      url,
      key: {
        kty: "oct",
        key_ops: ["encrypt", "decrypt"],
        alg: "A256CTR",
        k: key.toString("base64url"),
        ext: true,
      },
      iv: unpadded(iv),
      hashes: { sha256: unpadded(createHash("sha256").update(encrypted).digest()) },
      v: "v2",
    });
    return url;
  }

  /** The room's timeline as the client holds it (decrypted), oldest first. */
  async events(room: string): Promise<RoomEvent[]> {
    const events = this.client.getRoom(room)?.getLiveTimeline().getEvents() ?? [];
    return events
      .filter((e) => e.status === null)
      .map((e) => ({
        type: e.getType(),
        sender: e.getSender() ?? "",
        event_id: e.getId() ?? "",
        content: e.getContent(),
        ...(e.event.redacts === undefined ? {} : { redacts: e.event.redacts }),
        wire: e.getWireType(),
      }));
  }

  async invites(): Promise<string[]> {
    return this.client
      .getRooms()
      .filter((r) => r.getMyMembership() === sdk.KnownMembership.Invite)
      .map((r) => r.roomId);
  }

  /** Read receipts of a joined room: event id -> readers. */
  async receipts(room: string): Promise<Record<string, string[]>> {
    const found: Record<string, string[]> = {};
    const r = this.client.getRoom(room);
    for (const event of r?.getLiveTimeline().getEvents() ?? []) {
      const readers = r?.getReceiptsForEvent(event).map((x) => x.userId) ?? [];
      if (readers.length > 0) found[event.getId() ?? ""] = readers;
    }
    return found;
  }

  private async joined(room: string): Promise<void> {
    const deadline = Date.now() + 20_000;
    while (this.client.getRoom(room)?.getMyMembership() !== "join") {
      if (Date.now() > deadline) throw new Error(`the client never saw itself joined to ${room}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

/**
 * matrix-js-sdk turns the Rust SDK's tracing on at DEBUG, printed through console.debug/info/log;
 * those lines (and only those) are dropped so that the transcript stays readable.
 */
let quiet = false;
function quietRustTracing(): void {
  if (quiet) return;
  quiet = true;
  for (const method of ["debug", "info", "log"] as const) {
    const original = console[method].bind(console);
    console[method] = (...args: unknown[]): void => {
      const first = args[0];
      if (typeof first === "string" && /^(TRACE|DEBUG|INFO) matrix_sdk/.test(first)) return;
      original(...args);
    };
  }
}
