import type { ReplicaStatus, ServingRoles, ServingState } from '../../domain/models/serving-state.js';
import type { Clock } from '../../ports/clock.js';
import type { ControlPlane } from '../../ports/control-plane.js';

/** The control plane of one process (the embedded default), or of processes in tests that share the object. */
export class MemoryControlPlane implements ControlPlane {
  readonly kind = 'memory';
  private readonly states = new Map<string, ServingState>();
  private readonly beats = new Map<string, Map<string, { status: ReplicaStatus; expires: number }>>();
  private readonly listeners = new Set<(model: string) => void>();

  constructor(private readonly clock: Clock) {}

  async read(model: string): Promise<ServingState | undefined> {
    return this.states.get(model);
  }

  async write(
    model: string,
    expected: number,
    roles: ServingRoles,
    by: string,
  ): Promise<ServingState | undefined> {
    if ((this.states.get(model)?.generation ?? 0) !== expected) return undefined;
    const state: ServingState = {
      ...roles,
      generation: expected + 1,
      updated_at: new Date(this.clock.now()).toISOString(),
      updated_by: by,
    };
    this.states.set(model, state);
    // After the write returns, as a notification from another process would arrive.
    queueMicrotask(() => {
      for (const l of this.listeners) l(model);
    });
    return state;
  }

  async subscribe(onChange: (model: string) => void): Promise<() => Promise<void>> {
    this.listeners.add(onChange);
    return async () => {
      this.listeners.delete(onChange);
    };
  }

  async heartbeat(model: string, status: ReplicaStatus, ttlMs: number): Promise<void> {
    let m = this.beats.get(model);
    if (!m) {
      m = new Map();
      this.beats.set(model, m);
    }
    m.set(status.replica, { status, expires: this.clock.now() + ttlMs });
  }

  async replicas(model: string): Promise<ReplicaStatus[]> {
    const now = this.clock.now();
    const m = this.beats.get(model) ?? new Map();
    for (const [id, b] of m) if (b.expires <= now) m.delete(id);
    return [...m.values()].map((b) => b.status).sort((a, b) => a.replica.localeCompare(b.replica));
  }

  async close(): Promise<void> {
    this.listeners.clear();
  }
}
