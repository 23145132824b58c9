import assert from "node:assert/strict";
import {
  CommandRegistry,
  UsageError,
  parseCommandLine,
  usageLine,
  type Command,
  type CommandContext,
} from "../../../src/core/commands/framework.js";
import { BridgeError } from "../../../src/util/errors.js";
import { matrixUserId, roomId } from "../../../src/util/ids.js";
import { silentLogger } from "../../../src/util/log.js";

type Ctx = CommandContext<null>;

function harness(level: Ctx["level"]) {
  const replies: string[] = [];
  const ran: string[][] = [];
  const ctx: Ctx = {
    user: matrixUserId("@alice:example.org"),
    level,
    room: roomId("!mgmt:example.org"),
    services: null,
    reply: async (text) => {
      replies.push(text);
    },
  };
  const make = (over: Partial<Command<null>>): Command<null> => ({
    name: "x",
    args: "",
    description: "d",
    level: "user",
    minArgs: 0,
    maxArgs: 0,
    run: async (_ctx, args) => {
      ran.push([...args]);
    },
    ...over,
  });
  const registry = new CommandRegistry<null>(silentLogger()).register(
    make({ name: "start-chat", aliases: ["pm"], args: "<+number>", minArgs: 1, maxArgs: 1 }),
    make({ name: "name", args: "<+number> <name>", minArgs: 2, maxArgs: Infinity }),
    make({ name: "stats", level: "admin" }),
    make({
      name: "check",
      args: "<n>",
      minArgs: 1,
      maxArgs: 1,
      run: async (_c, args) => {
        if (args[0] === "bad") throw new UsageError();
        if (args[0] === "bridge") throw new BridgeError("x", "The gatekeeper said no.");
        throw new Error("secret internals at line 42");
      },
    }),
  );
  return { ctx, registry, replies, ran };
}

describe("command framework", function () {
  it("splits a line into a lowercase name and whitespace-separated arguments", function () {
    assert.deepEqual(parseCommandLine("  Start-Chat   +4917012345 "), {
      name: "start-chat",
      args: ["+4917012345"],
    });
    assert.equal(parseCommandLine("   "), undefined);
  });

  it("a command with too few or too many arguments answers its one-line usage", async function () {
    const { ctx, registry, replies, ran } = harness("user");
    await registry.dispatch(ctx, "start-chat");
    await registry.dispatch(ctx, "pm +49 +50");
    assert.deepEqual(replies, ["Usage: `start-chat <+number>`", "Usage: `start-chat <+number>`"]);
    assert.equal(ran.length, 0);
    assert.equal(replies[0]?.includes("\n"), false);
  });

  it("an alias runs the command, and the rest of the line becomes the last argument", async function () {
    const { ctx, registry, ran } = harness("user");
    await registry.dispatch(ctx, "pm +491701234567");
    await registry.dispatch(ctx, "name +491701234567 Aunt   Mary");
    assert.deepEqual(ran, [["+491701234567"], ["+491701234567", "Aunt Mary"]]);
  });

  it("a user without the level is refused and the command does not run", async function () {
    const { ctx, registry, replies, ran } = harness("user");
    await registry.dispatch(ctx, "stats");
    assert.deepEqual(replies, ["You do not have permission to use `stats`."]);
    assert.equal(ran.length, 0);
  });

  it("an unknown command points to help", async function () {
    const { ctx, registry, replies } = harness("user");
    await registry.dispatch(ctx, "frobnicate");
    assert.match(replies[0] ?? "", /Unknown command `frobnicate`.*help/);
  });

  it("failures inside a command answer usage, the BridgeError's text, or a generic line", async function () {
    const { ctx, registry, replies } = harness("user");
    await registry.dispatch(ctx, "check bad");
    await registry.dispatch(ctx, "check bridge");
    await registry.dispatch(ctx, "check other");
    assert.equal(replies[0], "Usage: `check <n>`");
    assert.equal(replies[1], "The gatekeeper said no.");
    assert.match(replies[2] ?? "", /internal error/);
    assert.doesNotMatch(replies[2] ?? "", /secret internals/);
  });

  it("only the commands a level permits are listed", function () {
    const { registry } = harness("user");
    assert.deepEqual(
      registry.permitted("user").map((c) => c.name),
      ["start-chat", "name", "check"],
    );
    assert.ok(registry.permitted("admin").some((c) => c.name === "stats"));
    assert.deepEqual(registry.permitted("none"), []);
    assert.equal(
      usageLine(registry.find("PM") as Command<unknown>),
      "Usage: `start-chat <+number>`",
    );
  });
});
