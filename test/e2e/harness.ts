import * as sdk from "matrix-js-sdk";
import { localpartFromMatrixUserId } from "../../src/interop/codec/jid.js";
import { matrixUserId } from "../../src/util/ids.js";
import { WhatsAppUser, type Received } from "../../scripts/demo/clients.js";
import { startDemoWorld, type DemoWorld, type DemoWorldOptions } from "../../scripts/demo/world.js";
import { createSdkClient, stopSdkClient } from "../homeserver/sdkClient.js";
import { silenceMatrixSdk } from "../homeserver/testHelpers.js";

/**
 * The end-to-end world: the in-process test homeserver, the gatekeeper simulator (scripted through
 * its admin API as WhatsApp users) and the real bridge on SQLite, started by the demo's world
 * builder, plus a real matrix-js-sdk client as the Matrix user. Waits poll what each side
 * actually sees: the js-sdk's timeline on Matrix, the decrypted received log on WhatsApp.
 */

/** Generous: the machine running these may be loaded. */
export const WAIT_MS = 20_000;
export const MATRIX_PHONE = "+491700000001";

export type { Received };
export { WhatsAppUser };

silenceMatrixSdk();

async function poll<T>(
  check: () => T | undefined | Promise<T | undefined>,
  what: string,
  timeoutMs = WAIT_MS,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
export { poll as eventually };

/** The content elements of what a WhatsApp user received, by kind. */
export function elements(entry: Received): { kind: string; [key: string]: unknown }[] {
  return (entry.data["content"] as { kind: string }[] | undefined) ?? [];
}

export function element(entry: Received, kind: string): Record<string, unknown> | undefined {
  return elements(entry).find((e) => e.kind === kind);
}

export function bodyOf(entry: Received): string | undefined {
  return element(entry, "body")?.["text"] as string | undefined;
}

export class E2e {
  readonly bot: string;
  readonly myJid: string;
  mgmt = "";

  private constructor(
    readonly world: DemoWorld,
    readonly client: sdk.MatrixClient,
    /** False for a second user's view of another E2e's world: stop() leaves the world running. */
    private readonly ownsWorld = true,
  ) {
    this.bot = `@${world.config.appservice.bot.localpart}:${world.config.homeserver.domain}`;
    const localpart = localpartFromMatrixUserId(matrixUserId(client.getSafeUserId()));
    this.myJid = `${localpart}@${world.config.interop.component_domain}`;
  }

  /** Starts the world and a syncing js-sdk client for its Matrix user (not yet logged in). */
  static async start(
    localpart = "alice",
    options: DemoWorldOptions & {
      /** Encrypted portals, and the js-sdk client with its Rust crypto (in memory). */
      encrypted?: boolean;
    } = {},
  ): Promise<E2e> {
    const { encrypted = false, ...worldOptions } = options;
    const world = await startDemoWorld(
      localpart,
      encrypted
        ? {
            ...worldOptions,
            config: { ...worldOptions.config, matrix_encryption: { default: true } },
          }
        : worldOptions,
    );
    try {
      const client = await syncingClient(world, localpart, world.user.password, encrypted);
      return new E2e(world, client);
    } catch (err) {
      await world.stop();
      throw err;
    }
  }

  /**
   * A second Matrix user of the same homeserver and bridge, with a js-sdk client of their own
   * (registered here, not yet logged in to the bridge). Stopping it stops only its client.
   */
  async another(localpart: string, encrypted = false): Promise<E2e> {
    const password = `${localpart}-password`;
    this.world.hs.registerUser(localpart, password);
    const client = await syncingClient(this.world, localpart, password, encrypted);
    return new E2e(this.world, client, false);
  }

  /** The Matrix ghost of a WhatsApp user. */
  ghostOf(user: WhatsAppUser): string {
    return `@whatsapp_${user.digits}:${this.world.config.homeserver.domain}`;
  }

  get me(): string {
    return this.client.getSafeUserId();
  }

  async stop(): Promise<void> {
    stopSdkClient(this.client);
    if (this.ownsWorld) await this.world.stop();
  }

  // --- the Matrix side, as the js-sdk sees it ---------------------------------------------------

  /** The room's live timeline as the js-sdk holds it (remote echoes only). */
  timeline(room: string): sdk.MatrixEvent[] {
    const events = this.client.getRoom(room)?.getLiveTimeline().getEvents() ?? [];
    return events.filter((e) => e.status === null);
  }

  /** Waits for an event in `room` that `match` accepts, among those after `after` (an index). */
  async sees(
    room: string,
    what: string,
    match: (e: sdk.MatrixEvent) => boolean,
    after = 0,
    timeoutMs = WAIT_MS,
  ): Promise<sdk.MatrixEvent> {
    return poll(() => this.timeline(room).slice(after).find(match), what, timeoutMs);
  }

  /** Waits for a message from the portal's contact (not from the user or the bot). */
  async ghostSays(
    room: string,
    what: string,
    match: (content: Record<string, unknown>, e: sdk.MatrixEvent) => boolean,
  ): Promise<sdk.MatrixEvent> {
    return this.sees(
      room,
      what,
      (e) =>
        e.getSender() !== this.me &&
        e.getSender() !== this.bot &&
        match(e.getContent() as Record<string, unknown>, e),
    );
  }

  /** Waits for a notice of the bot in `room` whose body matches `pattern`. */
  async botSays(room: string, pattern: RegExp, after = 0): Promise<sdk.MatrixEvent> {
    return this.sees(
      room,
      `the bot to say ${pattern}`,
      (e) => e.getSender() === this.bot && pattern.test(String(e.getContent()["body"])),
      after,
    );
  }

  /** Rooms the user is invited to. */
  invites(): string[] {
    return this.client
      .getRooms()
      .filter((r) => r.getMyMembership() === sdk.KnownMembership.Invite)
      .map((r) => r.roomId);
  }

  async newInvite(before: ReadonlySet<string>, what: string): Promise<string> {
    return poll(() => this.invites().find((r) => !before.has(r)), what);
  }

  async send(room: string, content: Record<string, unknown>, type = "m.room.message") {
    const { event_id: eventId } = await this.client.sendEvent(
      room,
      type as keyof sdk.TimelineEvents,
      content as never,
    );
    return eventId;
  }

  async text(room: string, body: string, extra: Record<string, unknown> = {}): Promise<string> {
    return this.send(room, { msgtype: "m.text", body, ...extra });
  }

  /**
   * Sends a command in the management room; resolves to the bot's first answer after it (the
   * first matching `expect`, when given: an earlier command's late second answer is skipped).
   */
  async command(text: string, expect?: RegExp, room = this.mgmt): Promise<string> {
    const eventId = await this.text(room, text);
    const answer = await poll(
      () => {
        const events = this.timeline(room);
        const at = events.findIndex((e) => e.getId() === eventId);
        if (at < 0) return undefined;
        return events
          .slice(at + 1)
          .find(
            (e) =>
              e.getSender() === this.bot &&
              (expect === undefined || expect.test(String(e.getContent()["body"]))),
          );
      },
      `the bot's answer to "${text}"${expect === undefined ? "" : ` matching ${expect}`}`,
    );
    return String(answer.getContent()["body"]);
  }

  /** Uploads bytes as the Matrix user; returns the mxc URI. */
  async upload(data: Buffer, type: string, name: string): Promise<string> {
    const { content_uri: uri } = await this.client.uploadContent(data, { type, name });
    return uri;
  }

  /** Downloads an mxc URI as the Matrix user would (authenticated media). */
  async download(mxc: string): Promise<Buffer> {
    const url = this.client.mxcUrlToHttp(mxc, undefined, undefined, undefined, false, true, true);
    if (url === null) throw new Error(`not an mxc URI: ${mxc}`);
    const response = await fetch(url, {
      headers: { authorization: `Bearer ${this.client.getAccessToken() ?? ""}` },
      signal: AbortSignal.timeout(WAIT_MS),
    });
    if (!response.ok) throw new Error(`downloading ${mxc} answered ${response.status}`);
    return Buffer.from(await response.arrayBuffer());
  }

  // --- set-up steps ------------------------------------------------------------------------------

  /** Opens the management room and logs in with the phone flow, reading the code at the simulator. */
  async login(phone = MATRIX_PHONE): Promise<void> {
    const { room_id: roomId } = await this.client.createRoom({
      invite: [this.bot],
      is_direct: true,
      preset: sdk.Preset.TrustedPrivateChat,
    });
    this.mgmt = roomId;
    await this.botSays(roomId, /login/);
    await this.phoneLogin(phone);
  }

  /** The phone login flow in the management room, reading the code at the simulator. */
  async phoneLogin(phone = MATRIX_PHONE): Promise<void> {
    await this.command("login", /phone/);
    await this.command("phone", /phone number/i);
    await this.command(phone, /code/i);
    const admin = new WhatsAppUser(this.world.adminUrl, this.world.adminToken, phone, "");
    const code = await poll(async () => {
      const answer = await admin.request("GET", `/_test/verification-codes/${phone.slice(1)}`);
      return answer.status === 200 ? String(answer.json["code"]) : undefined;
    }, "the verification code");
    await this.command(code, /^Logged in/);
  }

  /** A simulated WhatsApp user, created at the gatekeeper. */
  async whatsappUser(phone: string): Promise<WhatsAppUser> {
    const { config } = this.world;
    const user = new WhatsAppUser(
      this.world.adminUrl,
      this.world.adminToken,
      phone,
      `${phone.slice(1)}@${config.interop.gatekeeper_domain}`,
    );
    await user.create();
    return user;
  }

  /**
   * `start-chat` with `contact`, joins the portal, sends a first message and has the contact
   * accept the request, so both directions are open. Returns the portal's room id.
   */
  async openChat(contact: WhatsAppUser): Promise<string> {
    const before = new Set(this.invites());
    await this.command(`start-chat ${contact.phone}`, /^Invited you/);
    const room = await this.newInvite(before, "the portal invite");
    await this.client.joinRoom(room);
    // The client must have synced the joined room's state (in an encrypted portal, its
    // m.room.encryption) before it sends there.
    await poll(
      () => (this.client.getRoom(room)?.getMyMembership() === "join" ? true : undefined),
      "the joined portal in the client's sync",
    );
    await this.text(room, "hello");
    await this.received(contact, "my first message", (e) => bodyOf(e) === "hello");
    await contact.acceptRequest(this.myJid);
    return room;
  }

  // --- the WhatsApp side ---------------------------------------------------------------------------

  /** Waits for something `user` received (of `kind`, default messages) that `match` accepts. */
  async received(
    user: WhatsAppUser,
    what: string,
    match: (e: Received) => boolean,
    kind = "message",
  ): Promise<Received> {
    return poll(async () => (await user.received(kind)).find(match), what);
  }

  /** Sends as `user` to the Matrix user; returns the message's origin-id. */
  async from(user: WhatsAppUser, body: Record<string, unknown>): Promise<string> {
    return user.send({ to: this.myJid, ...body });
  }
}

/** Logs `localpart` in at the homeserver and starts a js-sdk client, resolved once it synced. */
async function syncingClient(
  world: DemoWorld,
  localpart: string,
  password: string,
  encrypted: boolean,
): Promise<sdk.MatrixClient> {
  const login = await sdk.createClient({ baseUrl: world.hs.url }).loginRequest({
    type: "m.login.password",
    identifier: { type: "m.id.user", user: localpart },
    password,
  });
  const client = createSdkClient({
    baseUrl: world.hs.url,
    userId: login.user_id,
    accessToken: login.access_token,
    deviceId: login.device_id,
  });
  try {
    const prepared = new Promise<void>((resolve) => {
      const onSync = (state: sdk.SyncState): void => {
        if (state === sdk.SyncState.Prepared) {
          client.off(sdk.ClientEvent.Sync, onSync);
          resolve();
        }
      };
      client.on(sdk.ClientEvent.Sync, onSync);
    });
    if (encrypted) await client.initRustCrypto({ useIndexedDB: false });
    await client.startClient({ initialSyncLimit: 50 });
    await prepared;
    return client;
  } catch (err) {
    stopSdkClient(client);
    throw err;
  }
}
