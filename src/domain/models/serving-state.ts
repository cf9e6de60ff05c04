import { z } from 'zod';
import { ModelVersionSchema } from './names.js';
import { PromotionRecordSchema } from './promotion.js';

/**
 * What one model should serve, shared by every replica: the active version, the rollback target, a canary and
 * a shadow. `generation` grows by one with every change, so a replica knows whether it has applied the latest
 * document and a writer can compare-and-set on it.
 */
export const ServingStateSchema = z.object({
  generation: z.number().int().min(1),
  active: ModelVersionSchema.optional(),
  /** The version `rollback` restores. */
  previous: ModelVersionSchema.optional(),
  canary: z.object({ version: ModelVersionSchema, percent: z.number().gt(0).max(100) }).optional(),
  shadow: z.object({ version: ModelVersionSchema }).optional(),
  /** The promotion policy's candidate, rolled-back versions and transitions (absent until the policy acts). */
  promotion: PromotionRecordSchema.optional(),
  /** ISO-8601 time of the change, and the replica that made it. */
  updated_at: z.string(),
  updated_by: z.string(),
});
export type ServingState = z.infer<typeof ServingStateSchema>;

/** The roles of a change; generation and provenance are the control plane's to set. */
export type ServingRoles = Omit<ServingState, 'generation' | 'updated_at' | 'updated_by'>;

/** What one replica reports of itself in its heartbeat. */
export const ReplicaStatusSchema = z.object({
  replica: z.string(),
  /** The generation of the desired state this replica has applied (0: none yet). */
  generation: z.number().int().min(0),
  active: z.string().optional(),
  canary: z.object({ version: z.string(), percent: z.number() }).optional(),
  shadow: z.object({ version: z.string() }).optional(),
  loaded: z.array(z.string()),
  /** Why the last apply failed, while it keeps failing. */
  error: z.string().optional(),
  /** ISO-8601 time of the heartbeat. */
  at: z.string(),
});
export type ReplicaStatus = z.infer<typeof ReplicaStatusSchema>;

/** The serving roles, without the rollback target (which only the state document keeps). */
type Serving = Pick<ServingRoles, 'active' | 'canary' | 'shadow'>;

/** True when `a` and `b` serve the same versions in the same roles (and the same canary share). */
export function sameServing(a: Serving, b: Serving): boolean {
  return (
    a.active === b.active &&
    a.canary?.version === b.canary?.version &&
    a.canary?.percent === b.canary?.percent &&
    a.shadow?.version === b.shadow?.version
  );
}

/** True when the replica has applied `desired` and serves exactly its roles. */
export function servesDesired(r: ReplicaStatus, desired: ServingState | undefined): boolean {
  if (!desired) return true;
  return r.generation === desired.generation && sameServing(r, desired);
}
