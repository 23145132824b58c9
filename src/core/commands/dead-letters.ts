import type { CommandServices } from "./services.js";
import { UsageError, type Command } from "./framework.js";

const LISTED = 20;

/**
 * `dead-letters` lists Matrix events that kept failing transiently (README, "Reliability");
 * `dead-letters retry <id>|all` puts them back in their rooms' queues.
 */
export const deadLettersCommand: Command<CommandServices> = {
  name: "dead-letters",
  args: "[retry <id>|all]",
  description: "List Matrix events that kept failing, or retry them (admins).",
  level: "admin",
  minArgs: 0,
  maxArgs: 2,
  async run(ctx, args) {
    const queue = ctx.services.deadLetters;
    if (queue === undefined) {
      await ctx.reply("No dead-letter queue in this bridge.");
      return;
    }
    if (args.length === 0) {
      const letters = await queue.list(LISTED);
      if (letters.length === 0) {
        await ctx.reply("No dead letters.");
        return;
      }
      const lines = letters.map(
        (l) =>
          `${l.id}: ${l.eventId} in ${l.room}, ${l.attempts} attempts, last error ${l.error}, ` +
          `received ${new Date(l.receivedAt).toISOString()}`,
      );
      await ctx.reply(
        [
          `Dead letters (oldest ${LISTED} at most):`,
          ...lines,
          "Retry with `dead-letters retry <id>|all`.",
        ].join("\n"),
      );
      return;
    }
    const [verb, which] = args;
    if (verb?.toLowerCase() !== "retry" || which === undefined) throw new UsageError();
    const id = which.toLowerCase() === "all" ? undefined : Number(which);
    if (id !== undefined && !Number.isSafeInteger(id)) throw new UsageError();
    const rooms = await queue.retry(id);
    await ctx.reply(
      rooms === 0
        ? "No such dead letter."
        : `Retrying dead letters in ${rooms} room${rooms === 1 ? "" : "s"}.`,
    );
  },
};
