import { z } from 'zod';

/**
 * The model card of a version (issue 19): the machine-readable part, in the manifest's `card`, written by the
 * training package's gate (training/fraudscore_training/gate.py) next to MODEL_CARD.md. Only what the service
 * and the promotion policy read is checked here; the rest (data and code provenance, training periods, members
 * and hyper-parameters, metrics, comparison) passes through untouched for listings.
 */
export const GateVerdictSchema = z.enum(['eligible', 'rejected']);
export type GateVerdict = z.infer<typeof GateVerdictSchema>;

const Num = z.number().nullable();

export const GateRuleSchema = z.looseObject({
  metric: z.string(),
  /** `ci_lower`: the lower bound of the interval of candidate − champion; `point`: the difference itself. */
  statistic: z.enum(['ci_lower', 'point']),
  min: z.number(),
  value: Num,
  /** null when nothing was compared (first or seed version). */
  pass: z.boolean().nullable(),
});

export const CardSchema = z.looseObject({
  schema_version: z.literal(1),
  created_at: z.iso.datetime({ offset: true }),
  /** Who or what made the version: `manual` (with `by`), `schedule`, `seed` (shipped before cards) … */
  trigger: z.looseObject({ kind: z.string().min(1), by: z.string().optional(), note: z.string().optional() }),
  code: z.looseObject({ commit: z.string().optional(), dirty: z.boolean().optional() }).optional(),
  data: z.record(z.string(), z.unknown()).optional(),
  champion: z.looseObject({ name: z.string(), version: z.string() }).nullable().optional(),
  comparison: z
    .looseObject({
      resamples: z.number().int(),
      seed: z.number().int(),
      confidence: z.number(),
      metrics: z.record(
        z.string(),
        z.looseObject({ champion: Num, candidate: Num, delta: Num, ci_lower: Num, ci_upper: Num }),
      ),
    })
    .nullable()
    .optional(),
  gate: z.looseObject({
    verdict: GateVerdictSchema,
    rules: z.array(GateRuleSchema),
    reasons: z.array(z.string()),
  }),
});
export type Card = z.infer<typeof CardSchema>;

/** Why a version may not serve (activate or canary) without an override; undefined when it may. */
export interface PromotionRefusal {
  readonly code: 'gate_rejected' | 'card_missing';
  readonly message: string;
}

/**
 * The promotion rule: a version whose gate rejected it never serves without an explicit, audited override; a
 * version without a card serves only when cards are not required (REQUIRE_MODEL_CARD off: the embedded demo,
 * test fixtures, versions from before cards). Shadowing is never refused: it is for comparison only.
 */
export function promotionRefusal(
  version: { readonly name: string; readonly version: string; readonly card?: Card | undefined },
  requireCard: boolean,
): PromotionRefusal | undefined {
  const ref = `${version.name}@${version.version}`;
  if (!version.card)
    return requireCard
      ? {
          code: 'card_missing',
          message: `${ref} has no model card and REQUIRE_MODEL_CARD is on; pass override=true with a reason to serve it anyway`,
        }
      : undefined;
  if (version.card.gate.verdict === 'rejected')
    return {
      code: 'gate_rejected',
      message: `${ref} was rejected by its evaluation gate (${version.card.gate.reasons.join('; ')}); pass override=true with a reason to serve it anyway`,
    };
  return undefined;
}
