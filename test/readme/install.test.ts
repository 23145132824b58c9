import assert from "node:assert/strict";
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { copyFile, mkdtemp, readdir, readFile, rm, symlink } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { WhatsAppUser } from "../../scripts/demo/clients.js";
import { readRegistration } from "../../src/cli/registration-file.js";
import { loadConfig } from "../../src/config/load.js";
import { createTestHomeserver, type TestHomeserver } from "../homeserver/index.js";
import { api, enc } from "../homeserver/testHelpers.js";

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

  before(async function () {
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
    hs = createTestHomeserver({
      serverName: config.homeserver.domain,
      port: Number(url.port),
      profile: "synapse-current",
      appservices: [registration],
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
    await poll(
      "the bridge to confirm its token with the homeserver",
      async () => (log.includes("the homeserver accepts the appservice token") ? true : undefined),
      90_000,
    );
    assert.doesNotMatch(log, /npm warn/i);
    const token = /#token=([A-Za-z0-9_-]+)/.exec(log)?.[1];
    const adminUrl = /adminApi=(\S+)/.exec(log)?.[1];
    assert.ok(
      token !== undefined && adminUrl !== undefined,
      `the simulator page is logged: ${log}`,
    );
    const admin = (pathname: string) =>
      fetch(`${adminUrl}${pathname}`, { headers: { authorization: `Bearer ${token}` } });

    // A user of the homeserver logs in through the bot.
    const hsUrl = hs.url;
    const alice = hs.registerUser("alice", "correct horse");
    const as = (method: string, pathname: string, body?: unknown) =>
      api(hsUrl, method, pathname, {
        token: alice.accessToken,
        ...(body === undefined ? {} : { body }),
      });
    const bot = `@${registration.sender_localpart}:${config.homeserver.domain}`;
    const created = await as("POST", "/_matrix/client/v3/createRoom", {
      invite: [bot],
      is_direct: true,
      preset: "trusted_private_chat",
    });
    const mgmt = String(created.json["room_id"]);
    let txn = 0;
    const messages = async (room: string) => {
      const answer = await as(
        "GET",
        `/_matrix/client/v3/rooms/${enc(room)}/messages?dir=b&limit=100`,
      );
      const chunk =
        (answer.json["chunk"] as { sender: string; type: string; content: { body?: string } }[]) ??
        [];
      return chunk.filter((e) => e.type === "m.room.message").reverse();
    };
    const botSays = (pattern: RegExp, after: number) =>
      poll(`the bot to say ${pattern}`, async () => {
        const said = (await messages(mgmt)).filter((e) => e.sender === bot).slice(after);
        return said.find((e) => pattern.test(e.content.body ?? ""));
      });
    const say = async (room: string, body: string) => {
      txn += 1;
      const sent = await as(
        "PUT",
        `/_matrix/client/v3/rooms/${enc(room)}/send/m.room.message/t${txn}`,
        {
          msgtype: "m.text",
          body,
        },
      );
      assert.equal(sent.status, 200, JSON.stringify(sent.json));
    };
    const command = async (text: string, expect: RegExp) => {
      const before = (await messages(mgmt)).filter((e) => e.sender === bot).length;
      await say(mgmt, text);
      await botSays(expect, before);
    };
    await botSays(/login/, 0);
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

    // A WhatsApp user writes first: the message request reaches the Matrix user, who joins.
    const bindings = (await (await admin("/bindings")).json()) as { bindings: { jid: string }[] };
    const aliceJid = bindings.bindings[0]?.jid;
    assert.ok(aliceJid, "alice is bound");
    const contact = new WhatsAppUser(adminUrl, token, "+491705550123", "");
    await contact.create();
    await contact.send({ type: "text", to: aliceJid, text: "hello from WhatsApp" });
    const portal = await poll("the message request's invite", async () => {
      const sync = await as("GET", "/_matrix/client/v3/sync?timeout=0");
      const invites = Object.keys(
        (sync.json["rooms"] as { invite?: object } | undefined)?.invite ?? {},
      );
      return invites.find((room) => room !== mgmt);
    });
    const joined = await as("POST", `/_matrix/client/v3/rooms/${enc(portal)}/join`, {});
    assert.equal(joined.status, 200);
    await poll("the WhatsApp message in the portal", async () =>
      (await messages(portal)).find((e) => e.content.body === "hello from WhatsApp"),
    );

    // And back.
    await say(portal, "hello from Matrix");
    await poll("the Matrix message at the WhatsApp user", async () => {
      const received = await contact.received("message");
      return received.find((entry) => JSON.stringify(entry.data).includes("hello from Matrix"));
    });

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
