import type { TxInput } from '../../src/domain/features/engine.js';
import { DAY_MS } from '../../src/domain/features/time.js';

/** mulberry32: a tiny seeded PRNG so generated data is the same on every run. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface GeneratedTx extends TxInput {
  readonly fraud: boolean;
}

export interface GenerateOptions {
  seed?: number;
  days?: number;
  customers?: number;
  terminals?: number;
  perDay?: number;
  start?: string;
  /**
   * Give transactions device ids and IPs (from their own random stream, so the rest is as without): customers keep
   * a few devices and a home network, some transactions lack one or both, and a few devices and networks are
   * shared by many customers (card testing, rings). IPv6 networks too, and addresses on /24 and /48 edges.
   */
  devices?: boolean;
}

/**
 * Transactions in time order with deliberate hazards: equal timestamps for one customer and one terminal,
 * events exactly on window boundaries, and whole-second times like the handbook's.
 */
export function generateTransactions(o: GenerateOptions = {}): GeneratedTx[] {
  const r = rng(o.seed ?? 1);
  const days = o.days ?? 10;
  const customers = o.customers ?? 20;
  const terminals = o.terminals ?? 15;
  const perDay = o.perDay ?? 40;
  const start = Date.parse(o.start ?? '2018-04-01T00:00:00Z');
  const out: GeneratedTx[] = [];
  let n = 0;
  for (let d = 0; d < days; d++) {
    for (let k = 0; k < perDay; k++) {
      const t = start + d * DAY_MS + Math.floor(r() * 86_400) * 1000;
      const c = Math.floor(r() * customers);
      const m = Math.floor(r() * terminals);
      const base = { customer_id: `C${c}`, terminal_id: `T${m}`, amount: Math.round(r() * 20_000) / 100 };
      out.push({ ...base, id: `tx${n++}`, t, fraud: r() < 0.08 });
      const hazard = r();
      if (hazard < 0.05) out.push({ ...base, id: `tx${n++}`, t, amount: base.amount + 1, fraud: false });
      else if (hazard < 0.08) out.push({ ...base, id: `tx${n++}`, t: t + DAY_MS, fraud: false });
      else if (hazard < 0.11) out.push({ ...base, id: `tx${n++}`, t: t + 7 * DAY_MS, fraud: r() < 0.5 });
    }
  }
  if (o.devices) withDevices(out, o.seed ?? 1);
  // Stable sort keeps the generation order for equal times: that is the arrival order.
  return out.sort((a, b) => a.t - b.t);
}

function withDevices(out: GeneratedTx[], seed: number): void {
  const r = rng(seed * 7919 + 13);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const shared = ['D-shared-0', 'D-shared-1'];
  const nets = ['203.0.113.7', '203.0.113.250', '2001:db8:aa::1', '2001:0db8:00aa:ffff::2', '198.51.100.9'];
  for (const [i, x] of out.entries()) {
    const c = Number(x.customer_id.slice(1)) || 0;
    const u = r();
    const device_id =
      u < 0.1 ? undefined : u < 0.25 ? pick(shared) : `D${c}-${Math.floor(r() * (1 + (c % 3)))}`;
    const v = r();
    const ip =
      v < 0.1
        ? undefined
        : v < 0.3
          ? pick(nets)
          : c % 4 === 0
            ? `2001:db8:${c.toString(16)}::${i % 7}`
            : `10.0.${c}.${i % 250}`;
    out[i] = { ...x, ...(device_id ? { device_id } : {}), ...(ip ? { ip } : {}) };
  }
}

export type GeneratedRow = GeneratedTx & { readonly datetime: string };

/** Generated transactions as handbook rows (what replay and backfill read), TX_DATETIME in ISO-8601. */
export function handbookRows(txs: readonly GeneratedTx[]): GeneratedRow[] {
  return txs.map((t) => ({ ...t, datetime: new Date(t.t).toISOString() }));
}
