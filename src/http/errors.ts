import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import { type ErrorCode, ServiceError, serviceErrorOf } from '../domain/errors.js';
import { describeProblems, problemsOf as domainProblemsOf, type Problem } from '../domain/problems.js';

/** Problems of a request: the body itself is `(body)`. */
export function problemsOf(error: z.ZodError, prefix = ''): Problem[] {
  return domainProblemsOf(error, prefix, '(body)');
}

/** A 400 `invalid_request` listing every problem of one part of the request (`prefix`: `params`, `query`, …). */
export function validationError(error: z.ZodError, prefix = ''): ServiceError {
  const problems = problemsOf(error, prefix);
  return new ServiceError('invalid_request', `${problems.length} problem(s) in the request`, problems);
}

/** What Fastify itself may answer on a route that takes a body. */
export const BODY_ERRORS: readonly ErrorCode[] = [
  'invalid_json',
  'empty_body',
  'invalid_content_length',
  'body_too_large',
  'unsupported_media_type',
];
/** What Fastify's router may answer on a route with path parameters. */
export const PARAM_ERRORS: readonly ErrorCode[] = ['bad_url', 'uri_too_long'];

// A URL error keeps Fastify's status but not its message, which would echo the URL back.
const URL_MESSAGE = 'malformed or over-long URL';
const FASTIFY_CODES: Readonly<Record<string, { code: ErrorCode; message?: string }>> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { code: 'unsupported_media_type' },
  FST_ERR_CTP_BODY_TOO_LARGE: { code: 'body_too_large' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { code: 'empty_body' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { code: 'invalid_content_length' },
  FST_ERR_CTP_INVALID_JSON_BODY: { code: 'invalid_json' },
  FST_ERR_BAD_URL: { code: 'bad_url', message: URL_MESSAGE },
  FST_ERR_MAX_PARAM_LENGTH: { code: 'uri_too_long', message: URL_MESSAGE },
};

/** A thrown value as the service error it is answered with, and the status (the catalogue's but for `bad_request`). */
export function answerOf(err: Partial<FastifyError>): { error: ServiceError; status: number } {
  const ours = serviceErrorOf(err);
  if (ours) return { error: ours, status: ours.status };
  const framework = err.code ? FASTIFY_CODES[err.code] : undefined;
  const known = framework && new ServiceError(framework.code, framework.message ?? err.message ?? '');
  if (known) return { error: known, status: known.status };
  const message = err.message ?? '';
  if (err instanceof SyntaxError || (err.statusCode === 400 && /JSON/i.test(message)))
    return answerOf(new ServiceError('invalid_json', `malformed JSON body: ${message}`));
  if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500)
    return { error: new ServiceError('bad_request', message), status: err.statusCode };
  return answerOf(new ServiceError('internal', 'internal error'));
}

/**
 * Answers any error in the one body shape, `{ error: { code, message, problems? } }` — never a stack trace.
 * Unexpected errors are logged and answered as `internal`.
 */
export function answerError(err: Partial<FastifyError>, req: FastifyRequest, reply: FastifyReply) {
  const { error, status } = answerOf(err);
  if (error.code === 'internal') req.log.error({ err }, 'unhandled error');
  return reply.code(status).send({
    error: {
      code: error.code,
      message: error.message,
      ...(error.problems ? { problems: error.problems } : {}),
    },
  });
}

/**
 * The Open Inference Protocol's error body, `{ error: "<message>" }`: the same status as any other answer (the
 * catalogue's), and a message that starts with the catalogue code and lists the problems.
 */
export function answerOipError(err: Partial<FastifyError>, req: FastifyRequest, reply: FastifyReply) {
  const { error, status } = answerOf(err);
  if (error.code === 'internal') req.log.error({ err }, 'unhandled error');
  const problems = error.problems?.length ? `: ${describeProblems(error.problems)}` : '';
  return reply.code(status).send({ error: `${error.code}: ${error.message}${problems}` });
}

/** Routes throw; this handler (and the not-found handler) answer through the catalogue. */
export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, req, reply) => answerError(err, req, reply));
  app.setNotFoundHandler((req, reply) =>
    answerError(new ServiceError('not_found', `no route ${req.method} ${req.url.split('?')[0]}`), req, reply),
  );
}
