import { z } from 'zod';

const Name = z.string().regex(/^[A-Z][A-Z0-9_]*$/, 'feature names are UPPER_SNAKE_CASE');
const Common = { name: Name, description: z.string().optional() };

export const Aggregations = [
  'count',
  'mean_amount',
  'fraud_rate',
  'amount_ratio_to_prior_mean',
  'seconds_since_previous',
] as const;
export type Aggregation = (typeof Aggregations)[number];

export const FeatureSchema = z.discriminatedUnion('kind', [
  z.object({ ...Common, kind: z.literal('request'), field: z.literal('amount') }),
  z.object({
    ...Common,
    kind: z.literal('calendar'),
    calendar: z.enum(['weekend', 'night']),
    /** Night is hours 0 to night_end_hour inclusive, UTC. */
    night_end_hour: z.number().int().min(0).max(23).default(6),
  }),
  z.object({
    ...Common,
    kind: z.literal('window'),
    entity: z.string().min(1),
    aggregation: z.enum(Aggregations),
    window_days: z.number().positive().max(366),
    delay_days: z.number().min(0).max(366),
  }),
]);
export type Feature = z.infer<typeof FeatureSchema>;
export type WindowFeature = Extract<Feature, { kind: 'window' }>;

export const FeatureSetSchema = z
  .object({
    name: z.string().regex(/^[a-z][a-z0-9_]*$/),
    version: z.number().int().min(1),
    description: z.string().optional(),
    entities: z.record(
      z.string().regex(/^[a-z][a-z0-9_]*$/),
      z.object({ key: z.enum(['customer_id', 'terminal_id']) }),
    ),
    features: z.array(FeatureSchema).min(1),
  })
  .superRefine((s, ctx) => {
    const seen = new Set<string>();
    s.features.forEach((f, i) => {
      if (seen.has(f.name))
        ctx.addIssue({ code: 'custom', path: ['features', i, 'name'], message: `duplicate ${f.name}` });
      seen.add(f.name);
      if (f.kind === 'window' && !s.entities[f.entity])
        ctx.addIssue({
          code: 'custom',
          path: ['features', i, 'entity'],
          message: `unknown entity ${f.entity}`,
        });
      if (
        f.kind === 'window' &&
        f.delay_days > 0 &&
        f.aggregation !== 'count' &&
        f.aggregation !== 'fraud_rate'
      )
        ctx.addIssue({
          code: 'custom',
          path: ['features', i, 'aggregation'],
          message: `${f.aggregation} needs the current transaction, so delay_days must be 0`,
        });
    });
  });
export type FeatureSet = z.infer<typeof FeatureSetSchema>;

/** `transaction_v1` — the id models name in their manifest. */
export function featureSetId(s: { name: string; version: number }): string {
  return `${s.name}_v${s.version}`;
}
