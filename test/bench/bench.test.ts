import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const parseXml = createRequire(import.meta.url)("@xmpp/xml/lib/parse.js") as (data: string) => {
  name: string;
  children: unknown[];
};

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--import", "tsx", path.join(ROOT, "bench", "main.ts"), ...args],
      { cwd: ROOT, timeout: 280_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === "number" ? err.code : -1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

const isNumber = (v: unknown) => typeof v === "number" && Number.isFinite(v);

function assertNumbers(where: string, object: Record<string, unknown>, keys: string[]): void {
  for (const key of keys) {
    assert.ok(isNumber(object[key]), `${where}.${key} is ${JSON.stringify(object[key])}`);
  }
}

describe("npm run bench --quick (SQLite, tiny counts)", function () {
  // Under a minute on an idle machine; the first run also compiles the bridge for the memory
  // figures, and a loaded 2-core machine can take several times longer.
  this.timeout(300_000);
  let dir: string;
  let result: { code: number; stdout: string; stderr: string };

  before(async function () {
    dir = await mkdtemp(path.join(tmpdir(), "mwi-bench-test-"));
    result = await run([
      "--quick",
      "--backend",
      "sqlite",
      "--messages",
      "30",
      "--seconds",
      "0.3",
      "--portals",
      "1",
      "--users",
      "100",
      "--floor-messages",
      "50",
      "--results",
      dir,
    ]);
  });

  after(async function () {
    await rm(dir, { recursive: true, force: true });
  });

  it("finishes, prints the figures with their floor ratios and a verdict per target", function () {
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /floor per message: \d+ µs/);
    assert.match(result.stdout, /Matrix -> WhatsApp +\d+ +\d+\.\d\dx/);
    assert.match(result.stdout, /WhatsApp -> Matrix +\d+ +\d+\.\d\dx/);
    assert.match(
      result.stdout,
      /(pass|MISS) +\[sqlite\] Matrix -> WhatsApp throughput >= 0.5x the floor/,
    );
    assert.match(result.stdout, /n\/a +\[sqlite\] idle RSS with 10,000 users: not measured/);
  });

  it("also runs through Megolm-encrypted portals and prints them beside plaintext", function () {
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /sqlite \(encrypted portals\): world and 1 portals ready/);
    assert.match(result.stdout, /encrypted portals \(Megolm\), beside plaintext:/);
    // plain msg/s, Megolm msg/s, ratio, p50, p99, CPU µs, plain CPU µs, ratio
    const row = String.raw` +\d+ +\d+ +\d+\.\d\dx +\d+\.\d\d +\d+\.\d\d +\d+ +\d+ +\d+\.\d\dx`;
    assert.match(result.stdout, new RegExp(`Matrix -> WhatsApp${row}`));
    assert.match(result.stdout, new RegExp(`WhatsApp -> Matrix${row}`));
    assert.match(
      result.stdout,
      /(pass|MISS) +\[sqlite\] WhatsApp -> Matrix throughput, encrypted portals, >= 0.5x the floor/,
    );
  });

  it("writes a timestamped JSON, latest.json with every figure, and a well-formed SVG", async function () {
    const files = await readdir(dir);
    assert.ok(files.includes("latest.json") && files.includes("latest.svg"), files.join(", "));
    assert.ok(
      files.some((f) => /^\d{4}-\d\d-\d\dT[\d-]+Z\.json$/.test(f)),
      `no timestamped result in ${files.join(", ")}`,
    );
    const r = JSON.parse(await readFile(path.join(dir, "latest.json"), "utf8")) as Record<
      string,
      unknown
    >;
    assert.equal(r["schema"], 1);
    assert.equal(r["mode"], "custom");
    const machine = r["machine"] as Record<string, unknown>;
    assert.equal(typeof machine["cpuModel"], "string");
    assertNumbers("machine", machine, ["cores", "totalMemoryMb"]);
    assert.equal(machine["node"], process.version);
    for (const key of ["loadAverageAtStart", "loadAverageAtEnd"]) {
      const load = machine[key] as unknown[];
      assert.ok(Array.isArray(load) && load.length === 3 && load.every(isNumber), key);
    }
    assert.equal(typeof machine["loaded"], "boolean");
    const floor = r["floor"] as Record<string, number>;
    assertNumbers("floor", floor, [
      "cryptoUs",
      "commitUs",
      "httpUs",
      "totalUs",
      "messagesPerSecond",
    ]);
    assert.ok(
      Math.abs(floor["totalUs"]! - floor["cryptoUs"]! - floor["commitUs"]! - floor["httpUs"]!) <
        1e-6,
    );

    const backends = r["backends"] as Record<string, unknown>[];
    assert.equal(backends.length, 1);
    const b = backends[0]!;
    assert.equal(b["backend"], "sqlite");
    for (const dir of ["m2w", "w2m"]) {
      const d = b[dir] as Record<string, Record<string, unknown>>;
      assertNumbers(`${dir}.throughput`, d["throughput"]!, [
        "messages",
        "delivered",
        "seconds",
        "perSecond",
        "senderPerSecond",
        "ratio",
      ]);
      assert.equal(
        d["throughput"]!["delivered"],
        d["throughput"]!["messages"],
        `${dir}: lost messages`,
      );
      for (const at of ["at100", "at80"]) {
        assertNumbers(`${dir}.${at}`, d[at]!, [
          "rate",
          "messages",
          "delivered",
          "p50Ms",
          "p99Ms",
          "maxMs",
          "p50Ratio",
          "p99Ratio",
          "maxRatio",
        ]);
        const l = d[at] as Record<string, number>;
        assert.ok(
          l["p50Ms"]! > 0 && l["p50Ms"]! <= l["p99Ms"]! && l["p99Ms"]! <= l["maxMs"]!,
          `${dir}.${at}`,
        );
      }
      assert.equal((d["at100"] as Record<string, number>)["rate"], 100);
    }
    assertNumbers("bridgeCpuUsPerMessage", b["bridgeCpuUsPerMessage"] as Record<string, unknown>, [
      "m2w",
      "w2m",
    ]);
    assertNumbers("queriesPerMessage", b["queriesPerMessage"] as Record<string, unknown>, [
      "m2w",
      "w2m",
    ]);
    for (const field of ["commitsPerMessage", "bridgeCpuRatio"]) {
      assertNumbers(field, b[field] as Record<string, unknown>, ["m2w", "w2m"]);
    }
    // Counted at the driver: a bridged message runs statements (the old count missed raw ones).
    const statements = b["queriesPerMessage"] as Record<string, number>;
    assert.ok(statements["m2w"]! > 0 && statements["w2m"]! > 0, "statements counted");
    // The encrypted pass: every message bridged both ways, and what the bridge posted to Matrix
    // was m.room.encrypted that the user's own device decrypted (the probe counts only those).
    const e = b["encrypted"] as Record<string, Record<string, Record<string, unknown>>>;
    assert.ok(e !== undefined, "no encrypted figures");
    for (const dir of ["m2w", "w2m"]) {
      const d = e[dir]!;
      assertNumbers(`encrypted.${dir}.throughput`, d["throughput"]!, ["perSecond", "ratio"]);
      assert.equal(d["throughput"]!["delivered"], d["throughput"]!["messages"], `encrypted ${dir}`);
      assertNumbers(`encrypted.${dir}.at100`, d["at100"]!, ["p50Ms", "p99Ms", "maxMs"]);
      assertNumbers(`encrypted.${dir}.at80`, d["at80"]!, ["p50Ms", "p99Ms", "maxMs"]);
    }
    for (const field of ["bridgeCpuUsPerMessage", "bridgeCpuRatio", "queriesPerMessage"]) {
      assertNumbers(`encrypted.${field}`, e[field] as Record<string, unknown>, ["m2w", "w2m"]);
    }
    const over = e["overPlaintext"] as Record<string, Record<string, unknown>>;
    assertNumbers("overPlaintext.throughput", over["throughput"]!, ["m2w", "w2m"]);
    assertNumbers("overPlaintext.cpu", over["cpu"]!, ["m2w", "w2m"]);
    const cpu = e["bridgeCpuUsPerMessage"] as unknown as Record<string, number>;
    const plainCpu = b["bridgeCpuUsPerMessage"] as Record<string, number>;
    assert.ok(
      Math.abs((over["cpu"]!["w2m"] as number) - cpu["w2m"]! / plainCpu["w2m"]!) < 1e-9,
      "the CPU ratio is encrypted over plaintext",
    );
    const decrypted = e["userDecrypted"] as unknown as Record<string, number>;
    assert.equal(
      decrypted["decrypted"],
      e["w2m"]!["throughput"]!["messages"],
      "the user's device decrypts every W->M message of the maximum run",
    );
    assert.equal(decrypted["undecryptable"], 0);

    const memory = b["memory"] as Record<string, unknown>[];
    assert.deepEqual(
      memory.map((m) => m["users"]),
      [0, 100],
    );
    for (const m of memory) {
      assertNumbers(`memory[${String(m["users"])}]`, m, [
        "rssMb",
        "heapUsedMb",
        "externalMb",
        "readySeconds",
        "startBridgeSeconds",
        "seedSeconds",
        "rssRatio",
        "readyRatio",
      ]);
      assert.ok((m["rssMb"] as number) > 10, "an RSS below 10 MB is not a Node process");
    }

    const targets = r["targets"] as Record<string, unknown>[];
    const ids = targets.map((t) => t["id"]);
    for (const id of [
      "throughput-m2w",
      "throughput-w2m",
      "latency-p50-m2w",
      "latency-p99-m2w",
      "latency-p50-w2m",
      "latency-p99-w2m",
      "cpu-m2w",
      "cpu-w2m",
      "statements-m2w",
      "statements-w2m",
      "throughput-m2w-encrypted",
      "throughput-w2m-encrypted",
      "latency-p99-m2w-encrypted",
      "latency-p99-w2m-encrypted",
      "idle-rss-0",
      "idle-rss-10k",
      "ready-10k",
    ]) {
      assert.ok(ids.includes(id), `no target ${id}`);
    }
    for (const t of targets) {
      if (String(t["id"]).endsWith("10k"))
        assert.equal(t["pass"], null, "10,000 users were not measured");
      else assert.equal(typeof t["pass"], "boolean", String(t["id"]));
    }

    const svg = await readFile(path.join(dir, "latest.svg"), "utf8");
    const root = parseXml(svg);
    assert.equal(root.name, "svg");
    assert.ok(root.children.length > 20, "the chart has bars and labels");
  });

  it("explains its options with --help", async function () {
    const help = await run(["--help"]);
    assert.equal(help.code, 0);
    for (const option of [
      "--quick",
      "--backend",
      "--messages",
      "--seconds",
      "--users",
      "--results",
      "--no-encrypted",
    ]) {
      assert.ok(help.stdout.includes(option), `--help does not mention ${option}`);
    }
  });
});
