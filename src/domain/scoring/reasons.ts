import { z } from 'zod';
import type { Manifest } from '../models/manifest.js';

export const ReasonCodeSchema = z.object({
  feature: z.string(),
  value: z.number(),
  explanation: z.string(),
});
export type ReasonCode = z.infer<typeof ReasonCodeSchema>;

export interface ReasonOptions {
  /** At most this many reasons, strongest first. */
  readonly max?: number;
  /** Deviations smaller than this many standard deviations are not worth explaining. */
  readonly minSigma?: number;
}

/** A model input row (manifest input order) → its reason codes. */
export type Explain = (row: ArrayLike<number>) => ReasonCode[];

/**
 * Reasons from the manifest alone: each input's deviation from its training mean in standard deviations, weighted by
 * its importance, keeping only deviations in the direction that raises the score. `directions[i]` is +1 when larger
 * values of input i raise the score, −1 when smaller ones do, 0 to never cite it; by default every input is +1.
 */
export function compileReasons(
  manifest: Pick<Manifest, 'inputs' | 'importance' | 'reference'>,
  directions?: ArrayLike<number>,
  options: ReasonOptions = {},
): Explain {
  const max = options.max ?? 3;
  const minSigma = options.minSigma ?? 1;
  const n = manifest.inputs.length;
  const mean = new Float64Array(n);
  const std = new Float64Array(n);
  const weight = new Float64Array(n);
  manifest.inputs.forEach((name, i) => {
    const m = manifest.reference.moments[name];
    mean[i] = m?.mean ?? 0;
    std[i] = m?.std ?? 0;
    // No spread in training means the model cannot have learned anything from the input.
    weight[i] = m && m.std > 0 ? (manifest.importance[name] ?? 0) : 0;
  });
  const direction = Float64Array.from({ length: n }, (_, i) => Math.sign(directions?.[i] ?? 1));
  const picked = new Int32Array(max);
  const strength = new Float64Array(max);

  return (row) => {
    let k = 0;
    for (let i = 0; i < n; i++) {
      if (weight[i] === 0 || direction[i] === 0) continue;
      const push = ((row[i]! - mean[i]!) / std[i]!) * direction[i]!;
      if (!(push >= minSigma)) continue;
      const s = push * weight[i]!;
      let j: number;
      if (k < max) j = k++;
      else if (s > strength[max - 1]!) j = max - 1;
      else continue;
      while (j > 0 && strength[j - 1]! < s) {
        strength[j] = strength[j - 1]!;
        picked[j] = picked[j - 1]!;
        j--;
      }
      strength[j] = s;
      picked[j] = i;
    }
    const out: ReasonCode[] = [];
    for (let r = 0; r < k; r++) {
      const i = picked[r]!;
      const feature = manifest.inputs[i]!;
      const value = round(row[i]!);
      const sigmas = (value - mean[i]!) / std[i]!;
      const side = sigmas >= 0 ? 'above' : 'below';
      const typical = `${Math.abs(sigmas).toFixed(1)}σ ${side} typical`;
      const words = plainWords(feature, value);
      out.push({
        feature,
        value,
        explanation: words
          ? `${words} (${typical})`
          : `${feature} is ${typical} (${round(value, 4)} vs mean ${round(mean[i]!, 3)})`,
      });
    }
    return out;
  };
}

/** Rows arrive as float32; seven significant digits print them without float32 noise (312.4, not 312.3999938964844). */
function round(v: number, digits = 7): number {
  return Number(v.toPrecision(digits));
}

const PERIOD = (days: string) => (days === '1' ? '24 h' : `${days} days`);
const PLURAL = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;

/**
 * Device and network features (transaction_v3) in plain words, as an analyst reads them: "device used by 14 cards
 * in 24 h". Undefined for other features, which keep the σ form.
 */
const PHRASES: readonly [RegExp, (v: number, m: RegExpMatchArray) => string][] = [
  [
    /^DEVICE_ID_NB_CUSTOMERS_(\d+)DAY_WINDOW$/,
    (v, m) => `device used by ${PLURAL(v, 'card', 'cards')} in ${PERIOD(m[1]!)}`,
  ],
  [
    /^IP_NB_CUSTOMERS_(\d+)DAY_WINDOW$/,
    (v, m) => `IP address used by ${PLURAL(v, 'card', 'cards')} in ${PERIOD(m[1]!)}`,
  ],
  [
    /^NETWORK_NB_CUSTOMERS_(\d+)DAY_WINDOW$/,
    (v, m) => `network (IP /24 or /48) used by ${PLURAL(v, 'card', 'cards')} in ${PERIOD(m[1]!)}`,
  ],
  [
    /^DEVICE_ID_NB_TX_(\d+)DAY_WINDOW$/,
    (v, m) => `${PLURAL(v, 'transaction', 'transactions')} from this device in ${PERIOD(m[1]!)}`,
  ],
  [
    /^NETWORK_NB_TX_(\d+)DAY_WINDOW$/,
    (v, m) => `${PLURAL(v, 'transaction', 'transactions')} from this network in ${PERIOD(m[1]!)}`,
  ],
  [
    /^CUSTOMER_ID_NB_DEVICES_(\d+)DAY_WINDOW$/,
    (v, m) => `card used on ${PLURAL(v, 'device', 'devices')} in ${PERIOD(m[1]!)}`,
  ],
  [
    /^CUSTOMER_ID_NB_NETWORKS_(\d+)DAY_WINDOW$/,
    (v, m) => `card used from ${PLURAL(v, 'network', 'networks')} in ${PERIOD(m[1]!)}`,
  ],
  [
    /^CUSTOMER_ID_NEW_DEVICE_(\d+)DAY_WINDOW$/,
    (v, m) =>
      v >= 1 ? `a device this card has not used in ${PERIOD(m[1]!)}` : 'a device this card has used before',
  ],
  [
    /^CUSTOMER_ID_NEW_NETWORK_(\d+)DAY_WINDOW$/,
    (v, m) =>
      v >= 1 ? `a network this card has not used in ${PERIOD(m[1]!)}` : 'a network this card has used before',
  ],
  [
    /^CUSTOMER_ID_SECONDS_SINCE_FIRST_DEVICE_USE_(\d+)DAY_WINDOW$/,
    (v) =>
      `card first used this device ${v < 3600 ? `${Math.round(v / 60)} min` : v < 172_800 ? `${Math.round(v / 3600)} h` : `${Math.round(v / 86_400)} days`} ago`,
  ],
];

export function plainWords(feature: string, value: number): string | undefined {
  for (const [pattern, say] of PHRASES) {
    const m = pattern.exec(feature);
    if (m) return say(Math.round(value), m);
  }
  return undefined;
}
