import type { ReplicaStatus, ServingRoles, ServingState } from '../domain/models/serving-state.js';

/**
 * The shared desired serving state of each model, and what each replica reports it has applied. In memory for
 * one process (the embedded default); in Redis (or Redis Cluster) when replicas share a feature store.
 */
export interface ControlPlane {
  readonly kind: string;
  /** The desired state of `model`; undefined when none was ever written. Rejects when the store cannot answer. */
  read(model: string): Promise<ServingState | undefined>;
  /**
   * Writes `roles` as generation `expected + 1`, provided the stored generation is still `expected` (0: none
   * stored). Resolves the written state, or undefined when another change came first (nothing was written).
   */
  write(model: string, expected: number, roles: ServingRoles, by: string): Promise<ServingState | undefined>;
  /**
   * Calls `onChange` with the model's name after any replica writes. Best effort: a follower re-reads on a
   * timer as well, so a lost notification only delays it. Resolves an unsubscribe.
   */
  subscribe(onChange: (model: string) => void): Promise<() => Promise<void>>;
  /** Publishes a replica's status for `ttlMs`; a replica that stops beating disappears from `replicas`. */
  heartbeat(model: string, status: ReplicaStatus, ttlMs: number): Promise<void>;
  /** The live replicas' statuses, by replica id. */
  replicas(model: string): Promise<ReplicaStatus[]>;
  close(): Promise<void>;
}
