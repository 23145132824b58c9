import type { ContactAddress } from "../../util/ids.js";
import { groupCreated } from "../texts.js";
import { UsageError, type Command } from "./framework.js";
import { parseAddressArg, type CommandServices } from "./services.js";

/**
 * `create-group <address>... <name>` in the management room: bridgev2's command name (and alias)
 * for creating a group chat. The addresses (of the network's own kind: numbers, handles) come
 * first, so the group's name may have spaces; the user is invited to the new room. In a room of
 * the user's with ghosts in it, `<prefix> create-group <name>` makes that room the group's
 * (bridgev2's form; BridgeCore.createGroupHere).
 */
export const createGroupCommand: Command<CommandServices> = {
  name: "create-group",
  aliases: ["create"],
  args: "<{contact}>... <name>",
  description: "Create a group with these {noun}s at the network, and a room for it.",
  level: "user",
  // Parsed here (addresses, then the rest of the line as the name), not by the framework.
  minArgs: 0,
  maxArgs: Infinity,
  async run(ctx, args) {
    const addresses: ContactAddress[] = [];
    let i = 0;
    for (; i < args.length; i++) {
      const address = parseAddressArg(ctx.services.network, args[i]);
      if (address === undefined) break;
      addresses.push(address);
    }
    const subject = args.slice(i).join(" ").trim();
    if (addresses.length === 0 || subject === "") throw new UsageError();
    const created = await ctx.services.createGroup(ctx.user, subject, addresses);
    const lines = [groupCreated(subject)];
    if (created.rejected.length > 0) {
      lines.push(`Not added: ${created.rejected.join(", ")} (see the group's room for why).`);
    }
    await ctx.reply(lines.join(" "));
  },
};
