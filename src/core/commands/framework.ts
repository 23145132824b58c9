import type { PermissionLevel } from "../../config/schema.js";
import { BridgeError, describeError } from "../../util/errors.js";
import type { MatrixUserId, RoomId } from "../../util/ids.js";
import type { Logger } from "../../util/log.js";
import { hasPermission } from "../permissions.js";
import { echoed } from "../texts.js";

/** Thrown by a command whose arguments are wrong: answered with the command's usage line. */
export class UsageError extends Error {
  constructor(message = "bad arguments") {
    super(message);
    this.name = "UsageError";
  }
}

export interface CommandContext<Services> {
  user: MatrixUserId;
  level: PermissionLevel;
  /** Where the command was sent: the management room, or a portal (`<prefix> ...`). */
  room: RoomId;
  services: Services;
  reply(text: string): Promise<void>;
}

export interface Command<Services> {
  name: string;
  aliases?: readonly string[];
  /**
   * Argument synopsis for the usage line, e.g. `<{contact}> <name>`. `args` and `description`
   * may name the network's terms (see CommandTerms) in braces: the registry fills them in.
   */
  args: string;
  description: string;
  level: Exclude<PermissionLevel, "none">;
  minArgs: number;
  /** Infinity for commands whose last argument is the rest of the line. */
  maxArgs: number;
  run(ctx: CommandContext<Services>, args: readonly string[]): Promise<void>;
}

/** Splits a command line into a lowercase name and arguments on whitespace. */
export function parseCommandLine(text: string): { name: string; args: string[] } | undefined {
  const words = text
    .trim()
    .split(/\s+/)
    .filter((w) => w.length > 0);
  const [name, ...args] = words;
  if (name === undefined) return undefined;
  return { name: name.toLowerCase(), args };
}

/**
 * The network's words in command texts: `{network}` its display name, `{contact}` the argument
 * naming a contact (interop: "+number"), `{noun}` what an address is called ("number"). With a
 * space, or nothing when the network has none: `{reach}` which contacts can be reached (" (only
 * contacts who allow chats with third-party apps can be reached)"), `{disclose}` how many
 * messages a report may disclose (" [0-5]").
 */
interface CommandTerms {
  network: string;
  contact: string;
  noun: string;
  reach?: string;
  disclose?: string;
}

/** A command's `args` or `description` with the network's terms filled in. */
export function withTerms(text: string, terms: CommandTerms | undefined): string {
  if (terms === undefined) return text;
  return text
    .replaceAll("{network}", terms.network)
    .replaceAll("{contact}", terms.contact)
    .replaceAll("{noun}", terms.noun)
    .replaceAll("{reach}", terms.reach ?? "")
    .replaceAll("{disclose}", terms.disclose ?? "");
}

export function usageLine(command: Command<unknown>, terms?: CommandTerms): string {
  const args = withTerms(command.args, terms);
  return `Usage: \`${[command.name, args].filter((p) => p.length > 0).join(" ")}\``;
}

/**
 * The bot's commands: lookup by name or alias, permission check, argument count, and the answer
 * to every failure as one line (usage for bad arguments, the error's own message for a
 * BridgeError, a generic line otherwise: a user never sees a stack trace).
 */
export class CommandRegistry<Services> {
  private readonly byName = new Map<string, Command<Services>>();
  private readonly ordered: Command<Services>[] = [];

  constructor(
    private readonly log: Logger,
    /** The network's words for `args` and `description`; left in braces without them. */
    readonly terms?: CommandTerms,
  ) {}

  register(...commands: Command<Services>[]): this {
    for (const command of commands) {
      for (const key of [command.name, ...(command.aliases ?? [])]) {
        if (this.byName.has(key)) throw new Error(`command ${key} is registered twice`);
        this.byName.set(key, command);
      }
      this.ordered.push(command);
    }
    return this;
  }

  find(name: string): Command<Services> | undefined {
    return this.byName.get(name.toLowerCase());
  }

  /** The commands a user of this level may run, in registration order. */
  permitted(level: PermissionLevel): Command<Services>[] {
    return this.ordered.filter((c) => hasPermission(level, c.level));
  }

  /** Runs one command line; every outcome is answered through `ctx.reply`. */
  async dispatch(ctx: CommandContext<Services>, text: string): Promise<void> {
    const parsed = parseCommandLine(text);
    if (parsed === undefined) return;
    const command = this.find(parsed.name);
    if (command === undefined) {
      await ctx.reply(`Unknown command \`${echoed(parsed.name)}\`. Send \`help\` for the list.`);
      return;
    }
    if (!hasPermission(ctx.level, command.level)) {
      await ctx.reply(`You do not have permission to use \`${command.name}\`.`);
      return;
    }
    let args = parsed.args;
    if (args.length < command.minArgs || args.length > command.maxArgs) {
      await ctx.reply(usageLine(command as Command<unknown>, this.terms));
      return;
    }
    if (command.maxArgs === Infinity && args.length > command.minArgs && command.minArgs > 0) {
      args = [...args.slice(0, command.minArgs - 1), args.slice(command.minArgs - 1).join(" ")];
    }
    try {
      await command.run(ctx, args);
    } catch (err) {
      if (err instanceof UsageError) {
        await ctx.reply(usageLine(command as Command<unknown>, this.terms));
      } else if (err instanceof BridgeError) {
        await ctx.reply(err.message);
      } else {
        this.log.error({ command: command.name, err: describeError(err) }, "command failed");
        await ctx.reply(`Sorry, \`${command.name}\` failed because of an internal error.`);
      }
    }
  }
}
