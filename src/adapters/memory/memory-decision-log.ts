import { DAY_MS } from '../../domain/features/time.js';
import type { Labelled } from '../../domain/performance/delong.js';
import {
  addField,
  binOf,
  type DecisionRole,
  decisionFields,
  emptyCounts,
  latencyHours,
  matureDay,
  mergeCounts,
  type OutcomeCounts,
  outcomeFields,
  packDecision,
  unpackDecision,
} from '../../domain/performance/outcomes.js';
import type { Decision } from '../../domain/scoring/decision.js';
import type { Clock } from '../../ports/clock.js';
import type {
  DecisionEntry,
  DecisionLog,
  LabelFact,
  LabelResult,
  VersionLabel,
} from '../../ports/decision-log.js';

interface Expiring<T> {
  value: T;
  expires: number;
}

interface VersionState {
  /** Counter fields per decision day. */
  readonly counts: Map<number, Expiring<Map<string, number>>>;
  /** Last label applied per transaction, per decision day: `<0|1><score>`. */
  readonly labels: Map<number, Expiring<Map<string, string>>>;
}

/**
 * The decision log of one process (the embedded store), with the same records and rules as the Redis one: a
 * packed string per (transaction, version), expiring after the horizon; counts per version and decision day.
 */
export class MemoryDecisionLog implements DecisionLog {
  readonly kind = 'memory';
  private readonly decisions = new Map<string, Expiring<Map<string, string>>>();
  private readonly state = new Map<string, VersionState>();
  private readonly roles = new Map<string, Map<string, DecisionRole>>();
  private readonly unscoredLabels = new Map<string, Expiring<Set<string>>>();
  private sinceSweep = 0;

  constructor(
    private readonly clock: Clock,
    private readonly horizonMs: number,
  ) {}

  async record(model: string, entries: readonly DecisionEntry[]): Promise<void> {
    const now = this.clock.now();
    for (const e of entries) {
      const key = `${model}\u0000${e.transactionId}`;
      let held = this.decisions.get(key);
      if (!held || held.expires <= now) {
        held = { value: new Map(), expires: 0 };
        this.decisions.set(key, held);
      }
      held.expires = now + this.horizonMs;
      for (const d of e.decisions) {
        held.value.set(d.version, packDecision(d));
        const counts = this.day(this.version(model, d.version).counts, dayOf(d.at), () => new Map(), now);
        for (const f of decisionFields({ bin: binOf(d.score), decision: d.decision }))
          counts.set(f, (counts.get(f) ?? 0) + 1);
        this.rolesOf(model).set(d.version, d.role);
      }
    }
    this.sinceSweep += entries.length;
    if (this.sinceSweep >= 10_000) this.sweep(now);
  }

  async label(model: string, labels: readonly LabelFact[]): Promise<LabelResult[]> {
    const now = this.clock.now();
    return labels.map((l) => {
      const held = this.decisions.get(`${model}\u0000${l.transactionId}`);
      if (!held || held.expires <= now || held.value.size === 0) {
        const key = `${model}\u0000${dayOf(l.transactionAt)}`;
        let set = this.unscoredLabels.get(key);
        if (!set || set.expires <= now) {
          set = { value: new Set(), expires: 0 };
          this.unscoredLabels.set(key, set);
        }
        set.expires = now + this.horizonMs;
        const fresh = !set.value.has(l.transactionId);
        set.value.add(l.transactionId);
        return { unscored: true, outcome: fresh ? 'new' : 'duplicate' };
      }
      const versions: VersionLabel[] = [];
      for (const [version, packed] of held.value) {
        const d = unpackDecision(packed);
        if (!d) continue;
        const outcome = this.apply(this.version(model, version), l, { ...d, bin: binOf(d.score) }, now);
        versions.push({ version, role: d.role, decision: d.decision, outcome });
      }
      return { unscored: false, versions };
    });
  }

  /** The label script's rules (see redis-decision-log.ts), on one version's state. */
  private apply(
    s: VersionState,
    l: LabelFact,
    d: { decision: Decision; at: number; score: number; bin: number },
    now: number,
  ): VersionLabel['outcome'] {
    const day = dayOf(d.at);
    const labels = this.day(s.labels, day, () => new Map<string, string>(), now);
    const prev = labels.get(l.transactionId);
    const prevFraud = prev === undefined ? undefined : prev[0] === '1';
    if (prevFraud === l.fraud) return 'duplicate';
    const counts = this.day(s.counts, day, () => new Map<string, number>(), now);
    const inc = (f: string, by: number) => counts.set(f, (counts.get(f) ?? 0) + by);
    if (prevFraud !== undefined) for (const f of outcomeFields({ ...d, fraud: prevFraud })) inc(f, -1);
    for (const f of outcomeFields({ ...d, fraud: l.fraud })) inc(f, 1);
    if (prev === undefined) {
      inc('e', 1);
      inc(`h${latencyHours(l.labelledAt, d.at)}`, 1);
    }
    labels.set(l.transactionId, `${l.fraud ? 1 : 0}${Number(d.score.toPrecision(9))}`);
    return prev === undefined ? 'new' : 'corrected';
  }

  async versions(model: string): Promise<ReadonlyMap<string, DecisionRole>> {
    return new Map([...this.rolesOf(model)].sort(([a], [b]) => Number(a) - Number(b)));
  }

  async counts(
    model: string,
    version: string,
    fromDay: number,
    maturedThroughDay: number,
  ): Promise<OutcomeCounts> {
    const now = this.clock.now();
    const out = emptyCounts();
    for (const [day, held] of this.version(model, version).counts) {
      if (day < fromDay || held.expires <= now) continue;
      const c = emptyCounts();
      for (const [f, v] of held.value) addField(c, f, v);
      if (day <= maturedThroughDay) matureDay(c);
      mergeCounts(out, c);
    }
    return out;
  }

  async labelled(model: string, version: string, fromDay: number): Promise<Map<string, Labelled>> {
    const now = this.clock.now();
    const out = new Map<string, Labelled>();
    for (const [day, held] of this.version(model, version).labels)
      if (day >= fromDay && held.expires > now)
        for (const [id, v] of held.value) out.set(id, { fraud: v[0] === '1', score: Number(v.slice(1)) });
    return out;
  }

  async unscored(model: string): Promise<number> {
    const now = this.clock.now();
    let n = 0;
    for (const [key, held] of this.unscoredLabels)
      if (key.startsWith(`${model}\u0000`) && held.expires > now) n += held.value.size;
    return n;
  }

  private version(model: string, version: string): VersionState {
    const key = `${model}\u0000${version}`;
    let s = this.state.get(key);
    if (!s) {
      s = { counts: new Map(), labels: new Map() };
      this.state.set(key, s);
    }
    return s;
  }

  private rolesOf(model: string): Map<string, DecisionRole> {
    let r = this.roles.get(model);
    if (!r) {
      r = new Map();
      this.roles.set(model, r);
    }
    return r;
  }

  /** A day's map, kept until the horizon after the day ends. */
  private day<T>(of: Map<number, Expiring<T>>, day: number, make: () => T, now: number): T {
    let held = of.get(day);
    if (!held || held.expires <= now) {
      held = { value: make(), expires: (day + 1) * DAY_MS + this.horizonMs };
      of.set(day, held);
    }
    return held.value;
  }

  private sweep(now: number): void {
    this.sinceSweep = 0;
    for (const [k, held] of this.decisions) if (held.expires <= now) this.decisions.delete(k);
  }
}

const dayOf = (t: number) => Math.floor(t / DAY_MS);
