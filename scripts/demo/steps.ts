import { localpartFromMatrixUserId } from "../../src/interop/codec/jid.js";
import { matrixUserId } from "../../src/util/ids.js";
import { MatrixUser, WhatsAppUser, type Received, type RoomEvent } from "./clients.js";
import type { EncryptingMatrixUser } from "./crypto-user.js";
import { solidPng } from "./png.js";
import type { Transcript } from "./transcript.js";
import type { DemoWorld } from "./world.js";

export const MATRIX_PHONE = "+491700000001";
export const PHONE_A = "+491701111111";
export const PHONE_B = "+491702222222";
export const PHONE_C = "+491703333333";

/** The names of the steps, in order: the test checks the transcript for each. */
export const STEP_NAMES = [
  "login with phone verification",
  "start-chat with WhatsApp user A",
  "formatted text both ways",
  "a reply both ways",
  "a reaction both ways",
  "an edit both ways",
  "a delete both ways",
  "read receipts both ways",
  "an image both ways",
  "a voice note from A",
  "a message request from B, accepted",
  "a message request from C, declined and blocked",
  "safety number check",
  "a WhatsApp group with A and B: messages both ways",
] as const;

/** The Matrix user's JID on the WhatsApp side (§5.1). */
export function localJid(world: DemoWorld): string {
  const localpart = localpartFromMatrixUserId(matrixUserId(world.user.userId));
  return `${localpart}@${world.config.interop.component_domain}`;
}

function hasKind(entry: Received, kind: string): boolean {
  const content = entry.data["content"] as { kind: string }[] | undefined;
  return content?.some((c) => c.kind === kind) ?? false;
}

function shorten(text: string): string {
  const flat = text.replace(/\s+/g, " ");
  return flat.length > 90 ? `${flat.slice(0, 87)}...` : flat;
}

/** The scripted conversation; each step prints both sides and never stops the script. */
export class DemoScript {
  readonly me: MatrixUser | EncryptingMatrixUser;
  readonly a: WhatsAppUser;
  readonly b: WhatsAppUser;
  readonly c: WhatsAppUser;
  private readonly bot: string;
  private readonly myJid: string;
  private mgmt = "";
  private portal = "";
  /** The last Matrix message of mine and its origin-id on the WhatsApp side. */
  private mine = { eventId: "", originId: "" };
  /** The last WhatsApp message of A and its Matrix event id. */
  private theirs = { eventId: "", originId: "" };

  constructor(
    world: DemoWorld,
    private readonly t: Transcript,
    /** The Matrix user's client; a plain HTTP one (no encryption) when not given. */
    me?: EncryptingMatrixUser,
  ) {
    const { config } = world;
    this.me = me ?? new MatrixUser(world.hs.url, world.user.userId, world.user.accessToken);
    const wa = (phone: string) =>
      new WhatsAppUser(
        world.adminUrl,
        world.adminToken,
        phone,
        `${phone.slice(1)}@${config.interop.gatekeeper_domain}`,
      );
    this.a = wa(PHONE_A);
    this.b = wa(PHONE_B);
    this.c = wa(PHONE_C);
    this.bot = `@${config.appservice.bot.localpart}:${config.homeserver.domain}`;
    this.myJid = localJid(world);
  }

  async run(): Promise<void> {
    const steps: [string, () => Promise<void>][] = [
      [STEP_NAMES[0], () => this.login()],
      [STEP_NAMES[1], () => this.startChat()],
      [STEP_NAMES[2], () => this.formatted()],
      [STEP_NAMES[3], () => this.reply()],
      [STEP_NAMES[4], () => this.reaction()],
      [STEP_NAMES[5], () => this.edit()],
      [STEP_NAMES[6], () => this.remove()],
      [STEP_NAMES[7], () => this.receipts()],
      [STEP_NAMES[8], () => this.image()],
      [STEP_NAMES[9], () => this.voice()],
      [STEP_NAMES[10], () => this.requestAccepted()],
      [STEP_NAMES[11], () => this.requestDeclined()],
      [STEP_NAMES[12], () => this.verify()],
      [STEP_NAMES[13], () => this.group()],
    ];
    for (const [name, run] of steps) await this.t.step(name, run);
  }

  // --- helpers -------------------------------------------------------------------------------

  private async botSays(room: string, pattern: RegExp, after: number): Promise<string> {
    const body = await this.t.waitFor(`the bot to answer ${pattern}`, async () => {
      const events = (await this.me.events(room)).slice(after);
      const found = events.find(
        (e) => e.sender === this.bot && pattern.test(String(e.content["body"])),
      );
      return found === undefined ? undefined : String(found.content["body"]);
    });
    this.t.arrived("matrix", `bot: ${shorten(body)}`);
    return body;
  }

  private async command(text: string, answer: RegExp): Promise<string> {
    const before = (await this.me.events(this.mgmt)).length;
    this.t.matrix(`${this.me.userId} -> bot: ${text}`);
    await this.me.send(this.mgmt, "m.room.message", { msgtype: "m.text", body: text });
    return this.botSays(this.mgmt, answer, before);
  }

  /** Waits for a Matrix event in a room that `match` accepts. */
  private async matrixSees(
    room: string,
    what: string,
    match: (e: RoomEvent) => boolean,
  ): Promise<RoomEvent> {
    return this.t.waitFor(what, async () => (await this.me.events(room)).find(match));
  }

  /** Waits for something a WhatsApp user received that `match` accepts. */
  private async whatsappGets(
    user: WhatsAppUser,
    kind: string,
    what: string,
    match: (e: Received) => boolean,
  ): Promise<Received> {
    return this.t.waitFor(what, async () => (await user.received(kind)).find(match));
  }

  private async sendText(text: string, extra: Record<string, unknown> = {}): Promise<string> {
    this.t.matrix(`${this.me.userId} sends: ${shorten(text)}`);
    return this.me.send(this.portal, "m.room.message", { msgtype: "m.text", body: text, ...extra });
  }

  /** My text arrives at A; remembers it as my last message. */
  private async aReceives(marker: string, what: string): Promise<Received> {
    const got = await this.whatsappGets(this.a, "message", what, (e) =>
      JSON.stringify(e.data["content"]).includes(marker),
    );
    this.t.arrived(
      "whatsapp",
      `${this.a.phone} received: ${shorten(JSON.stringify(got.data["content"]))}`,
    );
    return got;
  }

  private async fromA(body: Record<string, unknown>, describe: string): Promise<string> {
    this.t.whatsapp(`${this.a.phone} sends ${describe}`);
    return this.a.send({ to: this.myJid, ...body });
  }

  private async portalSees(what: string, match: (e: RoomEvent) => boolean): Promise<RoomEvent> {
    const event = await this.matrixSees(
      this.portal,
      what,
      (e) => e.sender !== this.me.userId && match(e),
    );
    const body = event.content["formatted_body"] ?? event.content["body"] ?? event.content;
    this.t.arrived(
      "matrix",
      `${event.sender} ${event.type}${event.wire === "m.room.encrypted" ? " (encrypted)" : ""}: ` +
        shorten(typeof body === "string" ? body : JSON.stringify(body)),
    );
    return event;
  }

  // --- steps ---------------------------------------------------------------------------------

  private async login(): Promise<void> {
    for (const user of [this.a, this.b, this.c]) {
      await user.create();
      this.t.whatsapp(`simulated WhatsApp user ${user.phone} exists`);
    }
    this.t.matrix(`${this.me.userId} opens a DM with ${this.bot}`);
    this.mgmt = await this.me.createDm(this.bot);
    await this.botSays(this.mgmt, /login/, 0);
    await this.command("login", /./);
    await this.command("phone", /phone number/i);
    await this.command(MATRIX_PHONE, /code/i);
    const digits = MATRIX_PHONE.slice(1);
    const code = await this.t.waitFor("the verification code", async () => {
      const answer = await this.a.request("GET", `/_test/verification-codes/${digits}`);
      return answer.status === 200 ? String(answer.json["code"]) : undefined;
    });
    this.t.whatsapp(`the gatekeeper sent code ${code} to ${MATRIX_PHONE}`);
    await this.command(code, /^Logged in/);
  }

  private async startChat(): Promise<void> {
    const before = new Set(await this.me.invites());
    await this.command(`start-chat ${this.a.phone}`, /Invited you|already have a chat/);
    this.portal = await this.t.waitFor("the portal invite", async () =>
      (await this.me.invites()).find((room) => !before.has(room)),
    );
    await this.me.join(this.portal);
    this.t.matrix(`${this.me.userId} joined the portal ${this.portal}`);
    if ("isEncrypted" in this.me) {
      const encrypted = this.me.isEncrypted(this.portal);
      this.t.matrix(
        encrypted
          ? "the portal is end-to-bridge encrypted (Megolm): the homeserver stores ciphertext only"
          : "the portal is NOT encrypted",
      );
      if (!encrypted) throw new Error("the portal was created without encryption");
    }
  }

  private async formatted(): Promise<void> {
    this.mine.eventId = await this.sendText("Hello **A**, this is _Matrix_", {
      format: "org.matrix.custom.html",
      formatted_body: "Hello <strong>A</strong>, this is <em>Matrix</em>",
    });
    const got = await this.aReceives("this is", "my first message at A");
    this.mine.originId = String(got.data["originId"]);
    await this.a.acceptRequest(this.myJid);
    this.t.whatsapp(`${this.a.phone} accepts the chat request`);
    this.theirs.originId = await this.fromA(
      { type: "text", text: "Hi! *bold* and _italic_ from WhatsApp" },
      "a formatted text",
    );
    const event = await this.portalSees("A's formatted text", (e) =>
      String(e.content["body"]).includes("from WhatsApp"),
    );
    this.theirs.eventId = event.event_id;
  }

  private async reply(): Promise<void> {
    this.mine.eventId = await this.sendText("replying on Matrix", {
      "m.relates_to": { "m.in_reply_to": { event_id: this.theirs.eventId } },
    });
    const got = await this.aReceives("replying on Matrix", "my reply at A");
    if (!hasKind(got, "reply")) throw new Error("A received the text without its reply reference");
    this.mine.originId = String(got.data["originId"]);
    this.theirs.originId = await this.fromA(
      {
        type: "reply",
        text: "replying on WhatsApp",
        replyTo: { id: this.mine.originId, author: this.myJid },
      },
      "a reply to my message",
    );
    const event = await this.portalSees("A's reply", (e) =>
      String(e.content["body"]).includes("replying on WhatsApp"),
    );
    const relates = event.content["m.relates_to"] as Record<string, unknown> | undefined;
    if (relates?.["m.in_reply_to"] === undefined) {
      throw new Error(`A's reply has no m.in_reply_to: ${JSON.stringify(event.content)}`);
    }
    this.theirs.eventId = event.event_id;
  }

  private async reaction(): Promise<void> {
    this.t.matrix(`${this.me.userId} reacts 👍 to A's reply`);
    await this.me.send(this.portal, "m.reaction", {
      "m.relates_to": { rel_type: "m.annotation", event_id: this.theirs.eventId, key: "👍" },
    });
    await this.whatsappGets(this.a, "message", "my reaction at A", (e) => hasKind(e, "reactions"));
    this.t.arrived("whatsapp", `${this.a.phone} received the reaction 👍`);
    await this.fromA(
      {
        type: "reaction",
        target: { id: this.mine.originId, author: this.myJid },
        reactions: ["❤️"],
      },
      "a ❤️ reaction to my reply",
    );
    await this.portalSees("A's reaction", (e) => e.type === "m.reaction");
  }

  private async edit(): Promise<void> {
    this.t.matrix(`${this.me.userId} edits their reply`);
    await this.me.send(this.portal, "m.room.message", {
      msgtype: "m.text",
      body: "* replying on Matrix (edited)",
      "m.new_content": { msgtype: "m.text", body: "replying on Matrix (edited)" },
      "m.relates_to": { rel_type: "m.replace", event_id: this.mine.eventId },
    });
    await this.aReceives("(edited)", "my edit at A");
    await this.fromA(
      { type: "edit", id: this.theirs.originId, text: "replying on WhatsApp (edited)" },
      "an edit of their reply",
    );
    await this.portalSees("A's edit", (e) => {
      const relates = e.content["m.relates_to"] as Record<string, unknown> | undefined;
      return relates?.["rel_type"] === "m.replace";
    });
  }

  private async remove(): Promise<void> {
    const doomed = await this.sendText("this will be deleted");
    const got = await this.aReceives("this will be deleted", "the doomed message at A");
    this.t.matrix(`${this.me.userId} deletes it`);
    await this.me.redact(this.portal, doomed);
    await this.whatsappGets(this.a, "message", "my delete at A", (e) => {
      const content = e.data["content"] as { kind: string; id?: string }[] | undefined;
      return content?.some((c) => c.kind === "retract" && c.id === got.data["originId"]) ?? false;
    });
    this.t.arrived("whatsapp", `${this.a.phone} received the retraction`);
    const theirs = await this.fromA({ type: "text", text: "oops, wrong chat" }, "a text");
    const event = await this.portalSees("A's doomed text", (e) =>
      String(e.content["body"]).includes("wrong chat"),
    );
    await this.fromA({ type: "retract", id: theirs }, "a retraction of it");
    await this.portalSees(
      "A's delete",
      (e) => e.type === "m.room.redaction" && e.redacts === event.event_id,
    );
  }

  private async receipts(): Promise<void> {
    this.t.matrix(`${this.me.userId} reads A's last message`);
    // A's, neither redacted (a redacted encrypted event has no clear type or body any more) nor
    // an edit (a replacement is no message of its own at WhatsApp).
    const latest = (await this.me.events(this.portal)).filter(
      (e) =>
        e.type === "m.room.message" &&
        e.sender !== this.me.userId &&
        e.sender !== this.bot &&
        typeof e.content["body"] === "string" &&
        e.content["m.new_content"] === undefined,
    );
    const last = latest[latest.length - 1];
    if (last === undefined) throw new Error("the portal has no message to read");
    await this.me.readUpTo(this.portal, last.event_id);
    await this.whatsappGets(this.a, "displayed", "the read marker at A", () => true);
    this.t.arrived("whatsapp", `${this.a.phone} sees that the message was read`);
    await this.fromA(
      { type: "displayed", ref: { id: this.mine.originId, author: this.myJid } },
      "a read marker for my reply",
    );
    const readers = await this.t.waitFor("A's read receipt on Matrix", async () => {
      const receipts = await this.me.receipts(this.portal);
      const ghostReads = Object.values(receipts)
        .flat()
        .filter((u) => u !== this.me.userId);
      return ghostReads.length > 0 ? ghostReads : undefined;
    });
    this.t.arrived("matrix", `read receipt from ${readers.join(", ")}`);
  }

  private async image(): Promise<void> {
    const png = solidPng(16, 16, [37, 211, 102]);
    const mxc = await this.me.upload(png, "image/png", "green.png");
    this.t.matrix(`${this.me.userId} sends a ${png.length}-byte PNG (${mxc})`);
    await this.me.send(this.portal, "m.room.message", {
      msgtype: "m.image",
      body: "green.png",
      url: mxc,
      info: { mimetype: "image/png", size: png.length, w: 16, h: 16 },
    });
    await this.whatsappGets(this.a, "message", "my image at A", (e) => hasKind(e, "media"));
    this.t.arrived("whatsapp", `${this.a.phone} received an image`);
    const red = solidPng(8, 8, [220, 40, 40]);
    await this.fromA(
      {
        type: "media",
        kind: "image",
        data: red.toString("base64"),
        mime: "image/png",
        filename: "red.png",
        width: 8,
        height: 8,
      },
      `a ${red.length}-byte PNG`,
    );
    await this.portalSees("A's image", (e) => e.content["msgtype"] === "m.image");
  }

  private async voice(): Promise<void> {
    // Not a real Opus stream: the bridge carries the bytes without decoding them.
    const audio = Buffer.from("OggS demo voice note", "utf8");
    await this.fromA(
      {
        type: "media",
        kind: "audio",
        data: audio.toString("base64"),
        mime: "audio/ogg",
        duration: 3,
        voice: true,
      },
      "a 3 s voice note",
    );
    await this.portalSees(
      "A's voice note",
      (e) => e.content["msgtype"] === "m.audio" && "org.matrix.msc3245.voice" in e.content,
    );
  }

  private async requestFrom(user: WhatsAppUser, text: string): Promise<string> {
    const before = new Set(await this.me.invites());
    this.t.whatsapp(`${user.phone} (unknown to me) sends: ${text}`);
    await user.send({ to: this.myJid, type: "text", text });
    const room = await this.t.waitFor(`the message request from ${user.phone}`, async () =>
      (await this.me.invites()).find((r) => !before.has(r)),
    );
    this.t.arrived("matrix", `invited to a message request room ${room}`);
    return room;
  }

  private async requestAccepted(): Promise<void> {
    const room = await this.requestFrom(this.b, "hello, we met at the conference");
    await this.me.join(room);
    this.t.matrix(`${this.me.userId} joins: accepts the request`);
    await this.matrixSees(room, "B's message in the room", (e) =>
      String(e.content["body"]).includes("conference"),
    );
    await this.botSays(room, /accepted the message request/, 0);
  }

  private async requestDeclined(): Promise<void> {
    const room = await this.requestFrom(this.c, "cheap watches!!!");
    await this.me.leave(room);
    this.t.matrix(`${this.me.userId} rejects the invite: declines the request`);
    await this.command(`block ${this.c.phone}`, /^Blocked/);
  }

  /**
   * A creates a group with B and the Matrix user (§17): the user is invited to its portal (being
   * added by someone else is a message request) and joins; A's group message reaches the portal,
   * and the user's reaches A and B, each through the group's sender keys.
   */
  private async group(): Promise<void> {
    const before = new Set(await this.me.invites());
    this.t.whatsapp(`${this.a.phone} creates the group "Demo group" with ${this.b.phone} and me`);
    const created = await this.a.request("POST", `/users/${this.a.digits}/groups`, {
      subject: "Demo group",
      participants: [this.b.jid, this.myJid],
    });
    if (created.status !== 201) {
      throw new Error(
        `creating the group answered ${created.status}: ${JSON.stringify(created.json)}`,
      );
    }
    const group = String(created.json["jid"]);
    const room = await this.t.waitFor("the group portal invite", async () =>
      (await this.me.invites()).find((r) => !before.has(r)),
    );
    await this.me.join(room);
    this.t.matrix(`${this.me.userId} joins the group portal ${room}`);
    if ("isEncrypted" in this.me && !this.me.isEncrypted(room)) {
      throw new Error("the group portal was created without encryption");
    }
    this.t.whatsapp(`${this.a.phone} sends to the group: hello group`);
    const sent = await this.a.request("POST", `/users/${this.a.digits}/groups/${group}/send`, {
      text: "hello group",
    });
    if (sent.status !== 201) throw new Error(`the group send answered ${sent.status}`);
    const event = await this.matrixSees(
      room,
      "A's group message in the portal",
      (e) => e.sender !== this.me.userId && e.content["body"] === "hello group",
    );
    this.t.arrived("matrix", `${event.sender} in the group: hello group`);
    this.t.matrix(`${this.me.userId} sends to the group: hi both, from Matrix`);
    await this.me.send(room, "m.room.message", { msgtype: "m.text", body: "hi both, from Matrix" });
    for (const user of [this.a, this.b]) {
      await this.whatsappGets(
        user,
        "message",
        `my group message at ${user.phone}`,
        (e) =>
          e.data["group"] === group && JSON.stringify(e.data["content"]).includes("from Matrix"),
      );
      this.t.arrived("whatsapp", `${user.phone} received in the group: hi both, from Matrix`);
    }
  }

  private async verify(): Promise<void> {
    const answer = await this.command(`verify ${this.a.phone}`, /\d{5}/);
    if (!/\d{5}/.test(answer)) throw new Error("no safety number in the answer");
  }
}
