import type { z } from 'zod';
import type { ErrorCode } from '../../domain/errors.js';

/** One answer that is not an error: what it means and, when it has one, its body. */
export interface ResponseDoc {
  readonly description: string;
  readonly schema?: z.ZodType;
  /** `application/json` unless said otherwise. */
  readonly contentType?: string;
}

/**
 * What a route tells the OpenAPI document about itself, declared where it is registered. The error responses
 * come from the catalogue: the codes the route throws, plus what Fastify answers for its body and URL.
 */
export interface RouteDoc {
  readonly summary: string;
  /** Path parameters: each `:name` of the URL takes its schema from here. */
  readonly params?: z.ZodObject;
  readonly query?: z.ZodObject;
  readonly headers?: z.ZodObject;
  /** The JSON body the route accepts. */
  readonly body?: z.ZodType;
  /** Answers by status, other than the catalogue's errors. */
  readonly responses: Readonly<Record<number, ResponseDoc>>;
  /** The catalogue codes the route (or a use case it calls) throws. */
  readonly errors: readonly ErrorCode[];
  /** Behind a bearer token: the admin one (ADMIN_TOKEN) or the events one (EVENTS_TOKEN). */
  readonly bearer?: 'admin' | 'events';
  /** Errors answered in the Open Inference Protocol's body, `{ error: "<code>: <message>" }`, not the catalogue's. */
  readonly errorBody?: 'oip';
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route's part of the OpenAPI document; every route has one (see collectRoutes). */
    readonly doc?: RouteDoc;
  }
}

/** Route options carrying the route's documentation: `app.post(url, documented({...}), handler)`. */
export function documented(doc: RouteDoc): { config: { doc: RouteDoc } } {
  return { config: { doc } };
}
