import { z } from 'zod';
import { CardSchema } from './card.js';
import { MODEL_NAME, MODEL_VERSION } from './names.js';

const Sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'must be a lowercase hex sha256');
const Finite = z.number().finite();

/** Equal-width or explicit bins: counts[i] is the number of training rows in [edges[i], edges[i+1]); the outer bins are open. */
export const HistogramSchema = z
  .object({ edges: z.array(Finite).min(2), counts: z.array(z.number().min(0)) })
  .refine(
    (h) => h.counts.length === h.edges.length + 1,
    'counts must have edges.length + 1 entries (two open outer bins)',
  )
  .refine(
    (h) => h.edges.every((e, i) => i === 0 || e > h.edges[i - 1]!),
    'edges must be strictly increasing',
  );
export type Histogram = z.infer<typeof HistogramSchema>;

export const MemberSchema = z.object({
  name: z.string().regex(MODEL_NAME),
  family: z.string().min(1),
  file: z
    .string()
    .regex(/^[A-Za-z0-9_.-]+\.onnx$/, 'must be a file name ending in .onnx inside the version folder'),
  sha256: Sha256,
  input_name: z.string().min(1),
  output_name: z.string().min(1),
  /** Column of the positive class when the output is [N, 2]; null when the output is already P(fraud) as [N] or [N, 1]. */
  output_index: z.number().int().min(0).nullable(),
  weight: z.number().min(0),
});
export type Member = z.infer<typeof MemberSchema>;

export const CombinerSchema = z.discriminatedUnion('kind', [
  /** score = Σ wᵢ·pᵢ / Σ wᵢ with the members' weights. */
  z.object({ kind: z.literal('weighted_mean') }),
  /** score = σ(intercept + Σ coefᵢ·logit(clip(pᵢ))): a logistic stack fitted on the validation period. */
  z.object({
    kind: z.literal('logistic_stack'),
    intercept: Finite,
    coefficients: z.array(Finite).min(1),
    clip: z.number().gt(0).lt(0.5).default(1e-6),
  }),
]);
export type Combiner = z.infer<typeof CombinerSchema>;

export const MetricsSchema = z.object({
  auc_roc: Finite,
  average_precision: Finite,
  card_precision_at_100: Finite,
});

export const ManifestSchema = z
  .object({
    schema_version: z.literal(1),
    name: z.string().regex(MODEL_NAME),
    version: z.string().regex(MODEL_VERSION, 'must be a positive integer, the version folder name'),
    created_at: z.iso.datetime({ offset: true }),
    description: z.string().optional(),
    feature_set: z.object({ name: z.string().min(1), version: z.number().int().min(1) }),
    inputs: z.array(z.string().min(1)).min(1),
    members: z.array(MemberSchema).min(1),
    combiner: CombinerSchema,
    thresholds: z
      .object({
        review: z.number().min(0).max(1),
        decline: z.number().min(0).max(1),
        alert_budget: z
          .string()
          .min(1)
          .describe('what the thresholds were chosen for, e.g. "top 0.5% reviewed"'),
      })
      .refine((t) => t.review <= t.decline, 'review threshold must not exceed decline threshold'),
    /** Per-input importance in [0, 1] (summing to about 1), used to weigh reason codes. */
    importance: z.record(z.string(), z.number().min(0)),
    reference: z.object({
      rows: z.number().int().min(1),
      features: z.record(z.string(), HistogramSchema),
      score: HistogramSchema,
      /** Mean and standard deviation of each input on the training data, for reason codes. */
      moments: z.record(z.string(), z.object({ mean: Finite, std: z.number().min(0) })),
    }),
    evaluation: z.record(z.string(), z.unknown()),
    training: z.object({
      data_from: z.string(),
      data_to: z.string(),
      rows: z.number().int().min(0),
      frauds: z.number().int().min(0),
      seed: z.number().int(),
      command: z.string().optional(),
      /** Each member's settings as trained, by member name (for the model card). */
      hyperparameters: z.record(z.string(), z.unknown()).optional(),
    }),
    /** The model card: provenance, comparison with the champion and the gate verdict (absent before cards). */
    card: CardSchema.optional(),
    golden: z
      .array(z.object({ inputs: z.array(Finite), members: z.array(Finite), score: Finite }))
      .min(1, 'a manifest needs golden examples to verify a load'),
  })
  .superRefine((m, ctx) => {
    const n = m.inputs.length;
    if (new Set(m.inputs).size !== n)
      ctx.addIssue({ code: 'custom', path: ['inputs'], message: 'input names must be unique' });
    if (new Set(m.members.map((x) => x.file)).size !== m.members.length)
      ctx.addIssue({ code: 'custom', path: ['members'], message: 'member files must be distinct' });
    if (m.combiner.kind === 'logistic_stack' && m.combiner.coefficients.length !== m.members.length)
      ctx.addIssue({
        code: 'custom',
        path: ['combiner', 'coefficients'],
        message: 'one coefficient per member',
      });
    for (const name of m.inputs)
      if (!m.reference.features[name])
        ctx.addIssue({
          code: 'custom',
          path: ['reference', 'features', name],
          message: 'missing reference histogram',
        });
    m.golden.forEach((g, i) => {
      if (g.inputs.length !== n)
        ctx.addIssue({ code: 'custom', path: ['golden', i, 'inputs'], message: `expected ${n} inputs` });
      if (g.members.length !== m.members.length)
        ctx.addIssue({
          code: 'custom',
          path: ['golden', i, 'members'],
          message: `expected ${m.members.length} member scores`,
        });
    });
  });
export type Manifest = z.infer<typeof ManifestSchema>;
