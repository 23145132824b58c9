/** Percentiles of added latency. */

export interface Latency {
  /** Offered rate, messages per second. */
  readonly rate: number;
  readonly messages: number;
  /** Messages that came out on the other side (the percentiles are over these). */
  readonly delivered: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

/** Nearest-rank percentile of sorted values; NaN for none. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] as number;
}

export function latencyOf(latenciesMs: readonly number[], rate: number, messages: number): Latency {
  const sorted = [...latenciesMs].sort((a, b) => a - b);
  return {
    rate,
    messages,
    delivered: sorted.length,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    maxMs: sorted.length === 0 ? Number.NaN : (sorted[sorted.length - 1] as number),
  };
}
