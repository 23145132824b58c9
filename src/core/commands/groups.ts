import { isPhoneNumber, type PhoneNumber } from "../../util/ids.js";
import { groupCreated } from "../texts.js";
import { UsageError, type Command } from "./framework.js";
import type { CommandServices } from "./services.js";

/**
 * `create-group <+number>... <name>` in the management room: bridgev2's command name (and alias)
 * for creating a group chat. The numbers come first, so the group's name may have spaces; the
 * user is invited to the new room. In a room of the user's with ghosts in it, `<prefix> create-group
 * <name>` makes that room the group's (bridgev2's form; BridgeCore.createGroupHere).
 */
export const createGroupCommand: Command<CommandServices> = {
  name: "create-group",
  aliases: ["create"],
  args: "<+number>... <name>",
  description: "Create a group with these numbers at the network, and a room for it.",
  level: "user",
  // Parsed here (numbers, then the rest of the line as the name), not by the framework.
  minArgs: 0,
  maxArgs: Infinity,
  async run(ctx, args) {
    const phones: PhoneNumber[] = [];
    let i = 0;
    for (; i < args.length; i++) {
      const arg = args[i] as string;
      if (!isPhoneNumber(arg)) break;
      phones.push(arg);
    }
    const subject = args.slice(i).join(" ").trim();
    if (phones.length === 0 || subject === "") throw new UsageError();
    const created = await ctx.services.createGroup(ctx.user, subject, phones);
    const lines = [groupCreated(subject)];
    if (created.rejected.length > 0) {
      lines.push(`Not added: ${created.rejected.join(", ")} (see the group's room for why).`);
    }
    await ctx.reply(lines.join(" "));
  },
};
