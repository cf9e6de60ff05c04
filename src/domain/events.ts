import { z } from 'zod';

/**
 * Ids travel as Redis key parts and Kafka keys, and are logged and shown to analysts: 1–128 characters (code
 * points), well-formed, with no whitespace (with the controls, that is Unicode's separators, category Z), no
 * control (Cc), no format character (Cf: zero-width space and joiners, bidi controls, soft hyphen, BOM — all
 * invisible, so `cust\u200b1` would look like `cust1` yet be another customer) and no braces (they would break
 * hash tags).
 */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
export const Id = z
  .string()
  .min(1)
  .max(128)
  .regex(
    /^[^\s{}\p{Cc}\p{Cf}]+$/u,
    'must be 1-128 characters without whitespace, control or format characters (Unicode Z, Cc, Cf) or braces',
  )
  // Two different lone surrogates would become the same bytes in a Redis key.
  .refine((s) => !LONE_SURROGATE.test(s), 'must be well-formed Unicode');

/** ISO-8601 with an explicit zone (Z or ±hh:mm); normalised to epoch milliseconds by `eventTimeMs`. */
const MIN_TIME = Date.parse('1970-01-01T00:00:00Z');
const MAX_TIME = Date.parse('2100-01-01T00:00:00Z');
/**
 * Bounded, because one event dated 9999 would make every later event of its entity "late": the bounds keep
 * such a typo a 400 rather than a frozen customer.
 */
const Timestamp = z.iso
  .datetime({ offset: true, message: 'must be an ISO-8601 date-time with a zone, e.g. 2018-04-01T00:00:31Z' })
  .refine((s) => {
    const t = Date.parse(s);
    return t >= MIN_TIME && t < MAX_TIME;
  }, 'must be between 1970 and 2100');

/**
 * Schema version 1 of the `transactions` topic; also the body of POST /v1/score.
 * Unknown fields are dropped, not refused, so producers can add fields before consumers know them.
 */
export const TransactionSchema = z.object({
  transaction_id: Id,
  timestamp: Timestamp,
  customer_id: Id,
  terminal_id: Id,
  amount: z.number().min(0).max(1e9).finite(),
  currency: z
    .string()
    .regex(/^[A-Z]{3}$/, 'must be an ISO-4217 code')
    .optional(),
  channel: z.enum(['card_present', 'ecommerce', 'moto', 'atm', 'other']).optional(),
  merchant_category: z
    .string()
    .regex(/^\d{4}$/, 'must be a 4-digit MCC')
    .optional(),
  device_id: z.string().min(1).max(256).optional(),
  ip: z.union([z.ipv4(), z.ipv6()]).optional(),
});
export type Transaction = z.infer<typeof TransactionSchema>;

/** Schema version 1 of the `labels` topic: fraud feedback (chargebacks, analyst verdicts). */
export const LabelSchema = z.object({
  transaction_id: Id,
  customer_id: Id,
  terminal_id: Id,
  transaction_timestamp: Timestamp,
  is_fraud: z.boolean(),
  labeled_at: Timestamp.optional(),
  source: z.string().min(1).max(64).optional(),
});
export type Label = z.infer<typeof LabelSchema>;

export const TaggedEventSchema = z.discriminatedUnion('type', [
  TransactionSchema.extend({ type: z.literal('transaction') }),
  LabelSchema.extend({ type: z.literal('label') }),
]);
export type TaggedEvent = z.infer<typeof TaggedEventSchema>;

export function eventTimeMs(iso: string): number {
  return Date.parse(iso);
}
