/**
 * The benchmark's results: one JSON document (machine, floor, figures with their ratio to the
 * floor, targets with pass/miss), a text table for the terminal and a hand-written SVG chart.
 */
import { cpus, loadavg, platform, release, totalmem } from "node:os";
import type { DatabaseType } from "../src/db/database.js";
import type { Floor } from "./floor.js";
import type { DirectionFigures, FlowFigures } from "./flows.js";
import type { MemoryFigure } from "./memory.js";
import type { Latency } from "./stats.js";

export interface Machine {
  readonly cpuModel: string;
  readonly cores: number;
  readonly node: string;
  readonly platform: string;
  readonly totalMemoryMb: number;
  /** 1, 5 and 15 minute load averages. */
  readonly loadAverageAtStart: readonly number[];
  readonly loadAverageAtEnd: readonly number[];
  /** The 1-minute load at start or end was at least half the cores: figures are pessimistic. */
  readonly loaded: boolean;
}

export function machineAtStart(): Omit<Machine, "loadAverageAtEnd" | "loaded"> {
  const list = cpus();
  return {
    cpuModel: list[0]?.model.trim() ?? "unknown",
    cores: list.length,
    node: process.version,
    platform: `${platform()} ${release()}`,
    totalMemoryMb: Math.round(totalmem() / 1e6),
    loadAverageAtStart: loadavg().map((l) => round(l, 2)),
  };
}

export function machineAtEnd(start: ReturnType<typeof machineAtStart>): Machine {
  const end = loadavg().map((l) => round(l, 2));
  const threshold = start.cores / 2;
  return {
    ...start,
    loadAverageAtEnd: end,
    loaded: (start.loadAverageAtStart[0] ?? 0) >= threshold || (end[0] ?? 0) >= threshold,
  };
}

/** A latency with each figure's ratio to the floor's per-message time. */
export interface LatencyWithRatios extends Latency {
  readonly p50Ratio: number;
  readonly p99Ratio: number;
  readonly maxRatio: number;
}

export interface DirectionReport {
  readonly throughput: DirectionFigures["throughput"] & { readonly ratio: number };
  readonly at100: LatencyWithRatios;
  readonly at80: LatencyWithRatios;
}

export interface MemoryReport extends MemoryFigure {
  /** RSS and ready time over those of the same bridge with an empty database (the memory floor). */
  readonly rssRatio: number;
  readonly readyRatio: number;
}

export interface BackendReport {
  readonly backend: DatabaseType;
  readonly portals: number;
  readonly setupSeconds: number;
  readonly bridgeCpuUsPerMessage: FlowFigures["bridgeCpuUsPerMessage"];
  readonly queriesPerMessage: FlowFigures["queriesPerMessage"];
  readonly commitsPerMessage: FlowFigures["commitsPerMessage"];
  /** Bridge CPU per message over the floor's time per message (1.00x is the floor). */
  readonly bridgeCpuRatio: { m2w: number; w2m: number };
  readonly m2w: DirectionReport;
  readonly w2m: DirectionReport;
  readonly memory: readonly MemoryReport[];
  /** The same flows with Megolm-encrypted portals (issue 12); absent when not measured. */
  readonly encrypted?: EncryptedReport;
}

/** The flows through Megolm-encrypted portals, beside the plaintext ones of the same backend. */
export interface EncryptedReport {
  readonly portals: number;
  readonly setupSeconds: number;
  readonly bridgeCpuUsPerMessage: FlowFigures["bridgeCpuUsPerMessage"];
  readonly queriesPerMessage: FlowFigures["queriesPerMessage"];
  readonly commitsPerMessage: FlowFigures["commitsPerMessage"];
  readonly bridgeCpuRatio: { m2w: number; w2m: number };
  readonly m2w: DirectionReport;
  readonly w2m: DirectionReport;
  /** W->M maximum run: events the user's own device decrypted, and could not. */
  readonly userDecrypted: { decrypted: number; undecryptable: number };
  /** Encrypted over plaintext: throughput (below 1: slower) and bridge CPU per message. */
  readonly overPlaintext: {
    readonly throughput: { m2w: number; w2m: number };
    readonly cpu: { m2w: number; w2m: number };
  };
}

export interface Target {
  readonly id: string;
  readonly description: string;
  readonly backend: DatabaseType;
  readonly value: number | null;
  readonly limit: number;
  readonly unit: string;
  /** null: not measured in this run (e.g. --quick without 10,000 users). */
  readonly pass: boolean | null;
}

export interface Results {
  readonly schema: 1;
  readonly mode: "quick" | "full" | "custom";
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly durationSeconds: number;
  readonly machine: Machine;
  readonly options: Record<string, unknown>;
  readonly floor: Floor;
  readonly backends: readonly BackendReport[];
  readonly targets: readonly Target[];
}

const round = (v: number, digits = 3) =>
  Number.isFinite(v) ? Math.round(v * 10 ** digits) / 10 ** digits : v;

function withRatios(l: Latency, floor: Floor): LatencyWithRatios {
  const floorMs = floor.totalUs / 1000;
  return {
    ...l,
    p50Ratio: l.p50Ms / floorMs,
    p99Ratio: l.p99Ms / floorMs,
    maxRatio: l.maxMs / floorMs,
  };
}

function direction(d: DirectionFigures, floor: Floor): DirectionReport {
  return {
    throughput: { ...d.throughput, ratio: d.throughput.perSecond / floor.messagesPerSecond },
    at100: withRatios(d.at100, floor),
    at80: withRatios(d.at80, floor),
  };
}

export function backendReport(
  flows: FlowFigures,
  memory: readonly MemoryFigure[],
  floor: Floor,
  encrypted?: FlowFigures,
): BackendReport {
  const empty = memory.find((m) => m.users === 0);
  return {
    ...(encrypted === undefined ? {} : { encrypted: encryptedReport(encrypted, flows, floor) }),
    backend: flows.backend,
    ...flowFigures(flows, floor),
    memory: memory.map((m) => ({
      ...m,
      rssRatio: empty === undefined ? Number.NaN : m.rssMb / empty.rssMb,
      readyRatio: empty === undefined ? Number.NaN : m.readySeconds / empty.readySeconds,
    })),
  };
}

/** What a plaintext and an encrypted run report alike: cost per message and each direction. */
function flowFigures(f: FlowFigures, floor: Floor) {
  return {
    portals: f.portals,
    setupSeconds: f.setupSeconds,
    bridgeCpuUsPerMessage: f.bridgeCpuUsPerMessage,
    queriesPerMessage: f.queriesPerMessage,
    commitsPerMessage: f.commitsPerMessage,
    bridgeCpuRatio: {
      m2w: f.bridgeCpuUsPerMessage.m2w / floor.totalUs,
      w2m: f.bridgeCpuUsPerMessage.w2m / floor.totalUs,
    },
    m2w: direction(f.m2w, floor),
    w2m: direction(f.w2m, floor),
  };
}

function encryptedReport(e: FlowFigures, plain: FlowFigures, floor: Floor): EncryptedReport {
  return {
    ...flowFigures(e, floor),
    userDecrypted: e.userDecrypted ?? { decrypted: 0, undecryptable: 0 },
    overPlaintext: {
      throughput: {
        m2w: e.m2w.throughput.perSecond / plain.m2w.throughput.perSecond,
        w2m: e.w2m.throughput.perSecond / plain.w2m.throughput.perSecond,
      },
      cpu: {
        m2w: e.bridgeCpuUsPerMessage.m2w / plain.bridgeCpuUsPerMessage.m2w,
        w2m: e.bridgeCpuUsPerMessage.w2m / plain.bridgeCpuUsPerMessage.w2m,
      },
    },
  };
}

/** The targets of issues #8 and #15; reported, not enforced. */
export function targetsOf(backends: readonly BackendReport[], floor: Floor): Target[] {
  const targets: Target[] = [];
  const check = (
    id: string,
    description: string,
    backend: DatabaseType,
    value: number | null | undefined,
    limit: number,
    unit: string,
    atLeast: boolean,
  ) => {
    const v = value === undefined || value === null || !Number.isFinite(value) ? null : value;
    targets.push({
      id,
      description,
      backend,
      value: v === null ? null : round(v),
      limit: round(limit),
      unit,
      pass: v === null ? null : atLeast ? v >= limit : v <= limit,
    });
  };
  for (const b of backends) {
    const dirs = [
      ["m2w", "Matrix -> WhatsApp", b.m2w],
      ["w2m", "WhatsApp -> Matrix", b.w2m],
    ] as const;
    const sqlite = b.backend === "sqlite";
    for (const [key, name, d] of dirs) {
      const share = sqlite ? 0.5 : 0.35;
      check(
        `throughput-${key}`,
        `${name} throughput >= ${share}x the floor`,
        b.backend,
        d.throughput.perSecond,
        floor.messagesPerSecond * share,
        "msg/s",
        true,
      );
      if (sqlite) {
        check(
          `cpu-${key}`,
          `${name} bridge CPU per message <= 2x the floor's`,
          b.backend,
          b.bridgeCpuUsPerMessage[key],
          floor.totalUs * 2,
          "µs",
          false,
        );
        check(
          `statements-${key}`,
          `${name} database statements per message`,
          b.backend,
          b.queriesPerMessage[key],
          8,
          "statements",
          false,
        );
        check(
          `latency-p50-${key}`,
          `${name} added latency at 100 msg/s, p50`,
          b.backend,
          d.at100.p50Ms,
          2,
          "ms",
          false,
        );
      }
      check(
        `latency-p99-${key}`,
        `${name} added latency at 100 msg/s, p99`,
        b.backend,
        d.at100.p99Ms,
        sqlite ? 10 : 20,
        "ms",
        false,
      );
      // Issue 12: the throughput and latency targets stay in force with encrypted portals.
      const e = b.encrypted?.[key];
      if (e !== undefined) {
        check(
          `throughput-${key}-encrypted`,
          `${name} throughput, encrypted portals, >= ${share}x the floor`,
          b.backend,
          e.throughput.perSecond,
          floor.messagesPerSecond * share,
          "msg/s",
          true,
        );
        check(
          `latency-p99-${key}-encrypted`,
          `${name} added latency at 100 msg/s, encrypted portals, p99`,
          b.backend,
          e.at100.p99Ms,
          sqlite ? 10 : 20,
          "ms",
          false,
        );
      }
    }
    const empty = b.memory.find((m) => m.users === 0);
    const tenK = b.memory.find((m) => m.users === 10_000);
    check("idle-rss-0", "idle RSS, empty", b.backend, empty?.rssMb, 120, "MB", false);
    check("idle-rss-10k", "idle RSS with 10,000 users", b.backend, tenK?.rssMb, 140, "MB", false);
    check(
      "ready-10k",
      "start to ready with 10,000 users",
      b.backend,
      tenK?.readySeconds,
      2,
      "s",
      false,
    );
  }
  return targets;
}

// --- text ------------------------------------------------------------------------------------

const f = (v: number, digits = 2) => (Number.isFinite(v) ? v.toFixed(digits) : "n/a");
const x = (v: number) => (Number.isFinite(v) ? `${v.toFixed(2)}x` : "n/a");

export function textReport(r: Results): string {
  const lines: string[] = [];
  const m = r.machine;
  lines.push(
    `machine: ${m.cpuModel}, ${m.cores} cores, node ${m.node}, load ${m.loadAverageAtStart.join(" ")} at start, ` +
      `${m.loadAverageAtEnd.join(" ")} at end${m.loaded ? "  ** LOADED MACHINE: figures are pessimistic **" : ""}`,
  );
  const fl = r.floor;
  lines.push(
    `floor per message: ${f(fl.totalUs, 0)} µs = libsignal decrypt+encrypt ${f(fl.cryptoUs, 0)} µs + ` +
      `SQLite WAL commit ${f(fl.commitUs, 0)} µs + loopback HTTP round trip ${f(fl.httpUs, 0)} µs ` +
      `-> ${f(fl.messagesPerSecond, 0)} msg/s per direction per core`,
  );
  for (const b of r.backends) {
    lines.push("", `${b.backend} (${b.portals} portals):`);
    lines.push(
      `  ${"".padEnd(20)} ${"msg/s".padStart(8)} ${"ratio".padStart(7)}   ` +
        `${"@rate".padStart(6)} ${"p50 ms".padStart(8)} ${"ratio".padStart(8)} ${"p99 ms".padStart(8)} ${"ratio".padStart(8)} ${"max ms".padStart(9)} ${"ratio".padStart(9)}`,
    );
    for (const [name, d] of [
      ["Matrix -> WhatsApp", b.m2w],
      ["WhatsApp -> Matrix", b.w2m],
    ] as const) {
      for (const [i, l] of [d.at100, d.at80].entries()) {
        const head =
          i === 0
            ? `  ${name.padEnd(20)} ${f(d.throughput.perSecond, 0).padStart(8)} ${x(d.throughput.ratio).padStart(7)}`
            : `  ${"".padEnd(20)} ${"".padStart(8)} ${"".padStart(7)}`;
        lines.push(
          `${head}   ${String(l.rate).padStart(6)} ${f(l.p50Ms).padStart(8)} ${x(l.p50Ratio).padStart(8)} ` +
            `${f(l.p99Ms).padStart(8)} ${x(l.p99Ratio).padStart(8)} ${f(l.maxMs).padStart(9)} ${x(l.maxRatio).padStart(9)}`,
        );
      }
    }
    lines.push(
      `  bridge CPU per message at maximum: ${f(b.bridgeCpuUsPerMessage.m2w, 0)} µs (M->W, ` +
        `${x(b.bridgeCpuRatio.m2w)} floor), ${f(b.bridgeCpuUsPerMessage.w2m, 0)} µs (W->M, ` +
        `${x(b.bridgeCpuRatio.w2m)} floor)`,
      `  database statements per message (at the driver): ${f(b.queriesPerMessage.m2w, 1)} (M->W), ` +
        `${f(b.queriesPerMessage.w2m, 1)} (W->M); group commits per message: ` +
        `${f(b.commitsPerMessage.m2w, 2)} (M->W), ${f(b.commitsPerMessage.w2m, 2)} (W->M)`,
    );
    const e = b.encrypted;
    if (e !== undefined) {
      lines.push(
        `  encrypted portals (Megolm), beside plaintext:`,
        `  ${"".padEnd(20)} ${"plain".padStart(8)} ${"Megolm".padStart(8)} ${"ratio".padStart(7)}   ` +
          `${"p50@100".padStart(8)} ${"p99@100".padStart(8)}   ${"CPU µs".padStart(7)} ${"plain".padStart(7)} ${"ratio".padStart(7)}`,
      );
      for (const [key, name] of [
        ["m2w", "Matrix -> WhatsApp"],
        ["w2m", "WhatsApp -> Matrix"],
      ] as const) {
        lines.push(
          `  ${name.padEnd(20)} ${f(b[key].throughput.perSecond, 0).padStart(8)} ` +
            `${f(e[key].throughput.perSecond, 0).padStart(8)} ${x(e.overPlaintext.throughput[key]).padStart(7)}   ` +
            `${f(e[key].at100.p50Ms).padStart(8)} ${f(e[key].at100.p99Ms).padStart(8)}   ` +
            `${f(e.bridgeCpuUsPerMessage[key], 0).padStart(7)} ${f(b.bridgeCpuUsPerMessage[key], 0).padStart(7)} ` +
            `${x(e.overPlaintext.cpu[key]).padStart(7)}`,
        );
      }
      lines.push(
        `  encrypted: statements per message ${f(e.queriesPerMessage.m2w, 1)} (M->W), ` +
          `${f(e.queriesPerMessage.w2m, 1)} (W->M); the user's device decrypted ` +
          `${e.userDecrypted.decrypted}/${e.w2m.throughput.messages} of the W->M maximum run ` +
          `(${e.userDecrypted.undecryptable} undecryptable)`,
      );
    }
    for (const mem of b.memory) {
      lines.push(
        `  ${String(mem.users).padStart(6)} users and portals: idle RSS ${f(mem.rssMb, 1)} MB (${x(mem.rssRatio)} empty), ` +
          `ready in ${f(mem.readySeconds)} s (${x(mem.readyRatio)} empty; startBridge ${f(mem.startBridgeSeconds)} s)`,
      );
    }
  }
  lines.push("", "targets:");
  for (const t of r.targets) {
    const verdict = t.pass === null ? "n/a " : t.pass ? "pass" : "MISS";
    lines.push(
      `  ${verdict}  [${t.backend}] ${t.description}: ${t.value === null ? "not measured" : `${f(t.value)} ${t.unit}`} ` +
        `(target ${t.id.startsWith("throughput") ? ">=" : "<="} ${f(t.limit)} ${t.unit})`,
    );
  }
  return lines.join("\n");
}

// --- SVG -------------------------------------------------------------------------------------

function esc(s: string): string {
  return s
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;");
}

const COLORS = { m2w: "#3b7dd8", w2m: "#d8863b", p50: "#5aa469", p99: "#d8b43b", max: "#c2453d" };

/** Throughput bars against the floor, and latency percentiles on a log scale. */
export function svgChart(r: Results): string {
  const width = 960;
  const height = 420;
  const top = 60;
  const bottom = 330;
  const out: string[] = [];
  const text = (x0: number, y: number, s: string, extra = "") =>
    out.push(`<text x="${x0.toFixed(1)}" y="${y.toFixed(1)}" ${extra}>${esc(s)}</text>`);
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
  );
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  const m = r.machine;
  text(
    12,
    18,
    `matrix-whatsapp-interop benchmark, ${r.finishedAt.slice(0, 16).replace("T", " ")} UTC, ${r.mode} run`,
    'font-size="14" font-weight="bold"',
  );
  text(
    12,
    36,
    `${m.cpuModel}, ${m.cores} cores, node ${m.node}, load at start ${m.loadAverageAtStart.join(" ")}` +
      (m.loaded ? " (LOADED MACHINE)" : ""),
    m.loaded ? 'fill="#c2453d"' : "",
  );

  // Left panel: throughput.
  const left = { x: 60, w: 330 };
  // Encrypted portals (issue 12): the same colour, paler, beside the plaintext bar.
  const bars = r.backends.flatMap((b) => [
    {
      label: "M→W",
      backend: b.backend,
      value: b.m2w.throughput.perSecond,
      color: COLORS.m2w,
      pale: false,
    },
    ...(b.encrypted === undefined
      ? []
      : [
          {
            label: "M→W e2e",
            backend: "",
            value: b.encrypted.m2w.throughput.perSecond,
            color: COLORS.m2w,
            pale: true,
          },
        ]),
    {
      label: "W→M",
      backend: "",
      value: b.w2m.throughput.perSecond,
      color: COLORS.w2m,
      pale: false,
    },
    ...(b.encrypted === undefined
      ? []
      : [
          {
            label: "W→M e2e",
            backend: "",
            value: b.encrypted.w2m.throughput.perSecond,
            color: COLORS.w2m,
            pale: true,
          },
        ]),
  ]);
  const maxT =
    Math.max(
      r.floor.messagesPerSecond,
      ...bars.map((b) => (Number.isFinite(b.value) ? b.value : 0)),
    ) * 1.1;
  const yT = (v: number) => bottom - ((bottom - top) * v) / maxT;
  text(left.x, top - 8, "Throughput, messages/s", 'font-weight="bold"');
  out.push(
    `<line x1="${left.x}" y1="${bottom}" x2="${left.x + left.w}" y2="${bottom}" stroke="#333"/>`,
  );
  out.push(`<line x1="${left.x}" y1="${top}" x2="${left.x}" y2="${bottom}" stroke="#333"/>`);
  for (const tick of niceTicks(maxT)) {
    out.push(
      `<line x1="${left.x - 4}" y1="${yT(tick).toFixed(1)}" x2="${left.x}" y2="${yT(tick).toFixed(1)}" stroke="#333"/>`,
    );
    text(left.x - 6, yT(tick) + 4, String(tick), 'text-anchor="end"');
  }
  const slot = left.w / Math.max(1, bars.length);
  bars.forEach((b, i) => {
    const v = Number.isFinite(b.value) ? b.value : 0;
    const x0 = left.x + i * slot + slot * 0.2;
    out.push(
      `<rect x="${x0.toFixed(1)}" y="${yT(v).toFixed(1)}" width="${(slot * 0.6).toFixed(1)}" height="${(bottom - yT(v)).toFixed(1)}" fill="${b.color}"${b.pale ? ' fill-opacity="0.45"' : ""}/>`,
    );
    text(x0 + slot * 0.3, yT(v) - 4, v.toFixed(0), 'text-anchor="middle"');
    text(x0 + slot * 0.3, bottom + 14, b.label, 'text-anchor="middle"');
    if (b.backend !== "") text(x0, bottom + 28, b.backend);
  });
  for (const [v, label] of [
    [r.floor.messagesPerSecond, "floor"],
    [r.floor.messagesPerSecond / 2, "target: half the floor"],
  ] as const) {
    out.push(
      `<line x1="${left.x}" y1="${yT(v).toFixed(1)}" x2="${left.x + left.w}" y2="${yT(v).toFixed(1)}" stroke="#666" stroke-dasharray="4 3"/>`,
    );
    text(left.x + left.w, yT(v) - 3, `${label} ${v.toFixed(0)}`, 'text-anchor="end" fill="#444"');
  }

  // Right panel: latency percentiles, log scale.
  const right = { x: 470, w: 470 };
  const groups = r.backends.flatMap((b) =>
    (
      [
        ["M→W", b.m2w],
        ["W→M", b.w2m],
      ] as const
    ).flatMap(([name, d]) => [
      { label: `${b.backend} ${name}`, sub: `${d.at100.rate}/s`, l: d.at100 },
      { label: "", sub: `${d.at80.rate}/s`, l: d.at80 },
    ]),
  );
  const values = groups
    .flatMap((g) => [g.l.p50Ms, g.l.p99Ms, g.l.maxMs])
    .filter((v) => Number.isFinite(v) && v > 0);
  const lo = Math.pow(10, Math.floor(Math.log10(Math.min(0.1, ...values))));
  const hi = Math.pow(10, Math.ceil(Math.log10(Math.max(10, ...values))));
  const yL = (v: number) =>
    bottom -
    ((bottom - top) * (Math.log10(Math.max(v, lo)) - Math.log10(lo))) /
      (Math.log10(hi) - Math.log10(lo));
  text(right.x, top - 8, "Added latency, ms (log scale): p50, p99, max", 'font-weight="bold"');
  out.push(
    `<line x1="${right.x}" y1="${bottom}" x2="${right.x + right.w}" y2="${bottom}" stroke="#333"/>`,
  );
  out.push(`<line x1="${right.x}" y1="${top}" x2="${right.x}" y2="${bottom}" stroke="#333"/>`);
  for (let d = lo; d <= hi; d *= 10) {
    out.push(
      `<line x1="${right.x - 4}" y1="${yL(d).toFixed(1)}" x2="${right.x + right.w}" y2="${yL(d).toFixed(1)}" stroke="#ddd"/>`,
    );
    text(right.x - 6, yL(d) + 4, String(round(d, 3)), 'text-anchor="end"');
  }
  for (const [v, label] of [
    [2, "p50 target 2 ms"],
    [10, "p99 target 10 ms"],
  ] as const) {
    out.push(
      `<line x1="${right.x}" y1="${yL(v).toFixed(1)}" x2="${right.x + right.w}" y2="${yL(v).toFixed(1)}" stroke="#666" stroke-dasharray="4 3"/>`,
    );
    text(right.x + right.w, yL(v) - 3, label, 'text-anchor="end" fill="#444"');
  }
  const gslot = right.w / Math.max(1, groups.length);
  groups.forEach((g, i) => {
    const x0 = right.x + i * gslot + gslot * 0.1;
    const bw = (gslot * 0.8) / 3;
    (
      [
        [g.l.p50Ms, COLORS.p50],
        [g.l.p99Ms, COLORS.p99],
        [g.l.maxMs, COLORS.max],
      ] as const
    ).forEach(([v, color], k) => {
      if (!Number.isFinite(v)) return;
      out.push(
        `<rect x="${(x0 + k * bw).toFixed(1)}" y="${yL(v).toFixed(1)}" width="${(bw - 1).toFixed(1)}" height="${(bottom - yL(v)).toFixed(1)}" fill="${color}"/>`,
      );
    });
    text(x0 + gslot * 0.4, bottom + 14, g.sub, 'text-anchor="middle"');
    if (g.label !== "") text(x0 + gslot, bottom + 28, g.label, 'text-anchor="middle"');
  });

  // Legend and memory line.
  const legend: [string, string][] = [
    ["Matrix → WhatsApp", COLORS.m2w],
    ["WhatsApp → Matrix", COLORS.w2m],
    ["p50", COLORS.p50],
    ["p99", COLORS.p99],
    ["max", COLORS.max],
  ];
  legend.forEach(([label, color], i) => {
    const x0 = 60 + i * 150;
    out.push(`<rect x="${x0}" y="${height - 50}" width="10" height="10" fill="${color}"/>`);
    text(x0 + 14, height - 41, label);
  });
  const mem = r.backends
    .map((b) => {
      const big = [...b.memory].sort((a, c) => c.users - a.users)[0];
      return big === undefined
        ? `${b.backend}: memory not measured`
        : `${b.backend}: ${big.users} users idle RSS ${big.rssMb.toFixed(0)} MB, ready ${big.readySeconds.toFixed(2)} s`;
    })
    .join("; ");
  const cpu = r.backends
    .map((b) => {
      const plain = `${b.bridgeCpuUsPerMessage.m2w.toFixed(0)}/${b.bridgeCpuUsPerMessage.w2m.toFixed(0)} µs`;
      const e = b.encrypted?.bridgeCpuUsPerMessage;
      return `${b.backend} ${plain}${e === undefined ? "" : `, e2e ${e.m2w.toFixed(0)}/${e.w2m.toFixed(0)} µs`}`;
    })
    .join("; ");
  text(
    60,
    height - 26,
    `bridge CPU per message (M→W/W→M, plaintext; e2e = Megolm portals): ${cpu}`,
  );
  text(
    60,
    height - 10,
    `floor ${r.floor.totalUs.toFixed(0)} µs/msg (${r.floor.messagesPerSecond.toFixed(0)} msg/s). ${mem}`,
  );
  out.push("</svg>");
  return out.join("\n") + "\n";
}

function niceTicks(max: number): number[] {
  const step = Math.pow(10, Math.floor(Math.log10(max)));
  const unit = max / step > 5 ? step : max / step > 2 ? step / 2 : step / 5;
  const ticks: number[] = [];
  for (let v = 0; v <= max; v += unit) ticks.push(round(v, 3));
  return ticks;
}
