import { isInvalid, INVALID, type Invalid } from "./validate.js";

/**
 * Voice-message waveforms. Matrix (MSC1767 audio, used by MSC3245 voice messages) carries any
 * number of amplitudes 0-1024; the neutral model, like the network, carries exactly 64 amplitudes
 * 0-100.
 */
const NEUTRAL_SAMPLES = 64;
const MATRIX_MAX = 1024;
const NEUTRAL_MAX = 100;
/** Far beyond what clients send (Element: ~100); bounds the work done on hostile input. */
const MAX_MATRIX_SAMPLES = 4096;

/** Matrix waveform to 64 values 0-100 by averaging buckets; invalid input answers INVALID. */
export function waveformFromMatrix(raw: unknown): number[] | undefined | Invalid {
  if (raw === undefined) return undefined;
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > MAX_MATRIX_SAMPLES) return INVALID;
  const values: number[] = [];
  for (const v of raw as unknown[]) {
    if (typeof v !== "number" || !Number.isFinite(v) || v < 0 || v > MATRIX_MAX) return INVALID;
    values.push(v);
  }
  const out: number[] = [];
  for (let i = 0; i < NEUTRAL_SAMPLES; i++) {
    const from = Math.floor((i * values.length) / NEUTRAL_SAMPLES);
    const to = Math.max(from + 1, Math.floor(((i + 1) * values.length) / NEUTRAL_SAMPLES));
    let sum = 0;
    for (let j = from; j < to; j++) sum += values[j] ?? 0;
    out.push(Math.round(((sum / (to - from)) * NEUTRAL_MAX) / MATRIX_MAX));
  }
  return out;
}

/** Neutral waveform (0-100) to Matrix amplitudes (0-1024); out-of-range values are clamped. */
export function waveformToMatrix(values: readonly number[]): number[] {
  return values.map((v) => {
    const clamped = Number.isFinite(v) ? Math.min(NEUTRAL_MAX, Math.max(0, v)) : 0;
    return Math.round((clamped * MATRIX_MAX) / NEUTRAL_MAX);
  });
}

export const waveformIsUsable = (w: ReturnType<typeof waveformFromMatrix>): w is number[] =>
  w !== undefined && !isInvalid(w);
