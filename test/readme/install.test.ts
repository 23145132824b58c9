import assert from "node:assert/strict";
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { copyFile, mkdtemp, readdir, readFile, rm, symlink } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import * as sdk from "matrix-js-sdk";
import { WhatsAppUser } from "../../scripts/demo/clients.js";
import { readRegistration } from "../../src/cli/registration-file.js";
import { loadConfig } from "../../src/config/load.js";
import { createTestHomeserver, type TestHomeserver } from "../homeserver/index.js";
import {
  loginCryptoClient,
  nextClearEvent,
  within,
  type CryptoClient,
} from "../homeserver/cryptoClient.js";
import { silenceMatrixSdk } from "../homeserver/testHelpers.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const run = promisify(execFile);

/**
 * The commands of a marked block of the README (`<!-- readme-test: NAME` … `<!-- /readme-test -->`
 * around a fenced block), one per line, and the section (`## …`) the block sits in.
 */
export function readmeBlock(readme: string, name: string): { section: string; commands: string[] } {
  const start = readme.indexOf(`<!-- readme-test: ${name}`);
  assert.ok(start >= 0, `README has no readme-test block ${name}`);
  const end = readme.indexOf("<!-- /readme-test -->", start);
  const fenced = /```sh\n([\s\S]*?)```/.exec(readme.slice(start, end));
  assert.ok(fenced, `readme-test block ${name} holds no sh code block`);
  const commands = (fenced[1] ?? "")
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"));
  const headings = [...readme.slice(0, start).matchAll(/^## (.+)$/gm)];
  return { section: headings.at(-1)?.[1] ?? "", commands };
}

async function portFree(port: number): Promise<boolean> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

async function poll<T>(what: string, check: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

describe("the README's install path", function () {
  this.timeout(300_000);
  let checkout: string;
  let hs: TestHomeserver | undefined;
  let bridge: ChildProcess | undefined;
  let alice: CryptoClient | undefined;

  before(async function () {
    silenceMatrixSdk();
    // bin/ runs the build: make it match the sources under test.
    await run("npm", ["run", "-s", "build"], { cwd: ROOT });
    // A checkout after `npm ci` in a temporary directory: the README's relative paths land here.
    checkout = await mkdtemp(path.join(tmpdir(), "mwi-readme-"));
    await copyFile(path.join(ROOT, "package.json"), path.join(checkout, "package.json"));
    // (npx runs the package's prepare step, tsc, on its first run in a checkout: the sources too.)
    for (const name of await readdir(ROOT)) {
      if ([".git", "data", "package.json"].includes(name)) continue;
      await symlink(path.join(ROOT, name), path.join(checkout, name));
    }
  });
  after(async function () {
    alice?.stop();
    if (bridge?.pid !== undefined && bridge.exitCode === null && bridge.signalCode === null) {
      try {
        process.kill(-bridge.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    await hs?.stop();
    await rm(checkout, { recursive: true, force: true });
  });

  it("the install, registration and run commands, as written, bridge a message each way", async function () {
    const readme = await readFile(path.join(ROOT, "README.md"), "utf8");
    const install = readmeBlock(readme, "install");
    const give = readmeBlock(readme, "give-to-homeserver");
    const start = readmeBlock(readme, "run");
    assert.equal(install.section, "Running it");
    assert.equal(start.section, "Running it");
    assert.equal(give.section, "Registering with Synapse");
    assert.equal(start.commands.length, 1, "one command starts the bridge");

    for (const command of install.commands) {
      const result = await run("sh", ["-c", command], { cwd: checkout }).catch(
        (err: { code?: number; stderr?: string }) => err,
      );
      assert.ok(
        !("code" in result) || result.code === undefined,
        `${command}: ${JSON.stringify(result)}`,
      );
      assert.doesNotMatch(String(result.stderr ?? ""), /npm warn/i, command);
    }

    // Synapse is played by the test homeserver at the config's address, given the file the
    // README copies for Synapse.
    const config = await loadConfig(path.join(checkout, "data/config.yaml"));
    const url = new URL(config.homeserver.url);
    assert.match(url.hostname, /^(localhost|127\.0\.0\.1)$/, "the README's homeserver is local");
    const copied = /\bcp\s+(\S+)\s+\S+/.exec(give.commands[0] ?? "");
    assert.ok(
      copied,
      `the README copies the registration for Synapse: ${give.commands.join("; ")}`,
    );
    const registration = await readRegistration(path.join(checkout, copied[1] ?? ""));
    for (const port of [Number(url.port), config.appservice.port, config.simulator.port]) {
      assert.ok(await portFree(port), `port ${port} is taken: the README test needs it`);
    }
    // The test homeserver pushes to-device events and key counts (MSC2409/MSC3202) as Synapse does
    // with the experimental_features the README's Synapse section sets, and only then: the
    // bridge's default `receive: push` needs nothing else.
    const synapse = readme.slice(
      readme.indexOf("## Registering with Synapse"),
      readme.indexOf("\n## ", readme.indexOf("## Registering with Synapse") + 1),
    );
    const pushes = [
      "msc2409_to_device_messages_enabled",
      "msc3202_transaction_extensions",
      "msc3202_device_masquerading",
    ].every((flag) => new RegExp(`^\\s*${flag}: true$`, "m").test(synapse));
    hs = createTestHomeserver({
      serverName: config.homeserver.domain,
      port: Number(url.port),
      profile: "synapse-current",
      appservices: [registration],
      appserviceCryptoPushes: pushes,
      retryInitialMs: 50,
      retryMaxMs: 500,
    });
    await hs.start();

    // The run command, in the background as an admin leaves it running; its own process group
    // so that stopping it reaches npm, the shell and the bridge.
    let log = "";
    bridge = spawn("sh", ["-c", start.commands[0] ?? ""], {
      cwd: checkout,
      detached: true,
      stdio: ["ignore", "ignore", "pipe"],
    });
    bridge.stderr?.on("data", (chunk: Buffer) => (log += chunk.toString()));
    // Both lines, whichever comes first: the simulator page is logged as the connector starts,
    // which with encryption on waits for the crypto store, after the token check.
    await poll(
      "the bridge to confirm its token with the homeserver and log the simulator page",
      async () =>
        log.includes("the homeserver accepts the appservice token") && /adminApi=\S+\s/.test(log)
          ? true
          : undefined,
      90_000,
    );
    assert.doesNotMatch(log, /npm warn/i);
    assert.match(log, /Matrix encryption: .* mode=push default=true/, "encrypted portals, pushed");
    const token = /#token=([A-Za-z0-9_-]+)/.exec(log)?.[1];
    const adminUrl = /adminApi=(\S+)/.exec(log)?.[1];
    assert.ok(
      token !== undefined && adminUrl !== undefined,
      `the simulator page is logged: ${log}`,
    );
    const admin = (pathname: string) =>
      fetch(`${adminUrl}${pathname}`, { headers: { authorization: `Bearer ${token}` } });

    // A user of the homeserver, with a client that does end-to-end encryption as a newcomer's
    // Element does (matrix-js-sdk with its Rust crypto), logs in through the bot.
    hs.registerUser("alice", "correct horse");
    alice = await loginCryptoClient(hs.url, {
      user: "alice",
      password: "correct horse",
      deviceName: "Element",
    });
    const client = alice.client;
    const bot = `@${registration.sender_localpart}:${config.homeserver.domain}`;
    const { room_id: mgmt } = await client.createRoom({
      invite: [bot],
      is_direct: true,
      preset: sdk.Preset.TrustedPrivateChat,
    });
    const timeline = (room: string) =>
      (client.getRoom(room)?.getLiveTimeline().getEvents() ?? []).filter((e) => e.status === null);
    const botSays = (pattern: RegExp, after = 0) =>
      poll(`the bot to say ${pattern}`, async () =>
        timeline(mgmt)
          .slice(after)
          .find((e) => e.getSender() === bot && pattern.test(String(e.getContent()["body"]))),
      );
    // The bot's first answer after the command (an earlier command's late answer is skipped).
    const command = async (text: string, expect: RegExp) => {
      const { event_id: sent } = await client.sendTextMessage(mgmt, text);
      const at = await poll(`"${text}" in the management room`, async () => {
        const index = timeline(mgmt).findIndex((e) => e.getId() === sent);
        return index < 0 ? undefined : index;
      });
      await botSays(expect, at + 1);
    };
    await botSays(/login/);
    const phone = "+491700000001";
    await command("login", /phone/);
    await command("phone", /phone number/i);
    await command(phone, /code/i);
    const code = await poll("the verification code", async () => {
      const answer = await admin(`/_test/verification-codes/${phone.slice(1)}`);
      return answer.status === 200
        ? String(((await answer.json()) as { code: unknown }).code)
        : undefined;
    });
    await command(code, /^Logged in/);

    // A WhatsApp user writes first: the message request reaches the Matrix user, who joins the
    // portal, encrypted as the bridge creates it by default.
    const bindings = (await (await admin("/bindings")).json()) as { bindings: { jid: string }[] };
    const aliceJid = bindings.bindings[0]?.jid;
    assert.ok(aliceJid, "alice is bound");
    const contact = new WhatsAppUser(adminUrl, token, "+491705550123", "");
    await contact.create();
    await contact.send({ type: "text", to: aliceJid, text: "hello from WhatsApp" });
    const portal = await poll(
      "the message request's invite",
      async () =>
        client
          .getRooms()
          .find((r) => r.roomId !== mgmt && r.getMyMembership() === sdk.KnownMembership.Invite)
          ?.roomId,
    );
    await client.joinRoom(portal);
    // The client sends encrypted only once its sync holds the joined room's m.room.encryption.
    await poll("the joined portal in the client's sync", async () =>
      client.getRoom(portal)?.getMyMembership() === sdk.KnownMembership.Join ? true : undefined,
    );
    assert.equal(client.isRoomEncrypted(portal), true, "the portal is encrypted");
    const fromWhatsApp = await within(
      nextClearEvent(client, portal, (e) => e.getContent()["body"] === "hello from WhatsApp"),
      30_000,
      "the WhatsApp message, decrypted, in the portal",
    );
    assert.equal(fromWhatsApp.getWireType(), "m.room.encrypted");

    // And back, encrypted by the client.
    await client.sendTextMessage(portal, "hello from Matrix");
    await poll("the Matrix message at the WhatsApp user", async () => {
      const received = await contact.received("message");
      return received.find((entry) => JSON.stringify(entry.data).includes("hello from Matrix"));
    });
    const stored = hs.inspectRoom(portal);
    for (const text of ["hello from WhatsApp", "hello from Matrix"]) {
      assert.deepEqual(stored.find(text), [], `the homeserver stores "${text}" only encrypted`);
    }

    // Stopped as an admin would: Ctrl-C reaches the whole process group (npm, the shell, the
    // bridge); the bridge stops gracefully and says so.
    const exited = new Promise<void>((resolve) => bridge?.once("exit", () => resolve()));
    process.kill(-(bridge.pid ?? 0), "SIGINT");
    await exited;
    await poll("the bridge to stop", async () =>
      /\bINFO {2}stopped\b/.test(log) ? true : undefined,
    );
  });
});
