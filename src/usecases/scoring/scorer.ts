import { ServiceError } from '../../domain/errors.js';
import type { Transaction } from '../../domain/events.js';
import {
  type CompiledFeatureSet,
  type EntitySpec,
  summaryQuery,
  unionOffsets,
} from '../../domain/features/engine.js';
import { NO_RECORDS, type SummaryQuery, type WindowSummary } from '../../domain/features/records.js';
import { txInputOf } from '../../domain/ingest.js';
import { decide } from '../../domain/scoring/decision.js';
import { FALLBACK_THRESHOLDS, fallbackScore } from '../../domain/scoring/fallback.js';
import type { DegradedReason, ScoreResult } from '../../domain/scoring/result.js';
import type { Clock } from '../../ports/clock.js';
import type { DecisionSink } from '../../ports/decision-sink.js';
import type { FeatureStore } from '../../ports/feature-store.js';
import type { Logger } from '../../ports/logger.js';
import type { ScoringMetrics } from '../../ports/metrics.js';
import type { Readiness, ScoreOptions, ScoringService } from '../../ports/scoring.js';
import type { Attributes, Span, TraceContext, Tracer } from '../../ports/tracer.js';
import type { ModelRegistry, Route } from '../models/registry.js';
import { AnswerCache } from './answer-cache.js';
import { auditDecisions } from './audit.js';
import { Deadline, DeadlineExceeded, withDeadline } from './deadline.js';
import type { DecisionRecorder } from './decision-recorder.js';
import { scheduleShadow } from './shadow.js';
import type { SharedAnswers, SharedOutcome } from './shared-answers.js';
import { type Explains, groupByVersion, newWork, type Work } from './work.js';

export interface ScorerDeps {
  readonly registry: ModelRegistry;
  readonly modelName: string;
  readonly store: FeatureStore;
  readonly featureSets: ReadonlyMap<string, CompiledFeatureSet>;
  readonly entities: readonly EntitySpec[];
  readonly clock: Clock;
  readonly logger: Logger;
  /** Where a decision's audit line goes, `audit: "decision"` bound (default: a child of `logger`). */
  readonly auditLog?: Logger;
  readonly metrics: ScoringMetrics;
  readonly decisions?: DecisionSink;
  /** Answers remembered by this process for retries of the same transaction id: the first level. */
  readonly cacheSize?: number;
  /** Answers shared by every replica: the second level, and the one that decides who audits. */
  readonly shared?: SharedAnswers;
  /** Whether the features may be stale (the workers have stopped making progress): answers say `features_stale`. */
  readonly featuresStale?: () => boolean;
  /** Given when tracing is on: spans for the request, the feature read, inference and the decision. */
  readonly tracer?: Tracer;
  /** The decision log: every decision a model version made (primary and shadow), for the label join. */
  readonly recorder?: DecisionRecorder;
}

const round3 = (ms: number) => Math.round(ms * 1000) / 1000;

/**
 * Transactions handled per turn of the event loop (features, decisions): a batch of 1,000 never holds the loop
 * for more than one slice, so the deadlines of other requests in flight hold while it is scored.
 */
const SLICE = 64;
/** Transactions per feature-store read: a large batch's replies arrive and are parsed in bounded steps. */
const READ_CHUNK = 256;
/** Rows per inference run: a large batch runs in bounded steps, and no step starts after the deadline. */
const MAX_RUN_ROWS = 256;
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Scores transactions: features from the store under the deadline (defaults when it cannot answer), then the
 * routed model version through its micro-batcher (a rule-based score when it cannot run), then decision,
 * reasons, metrics, audit. A valid transaction always gets an answer.
 */
export class Scorer implements ScoringService {
  private readonly cache: AnswerCache<Remembered>;
  /** Per entity of the union, the bounds of every set's windows (as offsets before the transaction). */
  private readonly offsets: readonly (readonly number[])[];
  private readonly entityIndex: Map<string, number[]>;
  /** Shadow runs in flight, for `shadowsSettled`. */
  private readonly shadows = new Set<Promise<void>>();
  private readonly auditLog: Logger;

  constructor(private readonly d: ScorerDeps) {
    this.auditLog = d.auditLog ?? d.logger.child({ audit: 'decision' });
    this.cache = new AnswerCache(d.cacheSize ?? 100_000);
    this.offsets = unionOffsets([...d.featureSets.values()], d.entities);
    this.entityIndex = new Map(
      [...d.featureSets.values()].map((s) => [
        s.id,
        s.entities.map((e) => d.entities.findIndex((u) => u.name === e.name)),
      ]),
    );
  }

  async score(txs: readonly Transaction[], o: ScoreOptions): Promise<ScoreResult[]> {
    const tracer = this.d.tracer;
    // Tracing off: no span anywhere below (each stage checks for `trace`).
    if (!tracer) return this.scoreTraced(txs, o, undefined);
    const span = tracer.start('fraudscore.score', {
      ...(o.trace ? { parent: o.trace } : {}),
      attributes: { 'fraudscore.transactions': txs.length },
    });
    try {
      const results = await this.scoreTraced(txs, o, span.context);
      if (span.recording) span.setAttributes(traceSummary(results));
      return results;
    } catch (err) {
      span.fail(err);
      throw err;
    } finally {
      span.end();
    }
  }

  private async scoreTraced(
    txs: readonly Transaction[],
    o: ScoreOptions,
    trace: TraceContext | undefined,
  ): Promise<ScoreResult[]> {
    const { clock, metrics } = this.d;
    const t0 = clock.monotonic();
    const results: ScoreResult[] = new Array(txs.length);
    const fresh: { index: number; fingerprint: string }[] = [];
    // Every conflict this process knows of is found before any model version is leased.
    for (let index = 0; index < txs.length; index++) {
      const tx = txs[index]!;
      const fingerprint = JSON.stringify(tx);
      const cached = this.cache.get(tx.transaction_id, fingerprint);
      if (cached.hit)
        results[index] = o.explain
          ? { ...cached.value.result, features: cached.value.explained.byName() }
          : cached.value.result;
      else if (cached.conflict)
        throw new ServiceError(
          'conflict',
          `transaction ${tx.transaction_id} was already scored with different content`,
        );
      else fresh.push({ index, fingerprint });
    }
    if (fresh.length === 0) return results;
    const stale = this.d.featuresStale?.() ?? false;
    const work: Work[] = new Array(fresh.length);
    for (let k = 0; k < fresh.length; k++) {
      const { index, fingerprint } = fresh[k]!;
      const tx = txs[index]!;
      const route = this.route(tx.customer_id);
      work[k] = newWork(index, tx, fingerprint, txInputOf(tx), route, stale ? ['features_stale'] : []);
    }

    let shadowsHandedOver = false;
    const deadline = new Deadline(o.deadline, clock);
    try {
      // The shared store is asked alongside the feature reads: no extra round trip before scoring.
      const shared = this.d.shared;
      const claims = shared?.claim(
        work.map((w) => {
          w.sharedFingerprint = shared.fingerprint(w.fingerprint);
          return { id: w.tx.transaction_id, fingerprint: w.sharedFingerprint };
        }),
        deadline,
      );
      claims?.catch(() => undefined);
      const records = await this.readFeatures(work, deadline, trace);
      if (claims) this.settleShared(work, await claims, results, o.explain);
      const todo = work.filter((w) => !w.settled);
      await this.computeAll(work, records, deadline);
      const t1 = clock.monotonic();
      await this.infer(todo, deadline, trace);
      const t2 = clock.monotonic();
      const decided =
        trace &&
        this.d.tracer!.start('fraudscore.decision', {
          parent: trace,
          attributes: { 'fraudscore.transactions': todo.length },
        });
      try {
        for (let i = 0; i < todo.length; i += SLICE) {
          if (i > 0) await nextTurn();
          for (const w of todo.slice(i, i + SLICE))
            this.explainAndDecide(w, results, o.explain, { t0, t1, t2 });
        }
      } finally {
        decided?.end();
      }
      if (this.d.shared) await this.shareAnswers(todo, results, o);
      const t3 = clock.monotonic();
      metrics.stageDuration.observe({ stage: 'features' }, (t1 - t0) / 1000);
      metrics.stageDuration.observe({ stage: 'inference' }, (t2 - t1) / 1000);
      metrics.stageDuration.observe({ stage: 'ensemble' }, (t3 - t2) / 1000);
      metrics.stageDuration.observe({ stage: 'total' }, (t3 - t0) / 1000);
      const answered = todo.filter((w) => !w.settled);
      auditDecisions(answered, results, this.auditLog, this.d.decisions, trace);
      if (this.d.recorder) this.recordDecisions(answered, results);
      const shadows = scheduleShadow(
        todo,
        this.d.logger,
        metrics,
        this.d.recorder && { recorder: this.d.recorder, clock },
      );
      if (shadows) {
        this.shadows.add(shadows);
        void shadows.finally(() => this.shadows.delete(shadows));
      }
      shadowsHandedOver = true;
    } finally {
      deadline.end();
      for (const w of work) {
        w.route?.primary.release();
        if (!shadowsHandedOver) w.route?.shadow?.release();
      }
    }
    return results;
  }

  /**
   * The decisions a model version made (not the fallback rules' answers, which say nothing of a version), into
   * the decision log, off the response path.
   */
  private recordDecisions(answered: readonly Work[], results: readonly ScoreResult[]): void {
    const at = this.d.clock.now();
    const entries = [];
    for (const w of answered) {
      if (w.score === undefined || !w.route) continue;
      const r = results[w.index]!;
      entries.push({
        transactionId: r.transaction_id,
        decisions: [
          { version: r.model.version, role: w.route.arm, score: r.score, decision: r.decision, at },
        ],
      });
    }
    this.d.recorder!.record(entries);
  }

  /** Takes the answers the shared store already holds; the rest are scored. */
  private settleShared(
    work: readonly Work[],
    outcomes: readonly SharedOutcome[],
    results: ScoreResult[],
    explain: boolean,
  ): void {
    work.forEach((w, k) => {
      const outcome = outcomes[k]!;
      w.shared = outcome;
      if (outcome.kind !== 'answered') return;
      const { result, features } = outcome.stored;
      results[w.index] = explain ? { ...result, features } : result;
      this.cache.set(w.tx.transaction_id, w.fingerprint, { result, explained: explainedAs(features) });
      w.settled = true;
    });
  }

  /**
   * Keeps each answer this request owns for every replica (a degraded one is given back instead), and replaces
   * an answer another request was computing at the same time by that request's, so both callers get one answer.
   */
  private async shareAnswers(todo: readonly Work[], results: ScoreResult[], o: ScoreOptions): Promise<void> {
    const shared = this.d.shared!;
    await Promise.all(
      todo.map(async (w) => {
        if (w.shared?.kind !== 'compute') return;
        const id = w.tx.transaction_id;
        const fingerprint = w.sharedFingerprint!;
        const mine = results[w.index]!;
        if (w.shared.owned) {
          if (mine.degraded) shared.forget(id, fingerprint);
          else {
            const { features: _, ...result } = mine;
            shared.remember(id, fingerprint, { result, features: w.explained!.byName() });
          }
          return;
        }
        if (!w.shared.pending) return;
        const other = await shared.awaitOther(id, fingerprint, o.deadline);
        if (!other) return;
        results[w.index] = o.explain ? { ...other.result, features: other.features } : other.result;
        // The request that holds the id audited its answer.
        w.settled = true;
      }),
    );
  }

  /** Resolves once the shadow runs started so far have settled (their decisions handed to the recorder). */
  async shadowsSettled(): Promise<void> {
    await Promise.all([...this.shadows]);
  }

  async readiness(): Promise<Readiness> {
    const active = this.d.registry.active(this.d.modelName);
    const store = await withDeadline(this.d.store.ping(), 1000).then(
      () => ({ ok: true }),
      (err: unknown) => ({ ok: false, detail: `${this.d.store.kind}: ${(err as Error).message}` }),
    );
    const model = active
      ? { ok: true, detail: `${active.id} loaded and warmed up` }
      : { ok: false, detail: `no active version of ${this.d.modelName}` };
    return { ready: model.ok && store.ok, checks: { model, feature_store: store } };
  }

  private route(customerId: string): Route | undefined {
    try {
      return this.d.registry.route(customerId, this.d.modelName);
    } catch {
      return undefined;
    }
  }

  /**
   * The windows of every work item, READ_CHUNK transactions per store read, one read after another under the
   * deadline: a large batch's replies are parsed in bounded steps. Once a read fails or the deadline passes, the
   * items not read yet take their defaults (`features_unavailable` / `features_timeout`) and nothing more is read.
   */
  private async readFeatures(
    work: readonly Work[],
    deadline: Deadline,
    trace?: TraceContext,
  ): Promise<WindowSummary[] | undefined> {
    const { entities, store } = this.d;
    const queries = work.flatMap((w) => entities.map((e, i) => summaryQuery(e, w.input, this.offsets[i]!)));
    const span =
      trace &&
      this.d.tracer!.start('fraudscore.features', {
        parent: trace,
        attributes: { 'fraudscore.feature_store': store.kind, 'fraudscore.windows': queries.length },
      });
    try {
      return await this.readChunks(work, queries, deadline, span);
    } finally {
      span?.end();
    }
  }

  private async readChunks(
    work: readonly Work[],
    queries: readonly SummaryQuery[],
    deadline: Deadline,
    span: Span | undefined,
  ): Promise<WindowSummary[] | undefined> {
    const { entities, store, logger } = this.d;
    const per = entities.length;
    const records: WindowSummary[] = new Array(queries.length);
    for (let i = 0; i < work.length; i += READ_CHUNK) {
      try {
        const got = await deadline.race(store.summarize(queries.slice(i * per, (i + READ_CHUNK) * per)));
        for (let j = 0; j < got.length; j++) records[i * per + j] = got[j]!;
      } catch (err) {
        const reason: DegradedReason =
          err instanceof DeadlineExceeded ? 'features_timeout' : 'features_unavailable';
        logger.warn({ err, reason, store: store.kind }, 'scoring with default features');
        span?.setAttributes({ 'fraudscore.degraded_reasons': [reason] });
        span?.fail(err);
        for (const w of work.slice(i)) {
          w.degraded.push(reason);
          w.defaulted = true;
        }
        return i === 0 ? undefined : records;
      }
    }
    return records;
  }

  /**
   * Features of every unsettled item, SLICE items per turn of the event loop. Once the deadline has passed, the
   * items not computed yet take their defaults (degraded `features_timeout`): no more reading of windows.
   */
  private async computeAll(
    work: readonly Work[],
    records: WindowSummary[] | undefined,
    deadline: Deadline,
  ): Promise<void> {
    let late = false;
    for (let i = 0; i < work.length; i += SLICE) {
      if (i > 0) await nextTurn();
      if (records && !late && deadline.left() <= 0) late = true;
      for (let k = i; k < Math.min(work.length, i + SLICE); k++) {
        const w = work[k]!;
        if (w.settled) continue;
        if (late && records) w.degraded.push('features_timeout');
        this.computeFeatures(w, late ? undefined : records, k);
      }
    }
  }

  private computeFeatures(w: Work, records: WindowSummary[] | undefined, k: number): void {
    const version = w.route?.primary.version;
    const set = version?.featureSet ?? this.defaultSet();
    const at = this.entityIndex.get(set.id)!;
    const offset = k * this.d.entities.length;
    const missing = !records || w.defaulted;
    const windows = missing ? at.map(() => NO_RECORDS) : at.map((i) => records[offset + i] ?? NO_RECORDS);
    w.features = set.compute(w.input, windows);
    // Every window feature when the store was not read; else those keyed by a field the request lacks (device_id, ip).
    const defaulted = missing
      ? set.definition.features.flatMap((f) => (f.kind === 'window' ? [f.name] : []))
      : set.defaulted(w.input);
    for (const name of defaulted) this.d.metrics.featureDefaulted.inc({ feature: name });
    if (version) w.row = version.input(w.features);
  }

  private async infer(work: Work[], deadline: Deadline, trace?: TraceContext): Promise<void> {
    for (const w of work) if (!w.route || !w.row) w.degraded.push('model_error');
    const byVersion = groupByVersion(work, (w) => (w.row ? w.route?.primary.version : undefined));
    await Promise.all(
      [...byVersion].map(async ([version, ws]) => {
        // Runs of at most MAX_RUN_ROWS, one after another: none starts once the deadline has passed.
        for (let i = 0; i < ws.length; i += MAX_RUN_ROWS) {
          const run = ws.slice(i, i + MAX_RUN_ROWS);
          if (deadline.left() <= 0) {
            for (const w of ws.slice(i)) w.degraded.push('model_timeout');
            return;
          }
          try {
            const rows = run.map((w) => w.row!);
            const out = await deadline.race(
              rows.length === 1
                ? version.score(rows[0]!, trace).then((r) => [r])
                : version.scoreMany(rows, trace),
            );
            run.forEach((w, k) => {
              // Inputs beyond float32 (an absurd ratio, say) can make a member answer NaN: that is a model failure.
              if (Number.isFinite(out[k]!.score)) {
                w.score = out[k]!.score;
                w.members = out[k]!.members;
              } else w.degraded.push('model_error');
            });
          } catch (err) {
            const reason: DegradedReason = err instanceof DeadlineExceeded ? 'model_timeout' : 'model_error';
            this.d.logger.warn({ err, reason, model: version.id }, 'scoring with the fallback rules');
            for (const w of ws.slice(i)) w.degraded.push(reason);
            return;
          }
        }
      }),
    );
  }

  private explainAndDecide(
    w: Work,
    results: ScoreResult[],
    explain: boolean,
    t: { t0: number; t1: number; t2: number },
  ): void {
    const { metrics, clock } = this.d;
    const version = w.route?.primary.version;
    const set = version?.featureSet ?? this.defaultSet();
    const features = w.features!;
    const inputs = version?.manifest.inputs;
    // Only names and values are held: a remembered answer must not keep an unloaded version alive.
    const explained = inputs
      ? new Explanation(inputs, version!.inputIndex, features)
      : new Explanation(set.names, undefined, features);
    let score: number;
    let reasons: ScoreResult['reasons'];
    if (w.score !== undefined && version) {
      score = w.score;
      reasons = version.reasons(w.row!);
      version.drift.observe(w.row!, score);
    } else {
      const fb = fallbackScore(byName(set.names, undefined, features));
      score = fb.score;
      reasons = fb.reasons;
    }
    const decision = version ? version.decide(score) : decide(score, FALLBACK_THRESHOLDS);
    const modelVersion = version?.version ?? 'none';
    const degraded = w.degraded.length === 0 ? w.degraded : [...new Set(w.degraded)];
    // The model's inputs the request could not give (no device id, no IP): scored with their defaults, and said so.
    const defaulted = inputs ? set.defaulted(w.input).filter((n) => inputs.includes(n)) : undefined;
    // Every field present, in the order the API documents (JSON leaves the undefined ones out): one object shape.
    const result: ScoreResult = {
      transaction_id: w.tx.transaction_id,
      score,
      decision,
      reasons,
      model: { name: version?.name ?? this.d.modelName, version: modelVersion, feature_set: set.id },
      shadow: w.route?.shadow ? { version: w.route.shadow.version.version } : undefined,
      degraded: degraded.length > 0,
      degraded_reasons: degraded.length > 0 ? degraded : undefined,
      timings_ms: {
        features: round3(t.t1 - t.t0),
        inference: round3(t.t2 - t.t1),
        total: round3(clock.monotonic() - t.t0),
      },
      defaulted_features: defaulted && defaulted.length > 0 ? defaulted : undefined,
    };
    results[w.index] = explain ? { ...result, features: explained.byName() } : result;
    w.explained = explained;
    w.reasons = reasons;
    metrics.decisions.inc({ decision, model_version: modelVersion });
    metrics.score.observe({ model_version: modelVersion }, score);
    for (const r of degraded) metrics.degraded.inc({ reason: r });
    // A degraded answer is not remembered: a retry after the outage deserves the full score.
    // The answer is kept without `features`, and what a retry with ?explain=true needs to add them.
    if (degraded.length === 0) this.cache.set(w.tx.transaction_id, w.fingerprint, { result, explained });
  }

  private defaultSet(): CompiledFeatureSet {
    return [...this.d.featureSets.values()].at(-1)!;
  }
}

/** A remembered answer: the result as returned without ?explain, and its features by name on demand. */
interface Remembered {
  readonly result: ScoreResult;
  readonly explained: Explains;
}

/**
 * A transaction's features by name, as ?explain=true shows them: `values[at[i]]` (or `values[i]` without `at`)
 * by `names[i]`, made only when asked for (now or on a retry).
 */
class Explanation implements Explains {
  constructor(
    private readonly names: readonly string[],
    private readonly at: Int32Array | undefined,
    private readonly values: Float64Array,
  ) {}

  byName(): Record<string, number> {
    return byName(this.names, this.at, this.values);
  }
}

/** Features already by name (an answer another replica kept). */
const explainedAs = (features: Record<string, number>): Explains => ({ byName: () => features });

function traceSummary(results: readonly ScoreResult[]): Attributes {
  const distinct = (of: (r: ScoreResult) => string | undefined) =>
    [...new Set(results.map(of).filter((v) => v !== undefined))].sort().join(',') || undefined;
  const reasons = [...new Set(results.flatMap((r) => r.degraded_reasons ?? []))].sort();
  return {
    'fraudscore.model.name': distinct((r) => r.model.name),
    'fraudscore.model.version': distinct((r) => r.model.version),
    'fraudscore.model.shadow_version': distinct((r) => r.shadow?.version),
    'fraudscore.feature_set': distinct((r) => r.model.feature_set),
    'fraudscore.decision': distinct((r) => r.decision),
    'fraudscore.degraded': results.some((r) => r.degraded),
    'fraudscore.degraded_reasons': reasons.length ? reasons : undefined,
  };
}

/**
 * `values[at[i]]` (or `values[i]` without `at`) by `names[i]`, in the order of `names` (feature names are
 * UPPER_SNAKE_CASE: none is `__proto__`).
 */
function byName(
  names: readonly string[],
  at: Int32Array | undefined,
  values: Float64Array,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (let i = 0; i < names.length; i++) out[names[i]!] = values[at ? at[i]! : i]!;
  return out;
}
