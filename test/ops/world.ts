import { createServer } from "node:net";
import { MatrixUser, WhatsAppUser, type RoomEvent } from "../../scripts/demo/clients.js";
import { localJid } from "../../scripts/demo/steps.js";
import { startDemoWorld, type DemoWorld, type DemoWorldOptions } from "../../scripts/demo/world.js";

/** Resolves `probe`'s first defined answer; polls, so that a loaded machine only makes it slower. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await probe();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no free port");
  return address.port;
}

/**
 * The demo world (test homeserver, gatekeeper simulator, the real bridge) with a Matrix user who
 * talks to the bot, and helpers for what the operations tests do through it.
 */
export class OpsWorld {
  readonly me: MatrixUser;
  readonly bot: string;
  readonly myJid: string;
  mgmt = "";

  private constructor(readonly world: DemoWorld) {
    this.me = new MatrixUser(world.hs.url, world.user.userId, world.user.accessToken);
    this.bot = `@${world.config.appservice.bot.localpart}:${world.config.homeserver.domain}`;
    this.myJid = localJid(world);
  }

  static async start(localpart: string, options: DemoWorldOptions = {}): Promise<OpsWorld> {
    return new OpsWorld(await startDemoWorld(localpart, options));
  }

  get bridgeUrl(): string {
    return `http://127.0.0.1:${this.world.bridge.port}`;
  }

  whatsapp(phone: string): WhatsAppUser {
    return new WhatsAppUser(
      this.world.adminUrl,
      this.world.adminToken,
      phone,
      `${phone.slice(1)}@${this.world.config.interop.gatekeeper_domain}`,
    );
  }

  async createWhatsAppUsers(...phones: string[]): Promise<WhatsAppUser[]> {
    const users = phones.map((p) => this.whatsapp(p));
    for (const user of users) await user.create();
    return users;
  }

  /** The code the simulated gatekeeper "texted" to a number being verified. */
  async verificationCode(phone: string): Promise<string> {
    const probe = this.whatsapp(phone);
    return waitFor("the verification code", async () => {
      const answer = await probe.request("GET", `/_test/verification-codes/${phone.slice(1)}`);
      return answer.status === 200 ? String(answer.json["code"]) : undefined;
    });
  }

  /** Sends a line to the bot and waits for an answer matching `answer`. */
  async command(text: string, answer: RegExp): Promise<string> {
    if (this.mgmt === "") {
      this.mgmt = await this.me.createDm(this.bot);
      await this.botSays(/login/, 0);
    }
    const before = (await this.me.events(this.mgmt)).length;
    await this.me.send(this.mgmt, "m.room.message", { msgtype: "m.text", body: text });
    return this.botSays(answer, before);
  }

  async botSays(pattern: RegExp, after: number): Promise<string> {
    return waitFor(`the bot to answer ${pattern}`, async () => {
      const events = (await this.me.events(this.mgmt)).slice(after);
      const found = events.find(
        (e) => e.sender === this.bot && pattern.test(String(e.content["body"])),
      );
      return found === undefined ? undefined : String(found.content["body"]);
    });
  }

  /** The bot's login conversation with phone verification. */
  async login(phone: string): Promise<void> {
    await this.command("login", /./);
    await this.command("phone", /phone number/i);
    await this.command(phone, /code/i);
    await this.command(await this.verificationCode(phone), /^Logged in/);
  }

  /** `start-chat` with a number; joins the portal and returns its room id. */
  async startChat(phone: string): Promise<string> {
    const before = new Set(await this.me.invites());
    await this.command(`start-chat ${phone}`, /Invited you|already have a chat/);
    const room = await waitFor("the portal invite", async () =>
      (await this.me.invites()).find((r) => !before.has(r)),
    );
    await this.me.join(room);
    return room;
  }

  async sendText(room: string, body: string): Promise<string> {
    return this.me.send(room, "m.room.message", { msgtype: "m.text", body });
  }

  /** Waits until a room shows an event `match` accepts. */
  async sees(room: string, what: string, match: (e: RoomEvent) => boolean): Promise<RoomEvent> {
    return waitFor(what, async () => (await this.me.events(room)).find(match));
  }

  stop(): Promise<void> {
    return this.world.stop();
  }
}
