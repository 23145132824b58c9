/** Plain HTTP clients for the two sides: a Matrix user and a simulated WhatsApp user. */

export interface Answer {
  status: number;
  json: Record<string, unknown>;
}

async function call(
  url: string,
  method: string,
  token: string,
  body?: unknown,
  raw?: { data: Buffer; type: string },
): Promise<Answer> {
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  let payload: string | Uint8Array | undefined;
  if (raw !== undefined) {
    payload = new Uint8Array(raw.data);
    headers["content-type"] = raw.type;
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    headers["content-type"] = "application/json";
  }
  const response = await fetch(url, {
    method,
    headers,
    ...(payload === undefined ? {} : { body: payload }),
  });
  const text = await response.text();
  const json = text === "" ? {} : (JSON.parse(text) as Record<string, unknown>);
  return { status: response.status, json };
}

function ok(answer: Answer, what: string): Record<string, unknown> {
  if (answer.status !== 200) {
    throw new Error(`${what} answered ${answer.status}: ${JSON.stringify(answer.json)}`);
  }
  return answer.json;
}

const enc = encodeURIComponent;

export interface RoomEvent {
  type: string;
  sender: string;
  event_id: string;
  content: Record<string, unknown>;
  redacts?: string;
  /** The type on the wire: m.room.encrypted when the client decrypted it. */
  wire?: string;
}

export class MatrixUser {
  private txn = 0;

  constructor(
    readonly baseUrl: string,
    readonly userId: string,
    private readonly token: string,
  ) {}

  request(method: string, path: string, body?: unknown): Promise<Answer> {
    return call(`${this.baseUrl}${path}`, method, this.token, body);
  }

  async createDm(invite: string): Promise<string> {
    const json = ok(
      await this.request("POST", "/_matrix/client/v3/createRoom", {
        invite: [invite],
        is_direct: true,
        preset: "trusted_private_chat",
      }),
      "createRoom",
    );
    return json["room_id"] as string;
  }

  async join(room: string): Promise<void> {
    ok(await this.request("POST", `/_matrix/client/v3/join/${enc(room)}`, {}), "join");
  }

  async leave(room: string): Promise<void> {
    ok(await this.request("POST", `/_matrix/client/v3/rooms/${enc(room)}/leave`, {}), "leave");
  }

  /** Sends an event; returns its id. */
  async send(room: string, type: string, content: Record<string, unknown>): Promise<string> {
    this.txn += 1;
    const path = `/_matrix/client/v3/rooms/${enc(room)}/send/${enc(type)}/demo${this.txn}-${Date.now()}`;
    return ok(await this.request("PUT", path, content), `send ${type}`)["event_id"] as string;
  }

  async redact(room: string, eventId: string): Promise<void> {
    this.txn += 1;
    const path = `/_matrix/client/v3/rooms/${enc(room)}/redact/${enc(eventId)}/demo${this.txn}`;
    ok(await this.request("PUT", path, { reason: "demo" }), "redact");
  }

  async readUpTo(room: string, eventId: string): Promise<void> {
    const path = `/_matrix/client/v3/rooms/${enc(room)}/receipt/m.read/${enc(eventId)}`;
    ok(await this.request("POST", path, {}), "receipt");
  }

  async upload(data: Buffer, type: string, filename: string): Promise<string> {
    const answer = await call(
      `${this.baseUrl}/_matrix/media/v3/upload?filename=${enc(filename)}`,
      "POST",
      this.token,
      undefined,
      { data, type },
    );
    return ok(answer, "upload")["content_uri"] as string;
  }

  /** The room's timeline, oldest first. */
  async events(room: string): Promise<RoomEvent[]> {
    const path = `/_matrix/client/v3/rooms/${enc(room)}/messages?dir=f&limit=1000`;
    const json = ok(await this.request("GET", path), "messages");
    return (json["chunk"] as RoomEvent[] | undefined) ?? [];
  }

  /** Rooms this user is invited to, from a fresh sync. */
  async invites(): Promise<string[]> {
    const json = ok(await this.request("GET", "/_matrix/client/v3/sync?timeout=0"), "sync");
    const rooms = json["rooms"] as { invite?: Record<string, unknown> } | undefined;
    return Object.keys(rooms?.invite ?? {});
  }

  /** The read receipts of a joined room, from a fresh sync: event id -> readers. */
  async receipts(room: string): Promise<Record<string, string[]>> {
    const json = ok(await this.request("GET", "/_matrix/client/v3/sync?timeout=0"), "sync");
    const joined = (json["rooms"] as { join?: Record<string, unknown> } | undefined)?.join;
    const data = joined?.[room] as { ephemeral?: { events?: RoomEvent[] } } | undefined;
    const found: Record<string, string[]> = {};
    for (const event of data?.ephemeral?.events ?? []) {
      if (event.type !== "m.receipt") continue;
      for (const [eventId, kinds] of Object.entries(event.content)) {
        const read = (kinds as Record<string, Record<string, unknown>>)["m.read"] ?? {};
        found[eventId] = [...(found[eventId] ?? []), ...Object.keys(read)];
      }
    }
    return found;
  }
}

export interface Received {
  kind: string;
  data: Record<string, unknown>;
}

/** A simulated WhatsApp user, driven through the simulator's admin API. */
export class WhatsAppUser {
  constructor(
    private readonly adminUrl: string,
    private readonly token: string,
    readonly phone: string,
    readonly jid: string,
  ) {}

  get digits(): string {
    return this.phone.slice(1);
  }

  request(method: string, path: string, body?: unknown): Promise<Answer> {
    return call(`${this.adminUrl}${path}`, method, this.token, body);
  }

  async create(): Promise<void> {
    const answer = await this.request("POST", "/users", { phone: this.phone });
    if (answer.status !== 200 && answer.status !== 201) {
      throw new Error(
        `creating ${this.phone} answered ${answer.status}: ${JSON.stringify(answer.json)}`,
      );
    }
  }

  /** Sends as this user (`POST /users/{digits}/send`); returns the origin-id when there is one. */
  async send(body: Record<string, unknown>): Promise<string> {
    return (await this.sendReporting(body)).originId;
  }

  /** Sends as this user; also says whether the gatekeeper delivered it (false when blocked). */
  async sendReporting(
    body: Record<string, unknown>,
  ): Promise<{ originId: string; delivered: boolean }> {
    const json = ok(await this.request("POST", `/users/${this.digits}/send`, body), "send");
    return { originId: String(json["originId"] ?? ""), delivered: json["delivered"] !== false };
  }

  async received(kind?: string): Promise<Received[]> {
    const query = kind === undefined ? "" : `?kind=${enc(kind)}`;
    const json = ok(
      await this.request("GET", `/users/${this.digits}/received${query}`),
      "received",
    );
    return (json["entries"] as Received[] | undefined) ?? [];
  }

  async acceptRequest(from: string): Promise<void> {
    ok(await this.request("POST", `/users/${this.digits}/requests/${enc(from)}/accept`), "accept");
  }
}
