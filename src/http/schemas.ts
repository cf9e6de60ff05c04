import { z } from 'zod';
import { TaggedEventSchema, TransactionSchema } from '../domain/events.js';
import { ScoreResultSchema } from '../domain/scoring/result.js';

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
      problems: z.array(z.object({ path: z.string(), message: z.string() })),
    }),
  ),
});

export const ErrorSchema = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    problems: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  }),
});

export { ScoreResultSchema, TaggedEventSchema, TransactionSchema };
