import type { Combine } from '../../domain/models/ensemble.js';
import type { Clock } from '../../ports/clock.js';
import type { MemberSession } from '../../ports/model-runtime.js';
import type { Attributes, Span, TraceContext, Tracer } from '../../ports/tracer.js';

export interface ScoreResult {
  /** Ensemble P(fraud). */
  readonly score: number;
  /** Each member's P(fraud), in manifest member order. */
  readonly members: number[];
}

export interface BatcherOptions {
  /** Off: every call runs on its own. */
  readonly enabled: boolean;
  /** Most rows in one run. */
  readonly maxRows: number;
  /** Longest a row waits for a run in progress to finish before it gets a run of its own. */
  readonly maxWaitMs: number;
}

export interface BatchInfo {
  readonly rows: number;
  /** From the start of the run to the last member's result. */
  readonly ms: number;
}

export interface BatcherDeps {
  readonly sessions: readonly MemberSession[];
  readonly memberNames: readonly string[];
  readonly width: number;
  readonly combine: Combine;
  readonly clock: Clock;
  readonly onBatch?: (info: BatchInfo) => void;
  /** Told the rows of a batch whose run failed (its callers got the error). */
  readonly onFailed?: (rows: number) => void;
  /** Given when tracing is on: each member run of a batch is a span, under the first caller's trace, linked to the others. */
  readonly tracer?: Tracer;
  /** Attributes of every member-run span (the model and its version). */
  readonly spanAttributes?: Attributes;
}

interface Group {
  readonly results: ScoreResult[];
  remaining: number;
  settled: boolean;
  readonly resolve: (results: ScoreResult[]) => void;
  readonly reject: (err: unknown) => void;
  /** The caller's span, when traced. */
  readonly trace: TraceContext | undefined;
}

interface Pending {
  readonly row: Float32Array;
  readonly group: Group;
  readonly index: number;
}

/**
 * Coalesces concurrent calls into one run per member. With nothing running, the queue flushes on the next
 * setImmediate, so a lone request pays no timer; while a run is in progress, rows wait for it (up to maxWaitMs, or
 * until maxRows are queued) and go together in the next run. A setTimeout(1) batcher instead fires after ~1.5 ms
 * and costs every request below saturation that much latency. A run may compute synchronously (the ONNX
 * runtime does: then a run has ended before the next rows arrive, and what coalesces is the rows queued in one
 * turn), so more than maxRows queued rows go one run per event-loop turn, keeping each turn bounded; the wait
 * for a run in progress applies to a runtime whose runs are asynchronous.
 */
export class MicroBatcher {
  private queue: Pending[] = [];
  private running = 0;
  private immediate: NodeJS.Immediate | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly deps: BatcherDeps,
    private readonly options: BatcherOptions,
  ) {
    if (!Number.isInteger(options.maxRows) || options.maxRows < 1)
      throw new RangeError('maxRows must be a positive integer');
  }

  /** `row`: the model inputs in manifest order, `width` float32 values. `trace`: the caller's span, if traced. */
  score(row: Float32Array, trace?: TraceContext): Promise<ScoreResult> {
    return new Promise((resolve, reject) => {
      this.submit([row], (results) => resolve(results[0]!), reject, trace);
    });
  }

  /** Results in `rows` order; rejects as a whole if any run fails. */
  scoreMany(rows: readonly Float32Array[], trace?: TraceContext): Promise<ScoreResult[]> {
    if (rows.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => this.submit(rows, resolve, reject, trace));
  }

  /** Rows waiting for a run. */
  get queued(): number {
    return this.queue.length;
  }

  /** Runs started and not yet finished. */
  get inProgress(): number {
    return this.running;
  }

  private submit(
    rows: readonly Float32Array[],
    resolve: (results: ScoreResult[]) => void,
    reject: (err: unknown) => void,
    trace: TraceContext | undefined,
  ): void {
    const width = this.deps.width;
    for (const row of rows)
      if (row.length !== width) {
        reject(new RangeError(`a row holds ${row.length} values, the model takes ${width}`));
        return;
      }
    const group: Group = {
      results: new Array(rows.length),
      remaining: rows.length,
      settled: false,
      resolve,
      reject,
      trace,
    };
    const entries = rows.map((row, index) => ({ row, group, index }));
    if (!this.options.enabled) {
      this.runInTurns(entries);
      return;
    }
    for (const e of entries) this.queue.push(e);
    this.schedule();
  }

  private schedule(): void {
    if (this.queue.length === 0) return;
    if (this.running === 0 || this.queue.length >= this.options.maxRows || this.options.maxWaitMs <= 0) {
      this.flushSoon();
      return;
    }
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, this.options.maxWaitMs);
  }

  private flushSoon(): void {
    this.immediate ??= setImmediate(() => {
      this.immediate = undefined;
      this.flush();
    });
  }

  private flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.queue.length > 0) this.run(this.queue.splice(0, this.options.maxRows));
    if (this.queue.length > 0) this.flushSoon();
  }

  /** One run of at most maxRows per event-loop turn: a run may compute synchronously, and a turn stays bounded. */
  private runInTurns(entries: readonly Pending[]): void {
    const max = this.options.maxRows;
    this.run(entries.slice(0, max));
    if (entries.length > max) setImmediate(() => this.runInTurns(entries.slice(max)));
  }

  private run(batch: Pending[]): void {
    const { sessions, width, clock } = this.deps;
    const n = batch.length;
    const input = new Float32Array(n * width);
    for (let r = 0; r < n; r++) input.set(batch[r]!.row, r * width);
    this.running++;
    const started = clock.monotonic();
    const traced = this.deps.tracer ? this.memberSpans(batch) : undefined;
    Promise.all(
      sessions.map((s, m) => {
        const span = traced?.(m);
        const run = s.run(input, n, width);
        if (span)
          run.then(
            () => span.end(),
            (err: unknown) => {
              span.fail(err);
              span.end();
            },
          );
        return run;
      }),
    )
      .then(
        (outputs) => {
          const ms = clock.monotonic() - started;
          let settled: boolean;
          try {
            settled = this.settle(batch, outputs);
          } catch (err) {
            for (const e of batch) fail(e.group, err);
            settled = false;
          }
          try {
            if (settled) this.deps.onBatch?.({ rows: n, ms });
            else this.deps.onFailed?.(n);
          } catch {
            // A metrics hook must not fail scoring.
          }
        },
        (err: unknown) => {
          for (const e of batch) fail(e.group, err);
          this.deps.onFailed?.(n);
        },
      )
      .finally(() => {
        this.running--;
        if (this.queue.length > 0) this.flushSoon();
      });
  }

  /**
   * A span per member run, child of the first traced caller in the batch and linked to the others; none when no
   * caller in the batch is traced (shadow scoring, say), so a run never starts a trace of its own.
   */
  private memberSpans(batch: readonly Pending[]): ((member: number) => Span) | undefined {
    const callers = [...new Set(batch.map((e) => e.group.trace).filter((t) => t !== undefined))];
    if (callers.length === 0) return undefined;
    const [parent, ...others] = callers as [TraceContext, ...TraceContext[]];
    const tracer = this.deps.tracer!;
    return (m) =>
      tracer.start('fraudscore.member', {
        parent,
        ...(others.length ? { links: others } : {}),
        attributes: {
          ...this.deps.spanAttributes,
          'fraudscore.model.member': this.deps.memberNames[m],
          'fraudscore.batch.rows': batch.length,
          'fraudscore.batch.callers': callers.length,
        },
      });
  }

  /** Resolves each caller's rows; false when the outputs are malformed (every caller then fails). */
  private settle(batch: readonly Pending[], outputs: readonly Float32Array[]): boolean {
    const n = batch.length;
    for (let m = 0; m < outputs.length; m++)
      if (outputs[m]!.length !== n) {
        const err = new Error(
          `member ${this.deps.memberNames[m]} returned ${outputs[m]!.length} scores for ${n} rows`,
        );
        for (const e of batch) fail(e.group, err);
        return false;
      }
    for (let r = 0; r < n; r++) {
      const { group, index } = batch[r]!;
      if (group.settled) continue;
      const members = outputs.map((o) => o[r]!);
      group.results[index] = { score: this.deps.combine(members), members };
      if (--group.remaining === 0) {
        group.settled = true;
        group.resolve(group.results);
      }
    }
    return true;
  }
}

function fail(group: Group, err: unknown): void {
  if (group.settled) return;
  group.settled = true;
  group.reject(err);
}
