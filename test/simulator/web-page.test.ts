import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import * as sdk from "matrix-js-sdk";
import { solidPng } from "../../scripts/demo/png.js";
import { E2e, eventually, MATRIX_PHONE } from "../e2e/harness.js";

const CHROMIUM = "/usr/bin/chromium";

/**
 * For a mocha `before` hook: skips the suite when Debian's chromium is not installed, unless
 * `REQUIRE_CHROMIUM` is set (CI), where a missing browser is a failure.
 */
function skipUnlessChromium(context: Mocha.Context): void {
  if (existsSync(CHROMIUM)) return;
  const message = `chromium not found at ${CHROMIUM} (apt-get install chromium)`;
  const required = process.env["REQUIRE_CHROMIUM"];
  if (required !== undefined && required !== "" && required !== "0") {
    throw new Error(`${message}, and REQUIRE_CHROMIUM is set`);
  }
  process.stderr.write(`skipping the simulator page's browser tests: ${message}\n`);
  context.skip();
}

/** Text of every element matching `selector`, as the page shows it. */
async function texts(page: Page, selector: string): Promise<string[]> {
  return page.$$eval(selector, (nodes) => nodes.map((n) => n.textContent ?? ""));
}

async function until<T>(what: string, check: () => Promise<T | undefined>): Promise<T> {
  return eventually(check, what);
}

/**
 * The simulator page in a real headless Chromium (Debian's, driven over the DevTools protocol by
 * puppeteer-core), against the real bridge, the test homeserver and a matrix-js-sdk user.
 */
describe("simulator page: playing the WhatsApp side in a browser", function () {
  this.timeout(120_000);
  let e: E2e;
  let browser: Browser;
  let page: Page;
  let profile: string;
  /** The portal of the chat between the page's user and the Matrix user. */
  let portal = "";
  /** Script errors and console errors (a Content-Security-Policy violation is one). */
  const problems: string[] = [];
  const pageUrl = () => e.world.pageUrl;

  before(async function () {
    skipUnlessChromium(this);
    e = await E2e.start();
    profile = await mkdtemp(path.join(tmpdir(), "chromium-profile-"));
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      userDataDir: profile,
      headless: true,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
      ],
    });
    page = await browser.newPage();
    await page.setViewport({ width: 1200, height: 800 });
    page.on("pageerror", (err) => problems.push(`page error: ${String(err)}`));
    page.on("console", (message) => {
      if (message.type() === "error")
        problems.push(`console: ${message.text()} ${message.location().url ?? ""}`);
    });
  });
  after(async function () {
    await browser?.close();
    if (profile !== undefined) await rm(profile, { recursive: true, force: true });
    await e?.stop();
  });

  it("refuses a wrong token and an address without one, and shows no data", async function () {
    for (const url of [pageUrl().replace(/#token=.*$/, "#token=wrong"), pageUrl().split("#")[0]]) {
      await page.goto(url ?? "");
      await page.waitForSelector("#refused:not([hidden])");
      assert.match((await texts(page, "#refused-reason"))[0] ?? "", /token/);
      assert.equal(
        await page.$eval("#app", (n) => (n as unknown as { hidden: boolean }).hidden),
        true,
      );
      assert.deepEqual(await texts(page, "#user-select option"), []);
    }
  });

  it("shows the verification code of a login in progress, which logs the Matrix user in", async function () {
    await page.goto(pageUrl());
    await page.waitForSelector("#app:not([hidden])");
    const { room_id: mgmt } = await e.client.createRoom({
      invite: [e.bot],
      is_direct: true,
      preset: sdk.Preset.TrustedPrivateChat,
    });
    e.mgmt = mgmt;
    await e.botSays(mgmt, /login/);
    await e.command("login", /phone/);
    await e.command("phone", /phone number/i);
    await e.command(MATRIX_PHONE, /code/i);
    const code = await until("the code on the page", async () => {
      const shown = await page.$(`#codes li[data-phone="${MATRIX_PHONE}"] .code`);
      return shown === null ? undefined : ((await shown.evaluate((n) => n.textContent)) ?? "");
    });
    assert.match(code, /^[0-9]{4,8}$/);
    await e.command(code, /^Logged in/);
  });

  it("a WhatsApp user created in the page writes first; the text reaches the js-sdk user", async function () {
    await page.type("#new-phone", "+491705555555");
    await page.click("#create-user");
    await until("the new user selected", async () =>
      (await page.$eval("#user-select", (n) => (n as unknown as { value: string }).value)) ===
      "491705555555"
        ? true
        : undefined,
    );
    // The bridge user is offered among the logged-in users; it is the JID the page chats with.
    await until("the bridge user offered", async () =>
      (
        await page.$$eval("#bindings option", (o) => o.map((x) => x.getAttribute("value")))
      ).includes(e.myJid)
        ? true
        : undefined,
    );
    await page.type("#new-chat-jid", e.myJid);
    await page.click("#open-chat");
    const before = new Set(e.invites());
    await page.type("#composer-text", "hello <b>from</b> the page");
    await page.click("#send");
    const room = await e.newInvite(before, "the message request from the page's user");
    await e.client.joinRoom(room);
    portal = room;
    await e.ghostSays(room, "the page's text", (c) => c["body"] === "hello <b>from</b> the page");
    // The page shows its own message as sent, the markup as text (textContent, never HTML).
    const mine = await until("the sent bubble", async () => {
      const shown = await texts(page, "#messages .msg.mine .text");
      return shown.includes("hello <b>from</b> the page") ? shown : undefined;
    });
    assert.ok(mine.length >= 1);
    assert.equal(await page.$("#messages b"), null);
  });

  it("the js-sdk user's answer, a reaction and a reply appear in the page; the page reacts and replies back", async function () {
    const room = portal;
    const answer = await e.text(room, "hi page, Matrix here <script>x</script>");
    const bubble = await until("the Matrix text on the page", async () => {
      const handle = await page.$$("#messages .msg:not(.mine)");
      for (const h of handle) {
        const text = await h.$eval(".text", (n) => n.textContent).catch(() => null);
        if (text === "hi page, Matrix here <script>x</script>") return h;
      }
      return undefined;
    });
    assert.equal(await page.$("#messages script"), null);

    // Mark read from the page: a read receipt on the Matrix user's message (the latest event).
    await page.click("#mark-read");
    await until("the read receipt on Matrix", async () => {
      const r = e.client.getRoom(room);
      const ghost = e.ghostOf({ digits: "491705555555" } as never);
      return r?.getEventReadUpTo(ghost) === answer ? true : undefined;
    });

    // React 👍 from the page: the js-sdk user sees an m.reaction on their message.
    await bubble.$eval('button[data-reaction="👍"]', (b) =>
      (b as unknown as { click(): void }).click(),
    );
    await e.sees(
      room,
      "the page's reaction",
      (ev) =>
        ev.getType() === "m.reaction" &&
        ev.getContent()["m.relates_to"]?.["event_id"] === answer &&
        ev.getContent()["m.relates_to"]?.["key"] === "👍",
    );

    // Reply from the page: m.in_reply_to names the Matrix message.
    await bubble.$eval(".actions button", (b) => (b as unknown as { click(): void }).click());
    await page.type("#composer-text", "replying in the page");
    await page.click("#send");
    const reply = await e.ghostSays(room, "the page's reply", (c) =>
      String(c["body"]).includes("replying in the page"),
    );
    assert.equal(reply.getContent()["m.relates_to"]?.["m.in_reply_to"]?.["event_id"], answer);
  });

  it("an image and a voice note sent from the page arrive on Matrix; a Matrix image shows in the page", async function () {
    const dir = await mkdtemp(path.join(tmpdir(), "page-files-"));
    try {
      const png = solidPng(8, 6, [200, 30, 30]);
      await writeFile(path.join(dir, "square.png"), png);
      await page.type("#composer-text", "a red square");
      const attach = await page.$("#attach");
      await attach?.uploadFile(path.join(dir, "square.png"));
      const image = await e.ghostSays(
        portal,
        "the page's image",
        (c) => c["msgtype"] === "m.image",
      );
      const ic = image.getContent();
      assert.equal(ic["body"], "a red square", "the text field became the caption");
      assert.equal(ic["info"]?.mimetype, "image/png");
      assert.deepEqual([ic["info"]?.w, ic["info"]?.h], [8, 6], "the page read the image's size");
      assert.deepEqual(await e.download(String(ic["url"])), png);

      const ogg = randomBytes(1500);
      await writeFile(path.join(dir, "note.ogg"), ogg);
      const voiceFile = await page.$("#voice-file");
      await voiceFile?.uploadFile(path.join(dir, "note.ogg"));
      const voice = await e.ghostSays(
        portal,
        "the page's voice note",
        (c) => c["msgtype"] === "m.audio",
      );
      const vc = voice.getContent() as Record<string, unknown>;
      assert.ok(vc["org.matrix.msc3245.voice"], "marked as a voice message");
      assert.deepEqual(await e.download(String(vc["url"])), ogg);

      const blue = solidPng(5, 3, [20, 20, 220]);
      const mxc = await e.upload(blue, "image/png", "blue.png");
      await e.send(portal, {
        msgtype: "m.image",
        body: "blue.png",
        url: mxc,
        info: { mimetype: "image/png", size: blue.length, w: 5, h: 3 },
      });
      const show = await until("the Matrix image's bubble", async () => {
        for (const h of await page.$$("#messages .msg:not(.mine) .media")) {
          if (((await h.evaluate((n) => n.textContent)) ?? "").includes("blue.png")) {
            return (await h.$("button")) ?? undefined;
          }
        }
        return undefined;
      });
      // Clicked in the page's script: the list re-renders each second, which may detach a handle.
      await show.evaluate((b) => (b as unknown as { click(): void }).click());
      const width = await until("the decrypted image shown", async () => {
        const img = await page.$("#messages .msg:not(.mine) .media img");
        const w = await img?.evaluate(
          (n) => (n as unknown as { naturalWidth: number }).naturalWidth,
        );
        return w === undefined || w === 0 ? undefined : w;
      });
      assert.equal(width, 5);
      // Every message once, though sends and the timer poll the same chat at the same time.
      const ids = await page.$$eval("#messages .msg[data-id]", (n) =>
        n.map((x) => x.getAttribute("data-id")),
      );
      assert.equal(new Set(ids).size, ids.length, `a message shown twice: ${ids.join(" ")}`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    if (process.env["SIMULATOR_PAGE_SCREENSHOT"] !== undefined) {
      await page.screenshot({ path: process.env["SIMULATOR_PAGE_SCREENSHOT"] as `${string}.png` });
    }
  });

  it("a chat request from Matrix shows as a request in the page; accepting it tells the Matrix user; Block blocks", async function () {
    await page.type("#new-phone", "+491707777777");
    await page.click("#create-user");
    await until("the second user selected", async () =>
      (await page.$eval("#user-select", (n) => (n as unknown as { value: string }).value)) ===
      "491707777777"
        ? true
        : undefined,
    );
    const before = new Set(e.invites());
    await e.command("start-chat +491707777777", /^Invited you/);
    const room = await e.newInvite(before, "the new portal");
    await e.client.joinRoom(room);
    await e.text(room, "may I write to you?");
    const item = await until("the request in the chat list", async () => {
      for (const li of await page.$$("#chat-list li")) {
        const label = (await li.evaluate((n) => n.textContent)) ?? "";
        if (label.includes(e.myJid) && label.includes("request")) return li;
      }
      return undefined;
    });
    await item.evaluate((li) => (li as unknown as { click(): void }).click());
    await page.waitForSelector("#accept:not([hidden])");
    await until("the request's text in the page", async () =>
      (await texts(page, "#messages .msg .text")).includes("may I write to you?")
        ? true
        : undefined,
    );
    await page.click("#accept");
    await e.botSays(room, /accepted your chat request/);
    await page.waitForSelector("#accept", { hidden: true });

    // Blocking from the page blocks the bridge user at the gatekeeper (§16.1).
    await page.click("#block");
    await page.waitForSelector("#unblock:not([hidden])");
    assert.match((await texts(page, "#chat-state"))[0] ?? "", /blocked/);
    const blocked = await e.world.sim.gatekeeper.services.abuse.blocked(
      "491707777777@wa.example" as never,
    );
    assert.deepEqual(blocked, [e.myJid]);
  });

  it("a chat request declined in the page stays declined at the gatekeeper", async function () {
    await page.type("#new-phone", "+491708888888");
    await page.click("#create-user");
    await until("the third user selected", async () =>
      (await page.$eval("#user-select", (n) => (n as unknown as { value: string }).value)) ===
      "491708888888"
        ? true
        : undefined,
    );
    const before = new Set(e.invites());
    await e.command("start-chat +491708888888", /^Invited you/);
    const room = await e.newInvite(before, "the third portal");
    await e.client.joinRoom(room);
    await e.text(room, "buy my course");
    const item = await until("the request in the chat list", async () => {
      for (const li of await page.$$("#chat-list li")) {
        if (((await li.evaluate((n) => n.textContent)) ?? "").includes("request")) return li;
      }
      return undefined;
    });
    await item.evaluate((li) => (li as unknown as { click(): void }).click());
    await page.waitForSelector("#decline:not([hidden])");
    await page.click("#decline");
    await until("the declined state on the page", async () =>
      /request declined/.test((await texts(page, "#chat-state"))[0] ?? "") ? true : undefined,
    );
    const conversation = await e.world.sim.gatekeeper.conversations.get(
      e.myJid as never,
      "491708888888@wa.example" as never,
    );
    assert.equal(conversation?.state, "declined");
  });

  it("ran without a script error or a Content-Security-Policy violation", function () {
    // The refused token's 401 answers are expected console errors; nothing else is.
    const unexpected = problems.filter((p) => !/status of 401/.test(p));
    assert.deepEqual(unexpected, []);
  });
});
