import { pathToFileURL } from "node:url";
import { filterKnownWarnings } from "../../src/util/warnings.js";
import { EncryptingMatrixUser } from "./crypto-user.js";
import { DemoScript, localJid } from "./steps.js";
import { Transcript, type Out } from "./transcript.js";
import { startDemoWorld, type DemoWorld } from "./world.js";

/** The page's port when free (the same as `simulator.port`'s default), so its address is stable. */
const DEMO_WEB_PORT = 29331;

export interface DemoOptions {
  /** Exit after the script instead of staying up for a Matrix client. */
  readonly once: boolean;
  readonly out: Out;
  /** Without `once`: resolves when the demo should stop (a signal in the terminal). */
  readonly until?: Promise<unknown>;
}

/** Runs the demo; resolves to the exit code (0 when every step passed). */
export async function runDemo(options: DemoOptions): Promise<number> {
  const t = new Transcript(options.out);
  t.line("Starting the test homeserver, the gatekeeper simulator and the bridge (SQLite)...");
  const started = Date.now();
  let world: DemoWorld;
  try {
    // Portals end-to-bridge encrypted, as the bridge's default; the Matrix user a real client.
    world = await startDemoWorld("alice", {
      webPort: DEMO_WEB_PORT,
      config: { matrix_encryption: { default: true } },
    });
  } catch (err) {
    t.line(`FAILED: start-up: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
  t.line(`Started in ${Date.now() - started} ms.`);
  t.line(`The WhatsApp side, in a browser (simulator page): ${world.pageUrl}`);
  let me: EncryptingMatrixUser | undefined;
  try {
    me = await EncryptingMatrixUser.start(world.hs.url, world.user);
    t.line(`Matrix user ${world.user.userId}: matrix-js-sdk with Rust crypto (encrypted portals).`);
    const script = new DemoScript(world, t, me);
    await script.run();
    const passed = t.summary();
    if (!options.once) {
      printHowToTalk(t, world, script);
      await (options.until ?? new Promise(() => undefined));
    }
    return passed ? 0 : 1;
  } finally {
    me?.stop();
    await world.stop();
  }
}

function printHowToTalk(t: Transcript, world: DemoWorld, script: DemoScript): void {
  const admin = `curl -s -H 'Authorization: Bearer ${world.adminToken}' -H 'content-type: application/json'`;
  const to = localJid(world);
  t.line(`
== talk to the simulated WhatsApp users yourself
  WhatsApp side:     ${world.pageUrl}
                     (a browser page: be A, B or a new user; chat with ${to})
  Homeserver:        ${world.hs.url}  (server name ${world.hs.serverName})
  Matrix user:       ${world.user.userId}  password: ${world.user.password}
  Bridge bot:        @${world.config.appservice.bot.localpart}:${world.config.homeserver.domain}
  Simulator admin:   ${world.adminUrl}  token: ${world.adminToken}
  WhatsApp users:    ${script.a.phone} (A), ${script.b.phone} (B), ${script.c.phone} (C, blocked)

  Send a text as A:
    ${admin} -d '{"type":"text","to":"${to}","text":"hello from curl"}' ${world.adminUrl}/users/${script.a.digits}/send
  See what A received:
    ${admin} ${world.adminUrl}/users/${script.a.digits}/received?kind=message
  A group of A, B and you (then send in it: POST .../users/${script.a.digits}/groups/<jid>/send):
    ${admin} -d '{"subject":"Our group","participants":["${script.b.jid}","${to}"]}' ${world.adminUrl}/users/${script.a.digits}/groups
  A new WhatsApp user:
    ${admin} -d '{"phone":"+491704444444"}' ${world.adminUrl}/users

Press Ctrl-C to stop.`);
}

async function main(): Promise<void> {
  filterKnownWarnings();
  const once = process.argv.includes("--once");
  const until = new Promise<void>((resolve) => {
    process.once("SIGINT", () => resolve());
    process.once("SIGTERM", () => resolve());
  });
  const code = await runDemo({ once, out: process.stdout, until });
  process.exit(code);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  void main();
}
