import {
  EMPTY_PROMOTION,
  nextPromotionStep,
  type PromotionCandidate,
  type PromotionEvidence,
  type PromotionPolicy,
  type PromotionRecord,
  type PromotionTransition,
  withTransition,
} from '../../domain/models/promotion.js';
import type { ServingRoles, ServingState } from '../../domain/models/serving-state.js';
import type { Clock } from '../../ports/clock.js';
import type { ControlPlane } from '../../ports/control-plane.js';
import type { Logger } from '../../ports/logger.js';
import type { Performance } from '../performance.js';
import type { ModelFleet } from './fleet.js';
import { type ModelRegistry, RegistryError } from './registry.js';

export interface PromotionDeps {
  readonly fleet: Pick<ModelFleet, 'transition'>;
  readonly control: Pick<ControlPlane, 'read'>;
  readonly registry: Pick<ModelRegistry, 'get' | 'manifest' | 'versionsOnDisk'>;
  readonly performance: Pick<Performance, 'report'>;
  readonly models: readonly string[];
  readonly policy: PromotionPolicy;
  /** Below this many observations in the candidate's PSI window its PSI is not judged (too noisy). */
  readonly minPsiObservations: number;
  readonly replica: string;
  readonly clock: Clock;
  readonly logger: Pick<Logger, 'info' | 'warn' | 'debug'>;
  /** Told every transition this replica made (for a metric). */
  readonly onTransition?: (model: string, t: PromotionTransition) => void;
}

/** What one tick did for one model. */
export type TickResult =
  | { readonly kind: 'idle'; readonly reason: string }
  | { readonly kind: 'hold'; readonly version: string; readonly reason: string }
  | { readonly kind: 'transition'; readonly transition: PromotionTransition }
  | { readonly kind: 'conflict' | 'error'; readonly reason: string };

/**
 * The promotion policy (issue 19, PROMOTION_POLICY): moves the newest version whose model card's gate found it
 * eligible through shadow → canary steps → active, on the evidence of the live comparison with the active version
 * (the performance report, from delayed labels), and rolls it back when it is worse or when its PSI or error rate
 * alarms. It acts only through the shared serving state, with a compare-and-set on the generation it judged, so
 * every replica may run it: the first write of a tick wins, the others see a conflict and judge again next tick.
 * It never touches a shadow or canary an operator set; an operator who changes the candidate's role cancels the
 * promotion. Every transition is an audit event (`audit: "promotion"`) and part of the state's `promotion.history`.
 */
export class PromotionController {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(private readonly d: PromotionDeps) {}

  /** Ticks every `intervalMs`, one tick at a time. */
  start(intervalMs: number): void {
    this.timer = setInterval(() => {
      this.running ??= this.tickAll().finally(() => {
        this.running = undefined;
      });
    }, intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  async tickAll(): Promise<void> {
    for (const model of this.d.models) await this.tick(model);
  }

  /** One judgement of `model`. Never throws. */
  async tick(model: string): Promise<TickResult> {
    try {
      const state = await this.d.control.read(model);
      if (!state?.active) return { kind: 'idle', reason: 'no active version' };
      const record = state.promotion ?? EMPTY_PROMOTION;
      const c = record.candidate;
      return c ? await this.judge(model, state, record, c) : await this.pick(model, state, record);
    } catch (err) {
      if (err instanceof RegistryError && err.code === 'conflict') {
        this.d.logger.debug(
          { model, reason: err.message },
          'promotion: the serving state moved on; next tick',
        );
        return { kind: 'conflict', reason: err.message };
      }
      const reason = err instanceof Error ? err.message : String(err);
      this.d.logger.warn({ model, err }, 'promotion tick failed; next tick');
      return { kind: 'error', reason };
    }
  }

  /** No candidate: the newest eligible version after the active one goes to shadow. */
  private async pick(model: string, state: ServingState, record: PromotionRecord): Promise<TickResult> {
    if (state.shadow || state.canary)
      return { kind: 'idle', reason: 'a shadow or canary set by an operator is in place' };
    const version = await this.eligible(model, state, record);
    if (!version) return { kind: 'idle', reason: 'no eligible version newer than the active one' };
    const t = this.transition(version, 'eligible', 'shadow', 'eligible by its evaluation gate', {
      gate: (await this.d.registry.manifest(model, version)).card?.gate,
    });
    try {
      await this.write(model, state, record, t, (cur) => ({
        roles: { ...cur, shadow: { version } },
        candidate: { version, stage: 'shadow', since: t.at },
      }));
    } catch (err) {
      if (err instanceof RegistryError && err.code === 'conflict') throw err;
      // A version that cannot load here would be picked every tick: mark it instead.
      const why = err instanceof Error ? err.message : String(err);
      const failed = this.transition(version, 'eligible', 'rolled_back', `cannot serve: ${why}`, {});
      return this.write(model, state, record, failed, (cur) => ({ roles: cur }));
    }
    return { kind: 'transition', transition: t };
  }

  private async judge(
    model: string,
    state: ServingState,
    record: PromotionRecord,
    c: PromotionCandidate,
  ): Promise<TickResult> {
    const holder = c.stage === 'shadow' ? state.shadow?.version : state.canary?.version;
    if (holder !== c.version) {
      const t = this.transition(
        c.version,
        c.stage,
        'cancelled',
        `its ${c.stage} role was changed by someone else`,
        {},
      );
      return this.write(model, state, record, t, (cur) => ({ roles: cur }));
    }
    const evidence = await this.evidence(model, c.version, Date.parse(c.since));
    const step = nextPromotionStep(c, evidence, this.d.policy);
    if (step.kind === 'hold') return { kind: 'hold', version: c.version, reason: step.reason };
    const shown = evidenceOf(evidence);
    const at = this.now();
    switch (step.kind) {
      case 'canary': {
        const t = {
          ...this.transition(c.version, c.stage, 'canary', step.reason, shown),
          percent: step.percent,
        };
        return this.write(model, state, record, t, ({ shadow, ...cur }) => ({
          roles: {
            ...cur,
            ...(shadow && shadow.version !== c.version ? { shadow } : {}),
            canary: { version: c.version, percent: step.percent },
          },
          candidate: {
            version: c.version,
            stage: 'canary',
            step: step.step,
            since: at,
            frauds_at_start: evidence.frauds,
          },
        }));
      }
      case 'activate': {
        const t = this.transition(c.version, c.stage, 'active', step.reason, shown);
        return this.write(model, state, record, t, ({ canary, shadow, active, ...cur }) => ({
          roles: {
            ...cur,
            active: c.version,
            ...(active ? { previous: active } : {}),
            ...(canary && canary.version !== c.version ? { canary } : {}),
            ...(shadow && shadow.version !== c.version ? { shadow } : {}),
          },
        }));
      }
      case 'rollback': {
        const t = this.transition(c.version, c.stage, 'rolled_back', step.reason, shown);
        return this.write(model, state, record, t, ({ canary, shadow, ...cur }) => ({
          roles: {
            ...cur,
            ...(canary && canary.version !== c.version ? { canary } : {}),
            ...(shadow && shadow.version !== c.version ? { shadow } : {}),
          },
        }));
      }
    }
  }

  /**
   * Writes the roles and the record of one transition as one compare-and-set on the judged generation, then
   * audits it. `next` gets the current roles without the record; `candidate` absent ends the promotion.
   */
  private async write(
    model: string,
    state: ServingState,
    record: PromotionRecord,
    t: PromotionTransition,
    next: (cur: Omit<ServingRoles, 'promotion'>) => {
      roles: Omit<ServingRoles, 'promotion'>;
      candidate?: PromotionCandidate;
    },
  ): Promise<TickResult> {
    const written = await this.d.fleet.transition(model, state.generation, ({ promotion: _, ...cur }) => {
      const { roles, candidate } = next(cur);
      const promotion: PromotionRecord = {
        ...(candidate ? { candidate } : {}),
        rolled_back:
          t.to === 'rolled_back'
            ? [...record.rolled_back, { version: t.version, at: t.at, reason: t.reason }]
            : record.rolled_back,
        history: withTransition(record, t),
      };
      return { ...roles, promotion };
    });
    this.d.logger.info(
      {
        audit: 'promotion',
        model,
        version: t.version,
        from: t.from,
        to: t.to,
        ...(t.percent === undefined ? {} : { percent: t.percent }),
        reason: t.reason,
        evidence: t.evidence,
        generation: written.generation,
        replica: this.d.replica,
      },
      `promotion: ${model}@${t.version} ${t.from} → ${t.to}${t.percent === undefined ? '' : ` ${t.percent}%`}`,
    );
    this.d.onTransition?.(model, t);
    return { kind: 'transition', transition: t };
  }

  /** The newest version on disk after the active one whose card's gate found it eligible and not rolled back. */
  private async eligible(
    model: string,
    state: ServingState,
    record: PromotionRecord,
  ): Promise<string | undefined> {
    const versions = await this.d.registry.versionsOnDisk(model);
    const after = versions.indexOf(state.active!);
    const rolledBack = new Set(record.rolled_back.map((r) => r.version));
    for (let i = versions.length - 1; i > after; i--) {
      const v = versions[i]!;
      if (rolledBack.has(v) || v === state.previous) continue;
      const m = await this.d.registry.manifest(model, v).catch(() => undefined);
      if (m?.card?.gate.verdict === 'eligible') return v;
    }
    return undefined;
  }

  private async evidence(model: string, version: string, since: number): Promise<PromotionEvidence> {
    const report = await this.d.performance.report(model, since);
    const frauds = report.versions.find((v) => v.version === version)?.frauds ?? 0;
    const lv = this.d.registry.get(model, version);
    const drift = lv?.drift.snapshot();
    return {
      ...(report.comparison ? { comparison: report.comparison } : {}),
      frauds,
      ...(drift && drift.observations >= this.d.minPsiObservations ? { scorePsi: drift.score } : {}),
      ...(lv ? { inference: lv.inference } : {}),
    };
  }

  private transition(
    version: string,
    from: PromotionTransition['from'],
    to: PromotionTransition['to'],
    reason: string,
    evidence: Record<string, unknown>,
  ): PromotionTransition {
    return { at: this.now(), version, from, to, reason, evidence, by: this.d.replica };
  }

  private now(): string {
    return new Date(this.d.clock.now()).toISOString();
  }
}

function evidenceOf(e: PromotionEvidence): Record<string, unknown> {
  return {
    ...(e.comparison ? { comparison: e.comparison } : {}),
    stage_frauds: e.frauds,
    ...(e.scorePsi === undefined ? {} : { score_psi: e.scorePsi }),
    ...(e.inference ? { inference: e.inference } : {}),
  };
}
