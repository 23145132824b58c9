import type { CommandServices } from "./services.js";
import { UsageError, usageLine, withTerms, type Command } from "./framework.js";

type Cmd = Command<CommandServices>;

const help: Cmd = {
  name: "help",
  args: "",
  description: "List the commands you may use.",
  level: "user",
  minArgs: 0,
  maxArgs: 0,
  async run(ctx) {
    const { commands, network } = ctx.services;
    const lines = commands.permitted(ctx.level).map((c) => {
      const aliases = (c.aliases ?? []).map((a) => `\`${a}\``).join(", ");
      const usage = usageLine(c as Command<unknown>, commands.terms).slice("Usage: ".length);
      const description = withTerms(c.description, commands.terms);
      return `${usage}${aliases === "" ? "" : ` (or ${aliases})`} - ${description}`;
    });
    await ctx.reply(
      [
        `Commands (in a chat with a contact, prefix them with \`${network.commandPrefix}\`; the ` +
          `${network.identifier.noun} may be left out):`,
        ...lines,
      ].join("\n"),
    );
  },
};

const login: Cmd = {
  name: "login",
  args: "",
  description: "Log in: read the security warning, then follow one of {network}'s ways to log in.",
  level: "user",
  minArgs: 0,
  maxArgs: 0,
  async run(ctx) {
    await ctx.reply(await ctx.services.logins.begin(ctx.user));
  },
};

const cancel: Cmd = {
  name: "cancel",
  args: "",
  description: "Cancel a login in progress.",
  level: "user",
  minArgs: 0,
  maxArgs: 0,
  async run(ctx) {
    await ctx.reply(await ctx.services.logins.cancel(ctx.user));
  },
};

const logout: Cmd = {
  name: "logout",
  args: "",
  description:
    "Log out at {network} and delete your keys from the bridge; your chats are kept unless you `clean-up`.",
  level: "user",
  minArgs: 0,
  maxArgs: 0,
  async run(ctx) {
    const { outcome, kept } = await ctx.services.logoutUser(ctx.user);
    if (outcome === "not-logged-in") {
      await ctx.reply("You are not logged in.");
      return;
    }
    // One notice: what happened, and the choice about the chats.
    const network = ctx.services.network.displayName;
    const head =
      outcome === "done"
        ? `Logged out: ${network} was told and your keys were deleted from the bridge.`
        : `Logged out on this bridge, but your ${network} connection could not be loaded to tell ` +
          `${network}; ask the bridge's admin to remove your keys.`;
    const chats =
      kept === 0
        ? ""
        : ` Your ${kept} chat(s) are kept and go on when you log in again with the same ` +
          `${ctx.services.network.identifier.noun}; ` +
          `send \`clean-up\` to leave them and remove them from your ${network} space instead.`;
    await ctx.reply(head + chats + " Send `login` to log in again.");
  },
};

const cleanUp: Cmd = {
  name: "clean-up",
  args: "",
  description: "After `logout`: leave your {network} chats and remove them from your space.",
  level: "user",
  minArgs: 0,
  maxArgs: 0,
  async run(ctx) {
    if (ctx.services.logins.get(ctx.user) !== undefined) {
      await ctx.reply("You are logged in and your chats are in use; send `logout` first.");
      return;
    }
    const left = await ctx.services.cleanUpPortals(ctx.user);
    await ctx.reply(
      left === 0
        ? "There are no chats to clean up."
        : `Left ${left} chat(s) and removed them from your ${ctx.services.network.displayName} space.`,
    );
  },
};

const status: Cmd = {
  name: "status",
  args: "",
  description: "Show whether you are logged in and connected.",
  level: "user",
  minArgs: 0,
  maxArgs: 0,
  async run(ctx) {
    await ctx.reply(await describeLogin(ctx.services, ctx.user));
  },
};

const ping: Cmd = {
  name: "ping",
  args: "",
  description: "Check that the bridge answers.",
  level: "user",
  minArgs: 0,
  maxArgs: 0,
  async run(ctx) {
    await ctx.reply(`Pong. ${await describeLogin(ctx.services, ctx.user)}`);
  },
};

const SETTINGS = {
  "read-receipts": "readReceipts",
  typing: "typingNotifications",
} as const;

const settings: Cmd = {
  name: "settings",
  args: "[read-receipts|typing on|off]",
  description: "Show or change whether your read receipts and typing are sent to contacts.",
  level: "user",
  minArgs: 0,
  maxArgs: 2,
  async run(ctx, args) {
    const users = ctx.services.users;
    const row = await users.ensure(ctx.user);
    if (args.length === 0) {
      await ctx.reply(
        `read-receipts: ${row.readReceipts ? "on" : "off"}; typing: ${row.typingNotifications ? "on" : "off"}. ` +
          "Change with e.g. `settings typing off`.",
      );
      return;
    }
    const [name, value] = args;
    const key = SETTINGS[name as keyof typeof SETTINGS] as
      (typeof SETTINGS)[keyof typeof SETTINGS] | undefined;
    if (key === undefined || (value !== "on" && value !== "off")) throw new UsageError();
    await users.update(ctx.user, { [key]: value === "on" });
    await ctx.reply(`${name} is now ${value}.`);
  },
};

const stats: Cmd = {
  name: "stats",
  args: "",
  description: "Bridge statistics (admins).",
  level: "admin",
  minArgs: 0,
  maxArgs: 0,
  async run(ctx) {
    const { users, portalRows, messages, logins } = ctx.services;
    const counts = await users.countByState();
    await ctx.reply(
      `Users: ${counts["logged-in"]} logged in (${logins.count()} connected), ` +
        `${counts["warned"] + counts["verifying"]} logging in, ${counts["logged-out"]} logged out. ` +
        `Portals: ${await portalRows.count()}. Bridged messages: ${await messages.count()}.`,
    );
  },
};

async function describeLogin(
  core: CommandServices,
  user: Parameters<CommandServices["permissionOf"]>[0],
) {
  const row = await core.users.get(user);
  const state = core.loginStateOf(user);
  if (row?.loginState === "logged-in" && core.logins.get(user) === undefined) {
    const failure = core.logins.failure(user);
    const retry =
      failure === undefined
        ? ""
        : ` (${failure.error}; tried ${failure.attempts} time(s), next try in ` +
          `${Math.max(0, Math.ceil((failure.nextAttemptAt - Date.now()) / 1000))} s)`;
    return (
      `Your stored login could not be loaded${retry}. The bridge keeps trying; ` +
      "to start over, send `logout`, then `login` again."
    );
  }
  if (row?.loginState !== "logged-in") {
    return row?.loginState === "warned" || row?.loginState === "verifying"
      ? "A login is in progress (send `cancel` to stop it)."
      : "You are not logged in.";
  }
  const identity =
    row.address !== null
      ? `as ${core.network.identifier.format(row.address)} (verified)`
      : `as ${row.handle ?? "an unnamed user"}${core.network.unverifiedHandles === true ? " (unverified)" : ""}`;
  return `Logged in ${identity}; connection: ${state?.code ?? "unknown"}${state === undefined ? "" : ` (${state.message})`}.`;
}

export const accountCommands: readonly Cmd[] = [
  help,
  login,
  cancel,
  logout,
  cleanUp,
  status,
  settings,
  ping,
  stats,
];
