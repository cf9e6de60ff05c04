import type { FastifyError, FastifyInstance } from 'fastify';
import type { z } from 'zod';
import { problemsOf as domainProblemsOf, type Problem } from '../domain/problems.js';

/** Every error body: `{ error: { code, message, problems? } }` — never a stack trace. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly problems?: readonly Problem[],
  ) {
    super(message);
  }
}

/** Problems of a request: the body itself is `(body)`. */
export function problemsOf(error: z.ZodError, prefix = ''): Problem[] {
  return domainProblemsOf(error, prefix, '(body)');
}

export function validationError(error: z.ZodError, prefix = ''): HttpError {
  const problems = problemsOf(error, prefix);
  return new HttpError(400, 'invalid_request', `${problems.length} problem(s) in the request`, problems);
}

const FASTIFY_CODES: Record<string, { status: number; code: string }> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { status: 415, code: 'unsupported_media_type' },
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, code: 'body_too_large' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, code: 'empty_body' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { status: 400, code: 'invalid_content_length' },
  FST_ERR_CTP_INVALID_JSON_BODY: { status: 400, code: 'invalid_json' },
};

export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | HttpError, req, reply) => {
    if (err instanceof HttpError) {
      return reply.code(err.statusCode).send({
        error: {
          code: err.code,
          message: err.message,
          ...(err.problems ? { problems: err.problems } : {}),
        },
      });
    }
    const known = err.code ? FASTIFY_CODES[err.code] : undefined;
    if (known) return reply.code(known.status).send({ error: { code: known.code, message: err.message } });
    if (err instanceof SyntaxError || (err.statusCode === 400 && /JSON/i.test(err.message))) {
      return reply
        .code(400)
        .send({ error: { code: 'invalid_json', message: `malformed JSON body: ${err.message}` } });
    }
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) req.log.error({ err }, 'unhandled error');
    return reply.code(status).send({
      error: {
        code: status === 500 ? 'internal' : 'bad_request',
        message: status === 500 ? 'internal error' : err.message,
      },
    });
  });
  app.setNotFoundHandler((req, reply) =>
    reply
      .code(404)
      .send({ error: { code: 'not_found', message: `no route ${req.method} ${req.url.split('?')[0]}` } }),
  );
}
