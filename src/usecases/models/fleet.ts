import { ServiceError } from '../../domain/errors.js';
import { promotionRefusal } from '../../domain/models/card.js';
import { ModelLoadError } from '../../domain/models/load-error.js';
import {
  type ReplicaStatus,
  type ServingRoles,
  type ServingState,
  sameServing,
  servesDesired,
} from '../../domain/models/serving-state.js';
import type { Clock } from '../../ports/clock.js';
import type { ControlPlane } from '../../ports/control-plane.js';
import type { Logger } from '../../ports/logger.js';
import { type ModelRegistry, RegistryError } from './registry.js';

export interface FleetDeps {
  readonly registry: ModelRegistry;
  readonly control: ControlPlane;
  /** The models this replica follows from the start (MODEL_NAME); a model changed through it is followed too. */
  readonly models: readonly string[];
  /** This replica's id in heartbeats and in `updated_by`. */
  readonly replica: string;
  readonly clock: Clock;
  readonly logger: Pick<Logger, 'info' | 'warn' | 'error'>;
  /** The version to serve when a model has no desired state yet: MODEL_VERSION, else the newest on disk. */
  readonly initialVersion: (model: string) => Promise<string | undefined>;
  /** Re-read of the desired state, the safety net under change notifications (ms; default 5,000). */
  readonly pollMs?: number;
  /** Heartbeat period (ms; default 5,000); a heartbeat lives three periods. */
  readonly heartbeatMs?: number;
  /** REQUIRE_MODEL_CARD: a version without a model card may not be activated or canaried without an override. */
  readonly requireCard?: boolean;
  /** Told the desired and applied generations of a model whenever either may have changed. */
  readonly onGenerations?: (model: string, g: { desired: number; applied: number }) => void;
}

/** An explicit decision to serve a version its card refuses (rejected gate, or no card when required). */
export interface PromotionOverride {
  /** Why: required, kept in the audit event. */
  readonly reason: string;
  /** Who asked (e.g. the admin API caller's address). */
  readonly by?: string;
}

/** A model's desired state, the live replicas' reports, and whether they all serve it. */
export interface FleetStatus {
  readonly desired?: ServingState;
  readonly replicas: readonly ReplicaStatus[];
  readonly converged: boolean;
  /** Why the desired state or the replicas could not be read. */
  readonly error?: string;
}

interface Followed {
  desired: number;
  applied: number;
  error?: string;
  converging?: Promise<void>;
  again: boolean;
}

/**
 * One replica's part in serving the same models as every other: it follows the shared desired state of each
 * model (a change notification, and a periodic re-read as the safety net) and applies it with the registry's
 * load → verify → warm → switch, keeping what it serves when a version cannot load (it reports the failure and
 * retries on the next read). Admin changes are validated here first — the versions they name must load on this
 * replica — then written with a compare-and-set on the generation, so two concurrent changes cannot both win.
 */
export class ModelFleet {
  private readonly followed = new Map<string, Followed>();
  private readonly timers: NodeJS.Timeout[] = [];
  private unsubscribe: (() => Promise<void>) | undefined;
  private stopped = false;

  constructor(private readonly d: FleetDeps) {}

  /**
   * Reads (or, when there is none yet, writes from the initial version) each model's desired state and applies
   * it before resolving, so the replica serves the desired state from its first request. When the control plane
   * cannot be read, the initial version is served and the replica keeps trying.
   */
  async start(): Promise<void> {
    for (const model of this.d.models) {
      this.follow(model);
      try {
        if (!(await this.d.control.read(model))) {
          const version = await this.d.initialVersion(model);
          if (version) await this.d.control.write(model, 0, { active: version }, this.d.replica);
        }
      } catch (err) {
        this.d.logger.warn({ err, model }, 'control plane unavailable at start; serving the initial version');
        const version = await this.d.initialVersion(model).catch(() => undefined);
        if (version && !this.d.registry.active(model))
          await this.d.registry.applyRoles(model, { active: version }).catch((e: unknown) => {
            this.state(model).error = messageOf(e);
          });
      }
      await this.converge(model);
    }
    this.unsubscribe = await this.d.control
      .subscribe((model) => {
        if (this.followed.has(model)) void this.converge(model);
      })
      .catch((err: unknown) => {
        this.d.logger.warn({ err }, 'no change notifications; following by re-reading only');
        return undefined;
      });
    this.every(this.d.pollMs ?? 5_000, () => {
      for (const model of this.followed.keys()) void this.converge(model);
    });
    const beat = this.d.heartbeatMs ?? 5_000;
    this.every(beat, () => void this.heartbeat(beat * 3));
    await this.heartbeat(beat * 3);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers.splice(0)) clearInterval(t);
    await this.unsubscribe?.();
    await Promise.all([...this.followed.values()].map((f) => f.converging));
  }

  /** Reads the desired state of `model` and applies it when this replica does not serve it yet. Never throws. */
  converge(model: string): Promise<void> {
    const f = this.state(model);
    if (f.converging) {
      f.again = true;
      return f.converging;
    }
    f.converging = (async () => {
      do {
        f.again = false;
        await this.convergeOnce(model, f);
      } while (f.again && !this.stopped);
    })().finally(() => {
      f.converging = undefined;
    });
    return f.converging;
  }

  /**
   * Makes `version` the active one. Refused with `gate_rejected` (or `card_missing` when cards are required)
   * unless `override` is given, which is then logged as an audit event (`audit: "gate_override"`).
   */
  activate(model: string, version: string, override?: PromotionOverride): Promise<ServingState> {
    return this.promoting(model, version, 'activate', override, () => this.activateUnguarded(model, version));
  }

  private activateUnguarded(model: string, version: string): Promise<ServingState> {
    return this.change(model, (c) =>
      c.active === version
        ? c
        : {
            active: version,
            ...(c.active || c.previous ? { previous: c.active ?? c.previous } : {}),
            ...(c.canary && c.canary.version !== version ? { canary: c.canary } : {}),
            ...(c.shadow && c.shadow.version !== version ? { shadow: c.shadow } : {}),
          },
    );
  }

  rollback(model: string): Promise<ServingState> {
    return this.change(model, (c) => {
      if (!c.previous || !c.active)
        throw new RegistryError('no_previous', `${model} has no previous version to roll back to`);
      const to = c.previous;
      return {
        active: to,
        ...(c.canary && c.canary.version !== to ? { canary: c.canary } : {}),
        ...(c.shadow && c.shadow.version !== to ? { shadow: c.shadow } : {}),
      };
    });
  }

  /**
   * The promotion policy's change: `next` gets the current roles (with the policy's record) of generation
   * `expectedGeneration` — the state the policy judged — and returns the new ones. Not guarded by the model
   * card: the policy only picks versions its gate found eligible. Throws RegistryError `conflict` when the state
   * moved on since, and what `change` throws.
   */
  transition(
    model: string,
    expectedGeneration: number,
    next: (current: ServingRoles) => ServingRoles,
  ): Promise<ServingState> {
    return this.change(model, next, expectedGeneration);
  }

  /** Sends a share of customers to `canary.version`; guarded like `activate`. */
  setCanary(
    model: string,
    canary: { version: string; percent: number },
    override?: PromotionOverride,
  ): Promise<ServingState> {
    return this.promoting(model, canary.version, 'canary_set', override, () =>
      this.setCanaryUnguarded(model, canary),
    );
  }

  private setCanaryUnguarded(
    model: string,
    canary: { version: string; percent: number },
  ): Promise<ServingState> {
    return this.change(model, (c) => {
      const { version, percent } = canary;
      if (!(Number.isFinite(percent) && percent > 0 && percent <= 100))
        throw new RegistryError('invalid_argument', `canary percent must be in (0, 100], got ${percent}`);
      if (!c.active) throw new RegistryError('no_active', `${model} needs an active version before a canary`);
      if (c.active === version)
        throw new RegistryError('conflict', `${model}@${version} is the active version`);
      if (c.shadow?.version === version)
        throw new RegistryError('conflict', `${model}@${version} is the shadow version`);
      return { ...c, canary: { version, percent } };
    });
  }

  clearCanary(model: string): Promise<ServingState> {
    return this.change(model, ({ canary: _, ...rest }) => rest);
  }

  setShadow(model: string, shadow: { version: string }): Promise<ServingState> {
    return this.change(model, (c) => {
      const { version } = shadow;
      if (c.active === version)
        throw new RegistryError('conflict', `${model}@${version} is the active version`);
      if (c.canary?.version === version)
        throw new RegistryError('conflict', `${model}@${version} is the canary version`);
      return { ...c, shadow: { version } };
    });
  }

  clearShadow(model: string): Promise<ServingState> {
    return this.change(model, ({ shadow: _, ...rest }) => rest);
  }

  /**
   * Runs a change that puts `version` in front of customers, after the promotion rule of its model card: a
   * refusal is thrown as a ServiceError (409) unless overridden; an override that went through is audited.
   * A version whose manifest cannot be read is left to the change itself, which reports why it cannot load.
   */
  private async promoting(
    model: string,
    version: string,
    action: 'activate' | 'canary_set',
    override: PromotionOverride | undefined,
    run: () => Promise<ServingState>,
  ): Promise<ServingState> {
    const manifest = await this.d.registry.manifest(model, version).catch(() => undefined);
    const refusal =
      manifest &&
      promotionRefusal({ name: model, version, card: manifest.card }, this.d.requireCard ?? false);
    if (refusal && !override) throw new ServiceError(refusal.code, refusal.message);
    const state = await run();
    if (refusal && override)
      this.d.logger.warn(
        {
          audit: 'gate_override',
          model,
          version,
          action,
          refused: refusal.code,
          gate: manifest?.card?.gate.verdict ?? 'none',
          gate_reasons: manifest?.card?.gate.reasons,
          reason: override.reason,
          ...(override.by ? { by: override.by } : {}),
          replica: this.d.replica,
          generation: state.generation,
        },
        `${action} of ${model}@${version} overrode its model card (${refusal.code})`,
      );
    return state;
  }

  /** The desired state of `model`, each live replica's report, and whether they all serve the desired state. */
  async status(model: string): Promise<FleetStatus> {
    try {
      const [desired, replicas] = await Promise.all([
        this.d.control.read(model),
        this.d.control.replicas(model),
      ]);
      return {
        ...(desired ? { desired } : {}),
        replicas,
        converged: replicas.length > 0 && replicas.every((r) => servesDesired(r, desired)),
      };
    } catch (err) {
      return { replicas: [], converged: false, error: `control plane unavailable: ${messageOf(err)}` };
    }
  }

  /**
   * Validates a change of `model`'s roles on this replica, then writes it for every replica. Throws
   * RegistryError for a change the current state does not allow (or a concurrent change: `conflict`),
   * ModelLoadError when a version it names cannot serve here, ServiceError `control_plane_unavailable` when
   * the state cannot be read or written.
   */
  private async change(
    model: string,
    next: (current: ServingRoles) => ServingRoles,
    expectedGeneration?: number,
  ): Promise<ServingState> {
    this.follow(model);
    const { control, registry, replica } = this.d;
    let current: ServingState | undefined;
    try {
      current = await control.read(model);
    } catch (err) {
      throw new ServiceError(
        'control_plane_unavailable',
        `cannot read the serving state of ${model}: ${messageOf(err)}`,
      );
    }
    if (expectedGeneration !== undefined && (current?.generation ?? 0) !== expectedGeneration)
      throw new RegistryError(
        'conflict',
        `the serving state of ${model} is at generation ${current?.generation ?? 0}, not ${expectedGeneration}`,
      );
    const promotion = current?.promotion;
    const proposed = next(
      current ? { ...rolesOf(current), ...(promotion ? { promotion } : {}) } : registry.roles(model),
    );
    // An admin change keeps the policy's record; only the policy rewrites it.
    const roles = proposed.promotion || !promotion ? proposed : { ...proposed, promotion };
    if (current && sameRoles(rolesOf(current), roles) && samePromotion(promotion, roles.promotion))
      return current;
    // Load, verify and warm up here first: a version that cannot serve is refused before anyone is told to.
    const before = new Set(registry.loadedVersions(model));
    const named = [roles.active, roles.previous, roles.canary?.version, roles.shadow?.version];
    const fresh = [...new Set(named.filter((v): v is string => v !== undefined && !before.has(v)))];
    // unload refuses a version that plays a role: only the ones left without one go.
    const unpin = () =>
      Promise.allSettled(fresh.map((v) => registry.unload(model, v).catch(() => undefined)));
    try {
      for (const v of fresh) await registry.load(model, v);
    } catch (err) {
      await unpin();
      throw err;
    }
    let written: ServingState | undefined;
    try {
      written = await control.write(model, current?.generation ?? 0, roles, replica);
    } catch (err) {
      await unpin();
      throw new ServiceError(
        'control_plane_unavailable',
        `cannot write the serving state of ${model}: ${messageOf(err)}`,
      );
    }
    if (!written) {
      await unpin();
      throw new RegistryError(
        'conflict',
        `the serving state of ${model} changed while this change was made (generation ${current?.generation ?? 0} is no longer current); read it and retry`,
      );
    }
    await this.converge(model);
    // A version loaded to validate this change stays loaded only while a role holds it: when a newer change
    // from another replica was applied instead, it would otherwise stay pinned for good.
    await unpin();
    return written;
  }

  private async convergeOnce(model: string, f: Followed): Promise<void> {
    const { control, registry, logger } = this.d;
    let desired: ServingState | undefined;
    try {
      desired = await control.read(model);
    } catch (err) {
      // Keep serving what was applied last: an unreachable control plane changes nothing.
      f.error = `control plane unavailable: ${messageOf(err)}`;
      return;
    }
    if (!desired) {
      // No state: it was lost (a Redis without persistence restarted) or could not be written at start. Seed it
      // from what this replica serves; replicas race to do so, and the compare-and-set lets one win.
      const roles = registry.roles(model);
      if (roles.active) {
        const seeded = await control.write(model, 0, roles, this.d.replica).catch(() => undefined);
        f.again = seeded !== undefined || f.again;
      }
      return;
    }
    f.desired = desired.generation;
    if (f.applied === desired.generation && sameRoles(registry.roles(model), rolesOf(desired))) {
      f.error = undefined;
      this.report(model, f);
      return;
    }
    try {
      await registry.applyRoles(model, rolesOf(desired));
      f.applied = desired.generation;
      f.error = undefined;
      logger.info(
        { model, generation: desired.generation, replica: this.d.replica },
        'desired state applied',
      );
    } catch (err) {
      f.error = err instanceof ModelLoadError ? err.message : messageOf(err);
      logger.warn(
        { model, generation: desired.generation, replica: this.d.replica, reason: f.error },
        'cannot apply the desired state; serving the previous one and retrying',
      );
    }
    this.report(model, f);
  }

  private async heartbeat(ttlMs: number): Promise<void> {
    for (const [model, f] of this.followed) {
      const roles = this.d.registry.roles(model);
      const status: ReplicaStatus = {
        replica: this.d.replica,
        generation: f.applied,
        ...(roles.active ? { active: roles.active } : {}),
        ...(roles.canary ? { canary: roles.canary } : {}),
        ...(roles.shadow ? { shadow: roles.shadow } : {}),
        loaded: this.d.registry.loadedVersions(model),
        ...(f.error ? { error: f.error } : {}),
        at: new Date(this.d.clock.now()).toISOString(),
      };
      await this.d.control.heartbeat(model, status, ttlMs).catch((err: unknown) => {
        f.error ??= `control plane unavailable: ${messageOf(err)}`;
      });
    }
  }

  private report(model: string, f: Followed): void {
    this.d.onGenerations?.(model, { desired: f.desired, applied: f.applied });
  }

  private follow(model: string): void {
    this.state(model);
  }

  private state(model: string): Followed {
    let f = this.followed.get(model);
    if (!f) {
      f = { desired: 0, applied: 0, again: false };
      this.followed.set(model, f);
    }
    return f;
  }

  private every(ms: number, fn: () => void): void {
    const t = setInterval(() => {
      if (!this.stopped) fn();
    }, ms);
    t.unref();
    this.timers.push(t);
  }
}

function rolesOf(s: ServingState): ServingRoles {
  return {
    ...(s.active ? { active: s.active } : {}),
    ...(s.previous ? { previous: s.previous } : {}),
    ...(s.canary ? { canary: s.canary } : {}),
    ...(s.shadow ? { shadow: s.shadow } : {}),
  };
}

function sameRoles(a: ServingRoles, b: ServingRoles): boolean {
  return a.previous === b.previous && sameServing(a, b);
}

function samePromotion(a: ServingRoles['promotion'], b: ServingRoles['promotion']): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
