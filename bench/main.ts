/**
 * npm run bench: bridged-message throughput and added latency both ways, idle memory and start-up
 * time, each against the floor measured in the same run. See docs/benchmark.md.
 */
import { mkdir, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import type { DatabaseType } from "../src/db/database.js";
import { measureFloor } from "./floor.js";
import { measureFlows } from "./flows.js";
import { groupReport, measureGroups } from "./groups.js";
import { measureMemory } from "./memory.js";
import {
  backendReport,
  machineAtEnd,
  machineAtStart,
  svgChart,
  targetsOf,
  textReport,
  type BackendReport,
  type Results,
} from "./report.js";

const HELP = `Usage: npm run bench -- [options]

Measures, on SQLite and PostgreSQL, the real bridge's sustained throughput and added latency
in each direction (Matrix -> WhatsApp, WhatsApp -> Matrix), its idle memory and start-up time
with many users, and the floor (raw libsignal + one SQLite commit + one loopback HTTP round trip
per message) in the same run. Writes bench/results/<time>.json, latest.json and latest.svg.

Options:
  --quick              small counts, under a minute on an idle machine
  --backend <name>     sqlite or postgres; repeat for both (default: both)
  --messages <n>       upper bound of the maximum-throughput run, per direction (default 3000, quick 150)
  --seconds <s>        length of each fixed-rate run and target length of the maximum run (default 8, quick 1)
  --portals <n>        portals (WhatsApp contacts) the messages are spread over (default 4, quick 1)
  --users <a,b,...>    user counts for the memory figures; 0 is always added (default 1000,10000; quick 1000)
  --floor-messages <n> messages timed for each part of the floor (default 2000, quick 300)
  --no-encrypted       skip the second pass through Megolm-encrypted portals (run by default)
  --results <dir>      where to write the results (default bench/results)
  -h, --help           this text

PostgreSQL: TEST_POSTGRES_URI (default postgresql://postgres@127.0.0.1:5432/test); the bench creates
and drops its own databases there. BENCH_LOG=<level> writes the bridge's log to bench-bridge.log.
`;

const ROOT = fileURLToPath(new URL("..", import.meta.url));

function positive(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} needs a positive number`);
  return value;
}

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: "boolean", default: false },
      backend: { type: "string", multiple: true },
      messages: { type: "string" },
      seconds: { type: "string" },
      portals: { type: "string" },
      users: { type: "string" },
      "floor-messages": { type: "string" },
      results: { type: "string" },
      "no-encrypted": { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const quick = values.quick;
  const backends = (values.backend ?? ["sqlite", "postgres"]).map((b) => {
    if (b !== "sqlite" && b !== "postgres") throw new Error(`unknown backend ${b}`);
    return b as DatabaseType;
  });
  const options = {
    backends,
    messages: Math.round(positive("messages", values.messages, quick ? 150 : 3000)),
    seconds: positive("seconds", values.seconds, quick ? 1 : 8),
    portals: Math.round(positive("portals", values.portals, quick ? 1 : 4)),
    users: [
      0,
      ...(values.users ?? (quick ? "1000" : "1000,10000"))
        .split(",")
        .filter((s) => s.trim() !== "")
        .map((s) => {
          const n = Number(s);
          if (!Number.isInteger(n) || n < 0) throw new Error(`--users: ${s} is not a count`);
          return n;
        })
        .filter((n) => n > 0),
    ],
    floorMessages: Math.round(
      positive("floor-messages", values["floor-messages"], quick ? 300 : 2000),
    ),
    results: path.resolve(values.results ?? path.join(ROOT, "bench", "results")),
    encrypted: !values["no-encrypted"],
  };
  const custom = [
    values.messages,
    values.seconds,
    values.portals,
    values.users,
    values["floor-messages"],
  ].some((v) => v !== undefined);
  const mode = custom ? "custom" : quick ? "quick" : "full";
  const started = new Date();
  const machine = machineAtStart();
  const say = (line: string) => process.stdout.write(`${line}\n`);
  say(
    `bench (${mode}): load average ${machine.loadAverageAtStart.join(" ")} on ${machine.cores} cores`,
  );

  say("floor ...");
  const floor = await measureFloor(options.floorMessages);
  say(
    `  ${floor.totalUs.toFixed(0)} µs per message -> ${floor.messagesPerSecond.toFixed(0)} msg/s`,
  );

  const reports: BackendReport[] = [];
  for (const backend of backends) {
    say(`${backend}: messages ...`);
    const flows = await measureFlows({
      backend,
      portals: options.portals,
      maxMessages: options.messages,
      fixedSeconds: options.seconds,
      progress: say,
    });
    // The same flows through Megolm-encrypted portals (issue 12), with a fresh bridge and world:
    // the user's device encrypts and decrypts in the world process, not in the bridge's.
    let encrypted: Awaited<ReturnType<typeof measureFlows>> | undefined;
    if (options.encrypted) {
      say(`${backend}: messages through encrypted portals ...`);
      encrypted = await measureFlows({
        backend,
        portals: options.portals,
        maxMessages: options.messages,
        fixedSeconds: options.seconds,
        encrypted: true,
        progress: say,
      });
    }
    say(`${backend}: memory and start-up ...`);
    const memory = await measureMemory(backend, options.users, say);
    reports.push(backendReport(flows, memory, floor, encrypted));
  }

  say("groups: a 100-member group ...");
  const groups = await measureGroups(
    { messages: quick ? 50 : 300, floorMessages: options.floorMessages },
    say,
  );
  const finished = new Date();
  const results: Results & { groups: typeof groups } = {
    schema: 1,
    mode,
    startedAt: started.toISOString(),
    finishedAt: finished.toISOString(),
    durationSeconds: (finished.getTime() - started.getTime()) / 1000,
    machine: machineAtEnd(machine),
    options: { ...options, results: undefined },
    floor,
    backends: reports,
    targets: targetsOf(reports, floor),
    groups,
  };
  say("");
  say(textReport(results));
  say(groupReport(groups));
  await mkdir(options.results, { recursive: true });
  const json = `${JSON.stringify(results, null, 2)}\n`;
  const stamp = started.toISOString().replace(/[:.]/g, "-");
  await writeFile(path.join(options.results, `${stamp}.json`), json);
  await writeAtomically(path.join(options.results, "latest.json"), json);
  await writeAtomically(path.join(options.results, "latest.svg"), svgChart(results));
  say(`\nresults: ${path.join(options.results, `${stamp}.json`)}, latest.json, latest.svg`);
  return 0;
}

async function writeAtomically(file: string, content: string): Promise<void> {
  const temporary = `${file}.tmp`;
  await writeFile(temporary, content);
  await rename(temporary, file);
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (err) {
  process.stderr.write(
    `bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exitCode = 1;
}
// Library timers (the homeserver client, pools) must not keep a finished run alive.
process.exit();
