import { ServiceError } from '../../domain/errors.js';
import { canaryBucket } from '../../domain/models/bucket.js';
import { promotionRefusal } from '../../domain/models/card.js';
import { ModelLoadError } from '../../domain/models/load-error.js';
import type { Manifest } from '../../domain/models/manifest.js';
import type { ServingRoles } from '../../domain/models/serving-state.js';
import type { Failure, ModelStatus, VersionState, VersionStatus } from '../../domain/models/status.js';
import type { Clock } from '../../ports/clock.js';
import type { Logger } from '../../ports/logger.js';
import type { ModelSource } from '../../ports/model-source.js';
import type { Tracer } from '../../ports/tracer.js';
import type { BatcherOptions } from './batcher.js';
import { type Lease, LoadedVersion } from './loaded-version.js';

type Stamp = { readonly model: string; readonly at: number };
export type RegistryEvent = Stamp &
  (
    | { readonly type: 'load'; readonly version: string; readonly ms: number }
    | {
        readonly type: 'load_failed';
        readonly version: string;
        readonly code: Failure['code'];
        readonly reason: string;
      }
    | { readonly type: 'activate'; readonly version: string; readonly previous?: string }
    | { readonly type: 'rollback'; readonly from: string; readonly to: string }
    | { readonly type: 'canary_set'; readonly version: string; readonly percent: number }
    | { readonly type: 'canary_cleared'; readonly version: string }
    | { readonly type: 'shadow_set'; readonly version: string }
    | { readonly type: 'shadow_cleared'; readonly version: string }
    | { readonly type: 'unload'; readonly version: string }
    | { readonly type: 'released'; readonly version: string; readonly forced: boolean }
  );

export type RegistryErrorCode = 'no_active' | 'no_previous' | 'conflict' | 'invalid_argument' | 'not_loaded';

/** A lifecycle request that cannot be honoured in the current state; nothing changed. Its status is in the catalogue. */
export class RegistryError extends ServiceError {
  override name = 'RegistryError';
  declare readonly code: RegistryErrorCode;

  constructor(code: RegistryErrorCode, message: string) {
    super(code, message);
  }
}

export interface Route {
  /** The version whose score is returned: the active one, or the canary for customers in its share. */
  readonly primary: Lease;
  /** Scored too, for comparison only; release it when its score is done. */
  readonly shadow?: Lease;
  readonly arm: 'active' | 'canary';
}

export interface RegistryOptions {
  readonly source: ModelSource;
  readonly logger: Pick<Logger, 'info' | 'warn' | 'error'>;
  readonly clock: Clock;
  /** The model `route()` serves when no name is given (MODEL_NAME). */
  readonly defaultModel: string;
  readonly batching: BatcherOptions;
  readonly psiWindow: number;
  readonly drainTimeoutMs?: number;
  readonly onEvent?: (event: RegistryEvent) => void;
  readonly onBatch?: (batch: { model: string; version: string; rows: number; ms: number }) => void;
  /** Given when tracing is on: traced inference calls get spans (see LoadedVersion.score). */
  readonly tracer?: Tracer;
}

interface Roles {
  readonly active?: LoadedVersion;
  readonly previous?: LoadedVersion;
  readonly canary?: { readonly version: LoadedVersion; readonly percent: number; readonly cutoff: number };
  readonly shadow?: LoadedVersion;
}

interface Entry {
  /** Replaced as a whole on every change, so a route sees either the old roles or the new ones. */
  roles: Roles;
  readonly loaded: Map<string, LoadedVersion>;
  /** Loaded explicitly and not yet given a role: kept until unloaded. */
  readonly pinned: Set<string>;
  readonly failed: Map<string, Failure>;
}

const DRAIN_TIMEOUT_MS = 30_000;

/**
 * Model versions per name and the roles they play. A version stays loaded while a role points at it (active,
 * previous — so rollback cannot fail — canary, shadow) or it was loaded explicitly; otherwise it is released once
 * its in-flight requests finish. Lifecycle operations run one at a time.
 */
export class ModelRegistry {
  private readonly entries = new Map<string, Entry>();
  private tail: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: RegistryOptions) {}

  /** The versions to score one request with. Synchronous, so it can never see a half-applied change. */
  route(customerId: string, name: string = this.options.defaultModel): Route {
    const roles = this.entries.get(name)?.roles;
    const active = roles?.active;
    if (!active) throw new RegistryError('no_active', `no active version of ${name}`);
    const canary = roles.canary;
    const onCanary = canary !== undefined && canaryBucket(canary.version.version, customerId) < canary.cutoff;
    const primary = (onCanary ? canary.version : active).acquire();
    return { primary, shadow: roles.shadow?.acquire(), arm: onCanary ? 'canary' : 'active' };
  }

  active(name: string = this.options.defaultModel): LoadedVersion | undefined {
    return this.entries.get(name)?.roles.active;
  }

  /** The versions serving each model right now, from memory (no disk look-up): for metrics at scrape time. */
  serving(): { name: string; active?: LoadedVersion; canary?: LoadedVersion; shadow?: LoadedVersion }[] {
    return [...this.entries].map(([name, { roles }]) => ({
      name,
      ...(roles.active ? { active: roles.active } : {}),
      ...(roles.canary ? { canary: roles.canary.version } : {}),
      ...(roles.shadow ? { shadow: roles.shadow } : {}),
    }));
  }

  get(name: string, version: string): LoadedVersion | undefined {
    return this.entries.get(name)?.loaded.get(version);
  }

  /** The highest complete version on disk. */
  async latest(name: string): Promise<string | undefined> {
    return (await this.options.source.list()).get(name)?.at(-1);
  }

  /** The complete versions of `name` on disk, ascending. */
  async versionsOnDisk(name: string): Promise<readonly string[]> {
    return (await this.options.source.list()).get(name) ?? [];
  }

  /** The manifest of a version: the loaded one, else read (and validated) from the source. */
  async manifest(name: string, version: string): Promise<Manifest> {
    return this.get(name, version)?.manifest ?? this.options.source.readManifest(name, version);
  }

  /**
   * The highest version on disk that may serve without an override (see promotionRefusal): not rejected by its
   * gate and, when cards are required, with a card. Versions whose manifest cannot be read are skipped.
   */
  async latestPromotable(name: string, requireCard: boolean): Promise<string | undefined> {
    const versions = (await this.options.source.list()).get(name) ?? [];
    for (let i = versions.length - 1; i >= 0; i--) {
      const v = versions[i]!;
      const m = await this.manifest(name, v).catch(() => undefined);
      if (m && !promotionRefusal({ name, version: v, card: m.card }, requireCard)) return v;
    }
    return undefined;
  }

  /** Loads and verifies a version without giving it a role; it stays loaded until `unload`. */
  load(name: string, version: string): Promise<LoadedVersion> {
    return this.exclusive(async () => {
      const lv = await this.loadLocked(name, version);
      const entry = this.entry(name);
      if (!hasRole(entry.roles, lv)) entry.pinned.add(version);
      return lv;
    });
  }

  /** Loads if needed, then makes the version the one that serves; the one it replaces becomes the rollback target. */
  activate(name: string, version: string): Promise<LoadedVersion> {
    return this.exclusive(async () => {
      const lv = await this.loadLocked(name, version);
      const entry = this.entry(name);
      const r = entry.roles;
      if (r.active === lv) return lv;
      this.swap(entry, {
        active: lv,
        previous: r.active ?? r.previous,
        canary: r.canary?.version === lv ? undefined : r.canary,
        shadow: r.shadow === lv ? undefined : r.shadow,
      });
      this.emit(name, { type: 'activate', version, previous: r.active?.version });
      return lv;
    });
  }

  /** Restores the previously active version; the rolled-back one is released once drained. */
  rollback(name: string): Promise<LoadedVersion> {
    return this.exclusive(async () => {
      const entry = this.entries.get(name);
      const r = entry?.roles;
      if (!entry || !r?.previous || !r.active)
        throw new RegistryError('no_previous', `${name} has no previous version to roll back to`);
      const to = r.previous;
      this.swap(entry, {
        active: to,
        canary: r.canary?.version === to ? undefined : r.canary,
        shadow: r.shadow === to ? undefined : r.shadow,
      });
      this.emit(name, { type: 'rollback', from: r.active.version, to: to.version });
      return to;
    });
  }

  /** Sends `percent` of customers (sticky by customer id) to `version` instead of the active one. */
  setCanary(name: string, canary: { version: string; percent: number }): Promise<void> {
    return this.exclusive(async () => {
      const { version, percent } = canary;
      if (!(Number.isFinite(percent) && percent > 0 && percent <= 100))
        throw new RegistryError('invalid_argument', `canary percent must be in (0, 100], got ${percent}`);
      const active = this.entries.get(name)?.roles.active;
      if (!active) throw new RegistryError('no_active', `${name} needs an active version before a canary`);
      if (active.version === version)
        throw new RegistryError('conflict', `${name}@${version} is the active version`);
      const lv = await this.loadLocked(name, version);
      const entry = this.entry(name);
      if (entry.roles.shadow === lv) throw new RegistryError('conflict', `${lv.id} is the shadow version`);
      this.swap(entry, {
        ...entry.roles,
        canary: { version: lv, percent, cutoff: Math.round(percent * 100) },
      });
      this.emit(name, { type: 'canary_set', version, percent });
    });
  }

  clearCanary(name: string): Promise<void> {
    return this.exclusive(async () => {
      const entry = this.entries.get(name);
      const canary = entry?.roles.canary;
      if (!entry || !canary) return;
      this.swap(entry, { ...entry.roles, canary: undefined });
      this.emit(name, { type: 'canary_cleared', version: canary.version.version });
    });
  }

  /** Scores every request with `version` too, for comparison; its scores never decide anything. */
  setShadow(name: string, shadow: { version: string }): Promise<void> {
    return this.exclusive(async () => {
      const { version } = shadow;
      const roles = this.entries.get(name)?.roles;
      if (roles?.active?.version === version)
        throw new RegistryError('conflict', `${name}@${version} is the active version`);
      if (roles?.canary?.version.version === version)
        throw new RegistryError('conflict', `${name}@${version} is the canary version`);
      const lv = await this.loadLocked(name, version);
      const entry = this.entry(name);
      this.swap(entry, { ...entry.roles, shadow: lv });
      this.emit(name, { type: 'shadow_set', version });
    });
  }

  clearShadow(name: string): Promise<void> {
    return this.exclusive(async () => {
      const entry = this.entries.get(name);
      const shadow = entry?.roles.shadow;
      if (!entry || !shadow) return;
      this.swap(entry, { ...entry.roles, shadow: undefined });
      this.emit(name, { type: 'shadow_cleared', version: shadow.version });
    });
  }

  /** The versions of `name` loaded now, ascending. */
  loadedVersions(name: string = this.options.defaultModel): string[] {
    return [...(this.entries.get(name)?.loaded.keys() ?? [])].sort(byNumber);
  }

  /** The versions playing each role of `name` now. */
  roles(name: string = this.options.defaultModel): ServingRoles {
    const r = this.entries.get(name)?.roles ?? {};
    return {
      ...(r.active ? { active: r.active.version } : {}),
      ...(r.previous ? { previous: r.previous.version } : {}),
      ...(r.canary ? { canary: { version: r.canary.version.version, percent: r.canary.percent } } : {}),
      ...(r.shadow ? { shadow: { version: r.shadow.version } } : {}),
    };
  }

  /**
   * Makes `roles` the roles of `name` as one switch: every version they name is loaded, verified and warmed up
   * first, and if any of them cannot be, nothing changes (the load error is thrown). Versions left without a role
   * drain and go, as with the single-role operations. This is how a replica applies the shared desired state.
   */
  applyRoles(name: string, roles: ServingRoles): Promise<void> {
    return this.exclusive(async () => {
      const versions = [roles.active, roles.previous, roles.canary?.version, roles.shadow?.version];
      const loaded = new Map<string, LoadedVersion>();
      for (const v of versions) if (v && !loaded.has(v)) loaded.set(v, await this.loadLocked(name, v));
      const entry = this.entry(name);
      const before = this.roles(name);
      const at = (v: string | undefined) => (v ? loaded.get(v) : undefined);
      this.swap(entry, {
        active: at(roles.active),
        previous: at(roles.previous),
        canary: roles.canary && {
          version: at(roles.canary.version)!,
          percent: roles.canary.percent,
          cutoff: Math.round(roles.canary.percent * 100),
        },
        shadow: at(roles.shadow?.version),
      });
      this.emitChanges(name, before, roles);
    });
  }

  /** Releases a version that plays no role, once its in-flight requests finish. */
  unload(name: string, version: string): Promise<void> {
    return this.exclusive(async () => {
      const entry = this.entries.get(name);
      const lv = entry?.loaded.get(version);
      if (!entry || !lv) throw new RegistryError('not_loaded', `${name}@${version} is not loaded`);
      if (hasRole(entry.roles, lv)) throw new RegistryError('conflict', `${lv.id} still has a role`);
      entry.pinned.delete(version);
      entry.loaded.delete(version);
      this.emit(name, { type: 'unload', version });
      await lv.retire();
    });
  }

  /** Every model on disk or in memory, with each version's state, manifest summary and last failure. */
  async list(): Promise<ModelStatus[]> {
    const { source } = this.options;
    let onDisk: ReadonlyMap<string, readonly string[]> = new Map();
    let diskError: string | undefined;
    try {
      onDisk = await source.list();
    } catch (err) {
      diskError = messageOf(err);
    }
    const names = [...new Set([...onDisk.keys(), ...this.entries.keys()])].sort();
    return Promise.all(
      names.map(async (name): Promise<ModelStatus> => {
        const entry = this.entries.get(name);
        const roles = entry?.roles ?? {};
        const disk = new Set(onDisk.get(name) ?? []);
        const versions = [
          ...new Set([...disk, ...(entry?.loaded.keys() ?? []), ...(entry?.failed.keys() ?? [])]),
        ].sort(byNumber);
        return {
          name,
          active: roles.active?.version,
          previous: roles.previous?.version,
          canary: roles.canary && { version: roles.canary.version.version, percent: roles.canary.percent },
          shadow: roles.shadow && { version: roles.shadow.version },
          versions: await Promise.all(
            versions.map((v) => this.describe(name, v, entry, disk.has(v) || diskError !== undefined)),
          ),
        };
      }),
    );
  }

  /** Retires every version and waits until all are released. */
  close(): Promise<void> {
    return this.exclusive(async () => {
      const all: Promise<void>[] = [];
      for (const entry of this.entries.values()) {
        entry.roles = {};
        entry.pinned.clear();
        for (const lv of entry.loaded.values()) all.push(lv.retire());
        entry.loaded.clear();
      }
      await Promise.all(all);
    });
  }

  private async describe(
    name: string,
    version: string,
    entry: Entry | undefined,
    onDisk: boolean,
  ): Promise<VersionStatus> {
    const roles = entry?.roles ?? {};
    const lv = entry?.loaded.get(version);
    const failure = entry?.failed.get(version);
    let manifest = lv?.manifest;
    let manifestError: string | undefined;
    if (!manifest && onDisk)
      try {
        manifest = await this.options.source.readManifest(name, version);
      } catch (err) {
        manifestError = err instanceof ModelLoadError ? err.reason : messageOf(err);
      }
    const state: VersionState =
      roles.active === lv && lv
        ? 'active'
        : roles.canary?.version === lv && lv
          ? 'canary'
          : roles.shadow === lv && lv
            ? 'shadow'
            : lv
              ? 'loaded'
              : failure
                ? 'failed'
                : 'available';
    return {
      version,
      state,
      onDisk,
      rollbackTarget: roles.previous !== undefined && roles.previous === lv,
      canaryPercent: state === 'canary' ? roles.canary?.percent : undefined,
      loadedAt: lv && new Date(lv.loadedAt).toISOString(),
      inFlight: lv?.inFlight,
      createdAt: manifest?.created_at,
      featureSet: manifest && `${manifest.feature_set.name}_v${manifest.feature_set.version}`,
      description: manifest?.description,
      evaluation: manifest?.evaluation,
      gate: manifest ? (manifest.card?.gate.verdict ?? 'none') : undefined,
      card: manifest?.card,
      failure,
      manifestError,
    };
  }

  private async loadLocked(name: string, version: string): Promise<LoadedVersion> {
    const existing = this.entries.get(name)?.loaded.get(version);
    if (existing) return existing;
    const { source, clock, logger } = this.options;
    const started = clock.monotonic();
    let lv: LoadedVersion;
    try {
      const verified = await source.load(name, version);
      try {
        lv = await LoadedVersion.create(verified, {
          batching: this.options.batching,
          psiWindow: this.options.psiWindow,
          drainTimeoutMs: this.options.drainTimeoutMs ?? DRAIN_TIMEOUT_MS,
          clock,
          logger,
          onBatch: this.options.onBatch && ((b) => this.options.onBatch?.({ model: name, version, ...b })),
          onReleased: (forced) => this.emit(name, { type: 'released', version, forced }),
          ...(this.options.tracer ? { tracer: this.options.tracer } : {}),
        });
      } catch (err) {
        await Promise.allSettled(verified.sessions.map((s) => s.release()));
        throw new ModelLoadError(
          'warmup_failed',
          `direction probe failed: ${messageOf(err)}`,
          name,
          version,
          {
            cause: err,
          },
        );
      }
    } catch (err) {
      const failure: Failure = {
        code: err instanceof ModelLoadError ? err.code : 'error',
        reason: err instanceof ModelLoadError ? err.reason : messageOf(err),
        at: clock.now(),
      };
      // A malformed name never reached the disk; remembering it would let typos pile up in the listing.
      if (failure.code !== 'invalid_reference') this.entry(name).failed.set(version, failure);
      this.emit(name, { type: 'load_failed', version, code: failure.code, reason: failure.reason });
      throw err;
    }
    const entry = this.entry(name);
    entry.loaded.set(version, lv);
    entry.failed.delete(version);
    this.emit(name, { type: 'load', version, ms: clock.monotonic() - started });
    return lv;
  }

  /** The one place roles change: a single reference swap, then versions left without a role drain and go. */
  private swap(entry: Entry, roles: Roles): void {
    entry.roles = roles;
    for (const lv of [roles.active, roles.previous, roles.canary?.version, roles.shadow])
      if (lv) entry.pinned.delete(lv.version);
    for (const [version, lv] of entry.loaded)
      if (!hasRole(roles, lv) && !entry.pinned.has(version)) {
        entry.loaded.delete(version);
        void lv.retire();
      }
  }

  /** The events of the single-role operations, for a change applied as a whole. */
  private emitChanges(name: string, before: ServingRoles, after: ServingRoles): void {
    if (after.active && after.active !== before.active)
      this.emit(name, { type: 'activate', version: after.active, previous: before.active });
    const canary = (r: ServingRoles) => (r.canary ? `${r.canary.version}@${r.canary.percent}` : undefined);
    if (canary(after) !== canary(before)) {
      if (after.canary) this.emit(name, { type: 'canary_set', ...after.canary });
      else if (before.canary) this.emit(name, { type: 'canary_cleared', version: before.canary.version });
    }
    if (after.shadow?.version !== before.shadow?.version) {
      if (after.shadow) this.emit(name, { type: 'shadow_set', version: after.shadow.version });
      else if (before.shadow) this.emit(name, { type: 'shadow_cleared', version: before.shadow.version });
    }
  }

  private entry(name: string): Entry {
    let e = this.entries.get(name);
    if (!e) {
      e = { roles: {}, loaded: new Map(), pinned: new Set(), failed: new Map() };
      this.entries.set(name, e);
    }
    return e;
  }

  private emit(model: string, event: DistributiveOmit<RegistryEvent, 'model' | 'at'>): void {
    const full = { ...event, model, at: this.options.clock.now() } as RegistryEvent;
    const { logger, onEvent } = this.options;
    if (full.type === 'load_failed') logger.warn(full, 'model version refused');
    else logger.info(full, `model ${full.type}`);
    try {
      onEvent?.(full);
    } catch (err) {
      logger.error({ err, event: full.type }, 'registry onEvent hook failed');
    }
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn, fn);
    this.tail = run.catch(() => undefined);
    return run;
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

function hasRole(r: Roles, lv: LoadedVersion): boolean {
  return r.active === lv || r.previous === lv || r.canary?.version === lv || r.shadow === lv;
}

function byNumber(a: string, b: string): number {
  return Number(a) - Number(b) || a.localeCompare(b);
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
