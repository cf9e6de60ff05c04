import type { CompiledFeatureSet } from '../../domain/features/engine.js';
import { type Combine, compileCombiner } from '../../domain/models/ensemble.js';
import type { Manifest } from '../../domain/models/manifest.js';
import { type Decision, decide } from '../../domain/scoring/decision.js';
import { directionProbe, directionsFromProbe } from '../../domain/scoring/directions.js';
import { DriftMonitor } from '../../domain/scoring/psi.js';
import { compileReasons, type Explain, type ReasonCode } from '../../domain/scoring/reasons.js';
import type { Clock } from '../../ports/clock.js';
import type { Logger } from '../../ports/logger.js';
import type { MemberSession } from '../../ports/model-runtime.js';
import type { VerifiedVersion } from '../../ports/model-source.js';
import type { TraceContext, Tracer } from '../../ports/tracer.js';
import { type BatcherOptions, type BatchInfo, MicroBatcher, type ScoreResult } from './batcher.js';

export interface LoadedVersionOptions {
  readonly batching: BatcherOptions;
  /** Observations per PSI window. */
  readonly psiWindow: number;
  /** After this long a retired version is released even with requests still holding it (a leaked lease). */
  readonly drainTimeoutMs: number;
  readonly clock: Clock;
  readonly logger: Pick<Logger, 'info' | 'warn' | 'error'>;
  readonly onBatch?: (info: BatchInfo) => void;
  /** Called once the sessions are released; `forced` when the drain timed out. */
  readonly onReleased?: (forced: boolean) => void;
  /** Given when tracing is on: a traced call is an `inference` span with a child per member run. */
  readonly tracer?: Tracer;
}

/** Held by a request for as long as it uses a version; the version is released only after every lease is. */
export interface Lease {
  readonly version: LoadedVersion;
  /** Idempotent. */
  release(): void;
}

export type Lifecycle = 'serving' | 'draining' | 'released';

/** One loaded, verified model version: scoring through its micro-batcher, decisions, reasons, drift. */
export class LoadedVersion {
  readonly name: string;
  readonly version: string;
  /** `name@version`. */
  readonly id: string;
  /** Model input width, `manifest.inputs.length`. */
  readonly width: number;
  /** Wall-clock epoch milliseconds. */
  readonly loadedAt: number;
  /** PSI of recent inputs and scores against the manifest reference; fed by whoever serves from this version. */
  readonly drift: DriftMonitor;
  private readonly batcher: MicroBatcher;
  private rowsRun = 0;
  private rowsFailed = 0;
  private readonly explain: Explain;
  /** Where each of the manifest's inputs sits in a vector of its feature set (`featureSet.names` order). */
  readonly inputIndex: Int32Array;
  private refs = 0;
  private lifecycle: Lifecycle = 'serving';
  private released: Promise<void> | undefined;
  private drainTimer: NodeJS.Timeout | undefined;
  private resolveReleased: (() => void) | undefined;

  static async create(verified: VerifiedVersion, options: LoadedVersionOptions): Promise<LoadedVersion> {
    const combine = compileCombiner(verified.manifest);
    const probe = directionProbe(verified.manifest);
    const width = verified.manifest.inputs.length;
    const outputs = await Promise.all(verified.sessions.map((s) => s.run(probe.rows, probe.count, width)));
    const scores = Float64Array.from({ length: probe.count }, (_, r) => combine(outputs.map((o) => o[r]!)));
    const directions = directionsFromProbe(width, scores);
    return new LoadedVersion(verified, combine, directions, options);
  }

  private constructor(
    private readonly verified: VerifiedVersion,
    combine: Combine,
    /** Per input: +1 when larger values raise the score, −1 when they lower it. */
    readonly directions: Int8Array,
    private readonly options: LoadedVersionOptions,
  ) {
    const m = verified.manifest;
    this.name = m.name;
    this.version = m.version;
    this.id = `${m.name}@${m.version}`;
    this.width = m.inputs.length;
    this.loadedAt = options.clock.now();
    this.drift = new DriftMonitor(m, options.psiWindow);
    this.explain = compileReasons(m, directions);
    const position = new Map(verified.featureSet.names.map((n, i) => [n, i]));
    this.inputIndex = Int32Array.from(m.inputs, (n) => position.get(n)!);
    this.batcher = new MicroBatcher(
      {
        sessions: verified.sessions,
        memberNames: m.members.map((x) => x.name),
        width: this.width,
        combine,
        clock: options.clock,
        onBatch: (info) => {
          this.rowsRun += info.rows;
          options.onBatch?.(info);
        },
        onFailed: (rows) => {
          this.rowsRun += rows;
          this.rowsFailed += rows;
        },
        ...(options.tracer
          ? {
              tracer: options.tracer,
              spanAttributes: { 'fraudscore.model.name': m.name, 'fraudscore.model.version': m.version },
            }
          : {}),
      },
      options.batching,
    );
  }

  get manifest(): Manifest {
    return this.verified.manifest;
  }

  get featureSet(): CompiledFeatureSet {
    return this.verified.featureSet;
  }

  get state(): Lifecycle {
    return this.lifecycle;
  }

  /** Leases currently held. */
  get inFlight(): number {
    return this.refs;
  }

  /** Inference rows this version ran on this replica since it was loaded, and how many of them failed. */
  get inference(): { rows: number; failed: number } {
    return { rows: this.rowsRun, failed: this.rowsFailed };
  }

  /** Rows waiting in the micro-batcher. */
  get queued(): number {
    return this.batcher.queued;
  }

  /** This version's inputs picked, in manifest order, from a vector of its feature set (`featureSet.names` order). */
  input(features: ArrayLike<number>, out: Float32Array = new Float32Array(this.width)): Float32Array {
    for (let i = 0; i < this.width; i++) out[i] = features[this.inputIndex[i]!]!;
    return out;
  }

  /** `trace`: the caller's span, when traced; the call is then an `inference` span under it. */
  score(row: Float32Array, trace?: TraceContext): Promise<ScoreResult> {
    if (this.lifecycle === 'released') return Promise.reject(this.releasedError());
    if (!trace || !this.options.tracer) return this.batcher.score(row);
    return this.traced(1, trace, (t) => this.batcher.score(row, t));
  }

  scoreMany(rows: readonly Float32Array[], trace?: TraceContext): Promise<ScoreResult[]> {
    if (this.lifecycle === 'released') return Promise.reject(this.releasedError());
    if (!trace || !this.options.tracer) return this.batcher.scoreMany(rows);
    return this.traced(rows.length, trace, (t) => this.batcher.scoreMany(rows, t));
  }

  /** From submission to the last member's result: the wait for the micro-batcher included. */
  private async traced<T>(
    rows: number,
    parent: TraceContext,
    run: (t: TraceContext) => Promise<T>,
  ): Promise<T> {
    const span = this.options.tracer!.start('fraudscore.inference', {
      parent,
      attributes: {
        'fraudscore.model.name': this.name,
        'fraudscore.model.version': this.version,
        'fraudscore.rows': rows,
      },
    });
    try {
      return await run(span.context);
    } catch (err) {
      span.fail(err);
      throw err;
    } finally {
      span.end();
    }
  }

  decide(score: number): Decision {
    return decide(score, this.manifest.thresholds);
  }

  /** Up to three reasons, strongest first, for a model input row. */
  reasons(row: ArrayLike<number>): ReasonCode[] {
    return this.explain(row);
  }

  acquire(): Lease {
    if (this.lifecycle === 'released') throw this.releasedError();
    this.refs++;
    let held = true;
    return {
      version: this,
      release: () => {
        if (!held) return;
        held = false;
        this.refs--;
        if (this.refs === 0 && this.lifecycle === 'draining') void this.dispose(false);
      },
    };
  }

  /**
   * For the registry: no new leases will be routed here. Sessions are released once the last lease is, or after
   * the drain timeout. Idempotent; resolves when released.
   */
  retire(): Promise<void> {
    if (this.lifecycle === 'serving') {
      this.lifecycle = 'draining';
      this.released = new Promise((resolve) => {
        this.resolveReleased = resolve;
      });
      if (this.refs === 0) void this.dispose(false);
      else {
        this.drainTimer = setTimeout(() => void this.dispose(true), this.options.drainTimeoutMs);
        this.drainTimer.unref();
      }
    }
    return this.released ?? Promise.resolve();
  }

  private async dispose(forced: boolean): Promise<void> {
    if (this.lifecycle === 'released') return;
    this.lifecycle = 'released';
    if (this.drainTimer) clearTimeout(this.drainTimer);
    const log = this.options.logger;
    if (forced)
      log.warn(
        { model: this.name, version: this.version, inFlight: this.refs },
        'drain timed out; releasing a model version that still has leases',
      );
    const results = await Promise.allSettled(this.verified.sessions.map((s: MemberSession) => s.release()));
    for (const r of results)
      if (r.status === 'rejected')
        log.error(
          { model: this.name, version: this.version, err: r.reason },
          'releasing a model session failed',
        );
    try {
      this.options.onReleased?.(forced);
    } catch (err) {
      log.error({ model: this.name, version: this.version, err }, 'onReleased hook failed');
    }
    this.resolveReleased?.();
  }

  private releasedError(): Error {
    return new Error(`model version ${this.id} has been released`);
  }
}
