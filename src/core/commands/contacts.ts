import { echoed } from "../texts.js";
import { BridgeError } from "../../util/errors.js";
import type { ContactAddress } from "../../util/ids.js";
import { parseAddressArg, type CommandServices } from "./services.js";
import {
  isBlockCapable,
  isReportCapable,
  isSafetyNumberCapable,
  type RemoteUserId,
} from "../network.js";
import { notReachable } from "../texts.js";
import { UsageError, type Command, type CommandContext } from "./framework.js";

type Cmd = Command<CommandServices>;
type Ctx = CommandContext<CommandServices>;

function addressArg(ctx: Ctx, args: readonly string[]): ContactAddress {
  const address = parseAddressArg(ctx.services.network, args[0]);
  if (address === undefined) throw new UsageError();
  return address;
}

/** An address as notices show it ("+49 170 1234567"). */
const shown = (ctx: Ctx, address: ContactAddress): string =>
  ctx.services.network.identifier.format(address);

async function contactOf(ctx: Ctx, args: readonly string[]) {
  const address = addressArg(ctx, args);
  const login = ctx.services.requireLogin(ctx.user);
  const contact = await ctx.services.contactFor(login, address);
  return { address, login, contact, label: shown(ctx, address) };
}

function unsupported(what: string): BridgeError {
  return new BridgeError("unsupported", `${what} is not supported by this network connection.`);
}

const startChat: Cmd = {
  name: "start-chat",
  aliases: ["pm"],
  args: "<{contact}>",
  description: "Open a chat with a {network} {noun}{reach}.",
  level: "user",
  minArgs: 1,
  maxArgs: 1,
  async run(ctx, args) {
    const address = addressArg(ctx, args);
    const label = shown(ctx, address);
    const result = await ctx.services.openChat(ctx.user, address);
    if (!result.reachable) {
      await ctx.reply(notReachable(label, ctx.services.network));
      return;
    }
    const { created } = result.open;
    await ctx.reply(
      created
        ? `Invited you to a new chat with ${label}. They must accept your first message before they can reply.`
        : `You already have a chat with ${label}; you were invited back if you had left it.`,
    );
  },
};

const resolveIdentifier: Cmd = {
  name: "resolve-identifier",
  args: "<{contact}>",
  description: "Check whether a {noun} can be reached through the bridge.",
  level: "user",
  minArgs: 1,
  maxArgs: 1,
  async run(ctx, args) {
    const address = addressArg(ctx, args);
    const login = ctx.services.requireLogin(ctx.user);
    const resolution = await login.resolveAddress(address);
    const label = shown(ctx, address);
    await ctx.reply(
      resolution.reachable
        ? `${label} is reachable: ${ctx.services.ghosts.mxidFor(address)}. Send \`start-chat ${address}\` to chat.`
        : notReachable(label, ctx.services.network),
    );
  },
};

const contacts: Cmd = {
  name: "contacts",
  args: "",
  description: "List your {network} chats and contacts.",
  level: "user",
  minArgs: 0,
  maxArgs: 0,
  async run(ctx) {
    const core = ctx.services;
    const portals = await core.portalRows.listByUser(ctx.user);
    const known = await core.contacts.listByUser(ctx.user);
    const ids = [...new Set([...portals.map((p) => p.contact), ...known.map((c) => c.contact)])];
    if (ids.length === 0) {
      const { displayName, identifier } = core.network;
      await ctx.reply(
        `You have no ${displayName} contacts yet. Send \`start-chat <${identifier.argument}>\` to begin.`,
      );
      return;
    }
    const login = core.logins.get(ctx.user);
    const verified =
      login !== undefined && isSafetyNumberCapable(login)
        ? await login.verifiedContacts()
        : new Set<RemoteUserId>();
    const lines: string[] = [];
    for (const id of ids) {
      const ghost = await core.ghosts.ensure(id);
      const info = known.find((c) => c.contact === id);
      const portal = portals.find((p) => p.contact === id);
      const marks = [
        info === undefined || info.localName === null ? undefined : `"${info.localName}"`,
        info?.blocked === true ? "blocked" : undefined,
        verified.has(id) ? "verified" : undefined,
        portal === undefined || portal.requestState === "none" || portal.requestState === "accepted"
          ? undefined
          : portal.requestState.replace("-", " "),
      ].filter((m) => m !== undefined);
      lines.push(`${core.ghosts.label(ghost)}${marks.length > 0 ? ` (${marks.join(", ")})` : ""}`);
    }
    await ctx.reply(lines.join("\n"));
  },
};

const name: Cmd = {
  name: "name",
  args: "<{contact}> <name>",
  description: "Give a contact a name that only your chat shows (next to the {noun}).",
  level: "user",
  minArgs: 2,
  maxArgs: Infinity,
  async run(ctx, args) {
    const address = addressArg(ctx, args);
    const localName = (args[1] ?? "").trim();
    if (localName.length === 0 || localName.length > 100) throw new UsageError();
    const core = ctx.services;
    const login = core.requireLogin(ctx.user);
    const contact = await core.contactFor(login, address);
    await core.contacts.update(ctx.user, contact, { localName });
    const portal = await core.portalRows.get(ctx.user, contact);
    if (portal !== undefined && portal.roomId !== null) {
      await core.ghosts.setLocalName(await core.ghosts.ensure(contact), portal.roomId, localName);
    }
    await ctx.reply(`${shown(ctx, address)} is now shown to you as "${localName}".`);
  },
};

async function setBlocked(ctx: Ctx, args: readonly string[], blocked: boolean): Promise<void> {
  const { login, contact, label } = await contactOf(ctx, args);
  if (!isBlockCapable(login)) throw unsupported("Blocking");
  await (blocked ? login.block(contact) : login.unblock(contact));
  await ctx.services.contacts.update(ctx.user, contact, { blocked });
  await ctx.reply(
    blocked
      ? `Blocked ${label} at ${ctx.services.network.displayName}: nothing they send reaches you.`
      : `Unblocked ${label}.`,
  );
}

const block: Cmd = {
  name: "block",
  args: "<{contact}>",
  description: "Block a {noun} at {network}: nothing they send reaches you.",
  level: "user",
  minArgs: 1,
  maxArgs: 1,
  run: (ctx, args) => setBlocked(ctx, args, true),
};

const unblock: Cmd = {
  name: "unblock",
  args: "<{contact}>",
  description: "Unblock a {noun}.",
  level: "user",
  minArgs: 1,
  maxArgs: 1,
  run: (ctx, args) => setBlocked(ctx, args, false),
};

const report: Cmd = {
  name: "report",
  args: "<{contact}>{disclose}",
  description:
    "Report a {noun} as spam to {network}, disclosing its last N messages to you only if you give N.",
  level: "user",
  minArgs: 1,
  maxArgs: 2,
  async run(ctx, args) {
    const count = args[1] === undefined ? 0 : Number(args[1]);
    const limit = ctx.services.network.reportDisclosureLimit;
    // Checked before the contact is looked up: a wrong count costs the network nothing.
    if (!Number.isInteger(count) || count < 0 || (limit !== undefined && count > limit)) {
      throw new UsageError();
    }
    const { login, contact, label } = await contactOf(ctx, args);
    if (!isReportCapable(login)) throw unsupported("Reporting");
    if (count > (limit ?? 0)) throw new UsageError();
    const portal = await ctx.services.portalRows.get(ctx.user, contact);
    const disclosed =
      portal === undefined || count === 0
        ? []
        : await ctx.services.messages.latestIncoming(portal.id, count);
    await login.report(
      contact,
      "spam",
      disclosed.map((m) => m.remoteId),
      false,
    );
    await ctx.reply(
      `Reported ${label} to ${ctx.services.network.displayName} as spam` +
        (disclosed.length === 0
          ? " (no messages disclosed)."
          : `, disclosing their last ${disclosed.length} message(s).`) +
        ` To also block them send \`block ${echoed(args[0] ?? "")}\`.`,
    );
  },
};

const verify: Cmd = {
  name: "verify",
  args: "<{contact}> [confirm]",
  description: "Show the safety number with a contact; `confirm` marks them verified.",
  level: "user",
  minArgs: 1,
  maxArgs: 2,
  async run(ctx, args) {
    if (args[1] !== undefined && args[1] !== "confirm") throw new UsageError();
    const { login, contact, label } = await contactOf(ctx, args);
    if (!isSafetyNumberCapable(login)) throw unsupported("Safety numbers");
    const key = `${ctx.user} ${contact}`;
    if (args[1] === "confirm") {
      // The network keeps the mark (SafetyNumberCapable); the core keeps only what it showed.
      const shown = ctx.services.shownSafetyNumbers.get(key);
      if (shown === undefined) {
        await ctx.reply(
          `First send \`verify ${echoed(args[0] ?? "")}\` and compare the safety number it shows.`,
        );
        return;
      }
      await login.markVerified(contact, shown);
      ctx.services.shownSafetyNumbers.delete(key);
      await ctx.reply(`${label} is marked as verified.`);
      return;
    }
    const network = ctx.services.network.displayName;
    const { digits, verified } = await login.safetyNumber(contact);
    ctx.services.shownSafetyNumbers.set(key, digits);
    await ctx.reply(safetyNumberText(digits, verified, label, args[0] ?? "", network));
  },
};

function safetyNumberText(
  digits: string,
  verified: boolean,
  label: string,
  arg: string,
  network: string,
): string {
  const groups = digits.match(/.{1,5}/g) ?? [digits];
  return [
    `Safety number with ${label}${verified ? " (verified)" : ""}:`,
    groups.slice(0, 6).join(" "),
    groups.slice(6).join(" "),
    `Compare it with the one in their ${network} app (contact info > Encryption). If it matches, send \`verify ${arg} confirm\`.`,
  ].join("\n");
}

export const contactCommands: readonly Cmd[] = [
  startChat,
  resolveIdentifier,
  contacts,
  name,
  block,
  unblock,
  report,
  verify,
];
