import { ModelLoadError } from '../../domain/models/load-error.js';
import {
  EMPTY_PROMOTION,
  evidenceFrom,
  nextPromotionStep,
  type PromotionCandidate,
  type PromotionEvidence,
  type PromotionPolicy,
  type PromotionRecord,
  type PromotionStep,
  type PromotionTransition,
  ROLLED_BACK_KEPT,
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

type Roles = Omit<ServingRoles, 'promotion'>;

/**
 * The promotion policy (issue 19, PROMOTION_POLICY): moves the newest version whose model card's gate found it
 * eligible through shadow → canary steps → active, on the evidence of the live comparison with the active version
 * (the performance report, from delayed labels), and rolls it back when it is worse or when its PSI or error rate
 * alarms. It acts only through the shared serving state, with a compare-and-set on the generation it judged, so
 * every replica may run it: the first write of a tick wins, the others see a conflict and judge again next tick.
 * It never touches a shadow or canary an operator set; an operator who changes the roles a promotion relies on
 * (the candidate's role, the active version, another shadow or canary beside it) cancels it, and the policy never
 * picks that version again. Every transition is an audit event (`audit: "promotion"`) and part of the state's
 * `promotion.history`.
 */
export class PromotionController {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(private readonly d: PromotionDeps) {}

  /** Ticks every `intervalMs`, one tick at a time. */
  start(intervalMs: number): void {
    if (this.timer) return;
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
    const candidate: PromotionCandidate = {
      version,
      stage: 'shadow',
      champion: state.active!,
      since: t.at,
      evidence_from: evidenceFrom(this.d.clock.now()),
    };
    try {
      return await this.write(model, state, record, t, (cur) => ({
        roles: { ...cur, shadow: { version } },
        candidate,
      }));
    } catch (err) {
      // A version that cannot load here would be picked every tick: mark it. Anything else (a conflict, the
      // control plane unreachable) is tried again next tick.
      if (!(err instanceof ModelLoadError)) throw err;
      const failed = this.transition(version, 'eligible', 'rolled_back', `cannot serve: ${err.message}`, {});
      return this.write(model, state, record, failed, (cur) => ({ roles: cur }));
    }
  }

  private async judge(
    model: string,
    state: ServingState,
    record: PromotionRecord,
    c: PromotionCandidate,
  ): Promise<TickResult> {
    const changed = changedByOthers(state, c);
    if (changed) {
      const t = this.transition(c.version, c.stage, 'cancelled', changed, {});
      return this.write(model, state, record, t, (cur) => ({ roles: cur }));
    }
    const evidence = await this.evidence(model, c.version, Date.parse(c.evidence_from));
    const step = nextPromotionStep(c, evidence, this.d.policy);
    if (step.kind === 'hold') return { kind: 'hold', version: c.version, reason: step.reason };
    const shown = evidenceOf(evidence);
    try {
      return await this.advance(model, state, record, c, step, shown);
    } catch (err) {
      if (!(err instanceof ModelLoadError)) throw err;
      const t = this.transition(c.version, c.stage, 'rolled_back', `cannot serve: ${err.message}`, shown);
      return this.write(model, state, record, t, (cur) => ({ roles: withoutCandidate(cur, c.version) }));
    }
  }

  private advance(
    model: string,
    state: ServingState,
    record: PromotionRecord,
    c: PromotionCandidate,
    step: Exclude<PromotionStep, { kind: 'hold' }>,
    shown: Record<string, unknown>,
  ): Promise<TickResult> {
    switch (step.kind) {
      case 'canary': {
        const t = {
          ...this.transition(c.version, c.stage, 'canary', step.reason, shown),
          percent: step.percent,
        };
        return this.write(model, state, record, t, (cur) => ({
          roles: {
            ...withoutCandidate(cur, c.version),
            canary: { version: c.version, percent: step.percent },
          },
          candidate: {
            ...c,
            stage: 'canary',
            step: step.step,
            percent: step.percent,
            since: t.at,
            evidence_from: evidenceFrom(this.d.clock.now()),
          },
        }));
      }
      case 'activate': {
        const t = this.transition(c.version, c.stage, 'active', step.reason, shown);
        return this.write(model, state, record, t, (cur) => ({
          roles: {
            ...withoutCandidate(cur, c.version),
            active: c.version,
            ...(cur.active ? { previous: cur.active } : {}),
          },
        }));
      }
      case 'rollback': {
        const t = this.transition(c.version, c.stage, 'rolled_back', step.reason, shown);
        return this.write(model, state, record, t, (cur) => ({ roles: withoutCandidate(cur, c.version) }));
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
    next: (cur: Roles) => { roles: Roles; candidate?: PromotionCandidate },
  ): Promise<TickResult> {
    const written = await this.d.fleet.transition(model, state.generation, ({ promotion: _, ...cur }) => {
      const { roles, candidate } = next(cur);
      const picked = t.from === 'eligible' ? t.version : record.picked_through;
      const promotion: PromotionRecord = {
        ...(candidate ? { candidate } : {}),
        ...(picked ? { picked_through: picked } : {}),
        rolled_back:
          t.to === 'rolled_back'
            ? [...record.rolled_back, { version: t.version, at: t.at, reason: t.reason }].slice(
                -ROLLED_BACK_KEPT,
              )
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

  /**
   * The newest version on disk, newer than the active one and than any the policy took up before, whose card's
   * gate found it eligible.
   */
  private async eligible(
    model: string,
    state: ServingState,
    record: PromotionRecord,
  ): Promise<string | undefined> {
    const floor = Math.max(Number(state.active), Number(record.picked_through ?? 0));
    const versions = await this.d.registry.versionsOnDisk(model);
    for (let i = versions.length - 1; i >= 0 && Number(versions[i]) > floor; i--) {
      const m = await this.d.registry.manifest(model, versions[i]!).catch(() => undefined);
      if (m?.card?.gate.verdict === 'eligible') return versions[i];
    }
    return undefined;
  }

  /** What the decision log says of the candidate's decisions since `since` (epoch ms), and its alarms. */
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

/** Why the candidate's promotion no longer stands, when someone else changed the roles it relies on. */
function changedByOthers(state: ServingState, c: PromotionCandidate): string | undefined {
  if (state.active !== c.champion) return `the active version changed from ${c.champion} to ${state.active}`;
  if (c.stage === 'shadow') {
    if (state.shadow?.version !== c.version) return 'its shadow role was changed by someone else';
    if (state.canary) return `a canary (${state.canary.version}) was set beside it`;
    return undefined;
  }
  if (state.canary?.version !== c.version || state.canary.percent !== c.percent)
    return 'its canary role was changed by someone else';
  if (state.shadow) return `a shadow (${state.shadow.version}) was set beside it`;
  return undefined;
}

function withoutCandidate({ canary, shadow, ...cur }: Roles, version: string): Roles {
  return {
    ...cur,
    ...(canary && canary.version !== version ? { canary } : {}),
    ...(shadow && shadow.version !== version ? { shadow } : {}),
  };
}

function evidenceOf(e: PromotionEvidence): Record<string, unknown> {
  return {
    ...(e.comparison ? { comparison: e.comparison } : {}),
    stage_frauds: e.frauds,
    ...(e.scorePsi === undefined ? {} : { score_psi: e.scorePsi }),
    ...(e.inference ? { inference: e.inference } : {}),
  };
}
