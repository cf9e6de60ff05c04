import { z } from 'zod';

const Name = z.string().regex(/^[A-Z][A-Z0-9_]*$/, 'feature names are UPPER_SNAKE_CASE');
const Common = { name: Name, description: z.string().optional() };

export const Aggregations = [
  'count',
  'mean_amount',
  'fraud_rate',
  'amount_ratio_to_prior_mean',
  'seconds_since_previous',
  'count_distinct',
  'seconds_since_first_with',
  'new_with',
] as const;
export type Aggregation = (typeof Aggregations)[number];

/**
 * Aggregations over another entity's key (`of`): each record of the entity carries the id of its `of` entity (the
 * device of a customer's transaction, the customer of a device's), see records.ts `links`.
 * - `count_distinct`: distinct `of` ids among the window's records, this transaction's included (distinct devices
 *   of a customer, distinct customers of a device); records without an `of` id count for nothing.
 * - `seconds_since_first_with`: seconds since the entity's first record in the window with this transaction's
 *   `of` id (since this customer first used this device), capped at the window's span: the span when there is
 *   none before this one, or when this transaction has no `of` id (a missing device is treated as a familiar one).
 * - `new_with`: 1 when no earlier record of the entity in the window has this transaction's `of` id (a new device
 *   for this customer); 0 when this transaction has no `of` id.
 */
export const LinkAggregations: readonly Aggregation[] = [
  'count_distinct',
  'seconds_since_first_with',
  'new_with',
];

/**
 * The request fields an entity may be keyed by. `device_id` and `ip` are optional in a request and `ip_prefix` is
 * derived from `ip` (IPv4 /24, IPv6 /48; see keys.ts): a transaction without the field writes nothing to the entity,
 * and its features of that entity take their documented defaults (counted in fraudscore_feature_defaulted_total):
 * the aggregation of an empty window, computed as if the transaction itself were not there — 0 for counts, distinct
 * counts, means and rates, 1 for amount ratios, the window's span for seconds.
 */
export const KeyFields = ['customer_id', 'terminal_id', 'device_id', 'ip', 'ip_prefix'] as const;
export type KeyField = (typeof KeyFields)[number];
/** Fields a transaction may lack. */
export const OptionalKeyFields: readonly KeyField[] = ['device_id', 'ip', 'ip_prefix'];

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
    /** The other entity of `count_distinct`, `seconds_since_first_with` and `new_with`. */
    of: z.string().min(1).optional(),
  }),
]);
export type Feature = z.infer<typeof FeatureSchema>;
export type WindowFeature = Extract<Feature, { kind: 'window' }>;

export const FeatureSetSchema = z
  .object({
    name: z.string().regex(/^[a-z][a-z0-9_]*$/),
    version: z.number().int().min(1),
    description: z.string().optional(),
    entities: z.record(z.string().regex(/^[a-z][a-z0-9_]*$/), z.object({ key: z.enum(KeyFields) })),
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
      if (f.kind !== 'window') return;
      const links = LinkAggregations.includes(f.aggregation);
      if (links !== (f.of !== undefined))
        ctx.addIssue({
          code: 'custom',
          path: ['features', i, 'of'],
          message: links
            ? `${f.aggregation} needs \`of\`, another entity`
            : `\`of\` is only for ${LinkAggregations.join(', ')}`,
        });
      if (f.of !== undefined && (!s.entities[f.of] || f.of === f.entity))
        ctx.addIssue({
          code: 'custom',
          path: ['features', i, 'of'],
          message: `unknown or same entity ${f.of}`,
        });
      const key = s.entities[f.entity]?.key;
      // Labels name the customer and the terminal only: other entities never learn which records are fraud.
      if (
        f.aggregation === 'fraud_rate' &&
        key !== undefined &&
        key !== 'customer_id' &&
        key !== 'terminal_id'
      )
        ctx.addIssue({
          code: 'custom',
          path: ['features', i, 'aggregation'],
          message: `fraud_rate needs labels, which reach customer and terminal entities only`,
        });
      if (
        f.delay_days > 0 &&
        f.aggregation !== 'count' &&
        f.aggregation !== 'fraud_rate' &&
        f.aggregation !== 'count_distinct'
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
