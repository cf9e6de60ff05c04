import { z } from 'zod';
import type { ErrorCode } from '../domain/errors.js';
import { TaggedEventSchema, TransactionSchema } from '../domain/events.js';
import { ScoreResultSchema } from '../domain/scoring/result.js';

const ProblemSchema = z.object({ path: z.string(), message: z.string() });

export const ScoreQuerySchema = z.object({ explain: z.enum(['true', 'false', '1', '0']).optional() });

export const BatchBodySchema = (max: number) =>
  z
    .object({ transactions: z.array(z.unknown()).min(1).max(max, `at most ${max} transactions per batch`) })
    .strict();

export const EventsBodySchema = (max: number) =>
  z.object({ events: z.array(z.unknown()).min(1).max(max, `at most ${max} events per request`) }).strict();

export const EventsResultSchema = z.object({
  applied: z.number().int(),
  duplicates: z.number().int(),
  late: z.number().int(),
  rejected: z.array(
    z.object({
      index: z.number().int(),
      problems: z.array(ProblemSchema),
    }),
  ),
});

/** The error body with `code` one of `codes`; `problems` comes with `invalid_request` only. */
export const ErrorSchema = (codes: readonly [ErrorCode, ...ErrorCode[]]) =>
  z.object({
    error: z.object({
      code: z.enum(codes),
      message: z.string(),
      ...(codes.includes('invalid_request') ? { problems: z.array(ProblemSchema).min(1).optional() } : {}),
    }),
  });

export { ScoreResultSchema, TaggedEventSchema, TransactionSchema };
