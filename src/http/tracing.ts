import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify';
import type { Span, TraceContext, Tracer } from '../ports/tracer.js';

/** Probes and scrapes (the Open Inference Protocol's included): traced, they would be most spans and tell nothing. */
const UNTRACED = /^\/(health\/|metrics$|v2\/health\/|v2\/models\/.*\/ready$)/;

/** The server span of a request, for routes to parent the use case's spans on. */
export type TraceOf = (req: FastifyRequest) => TraceContext | undefined;

/**
 * A server span per request (but probes and scrapes), continuing the W3C trace context of the request's
 * `traceparent` header when it has one. Its name is the method and route template; its attributes are the stable
 * HTTP ones (method, route, path of a matched route, status code); a 5xx marks it failed. Registered only when
 * tracing is on.
 */
export function traceRequests(app: FastifyInstance, tracer: Tracer): TraceOf {
  const spans = new WeakMap<FastifyRequest, Span>();
  const errors = new WeakMap<FastifyRequest, FastifyError>();
  app.addHook('onRequest', async (req) => {
    const route = req.routeOptions.url;
    if (route && UNTRACED.test(route)) return;
    const parent = tracer.extract(req.headers);
    spans.set(
      req,
      tracer.start(route ? `${req.method} ${route}` : req.method, {
        kind: 'server',
        ...(parent ? { parent } : {}),
        attributes: {
          'http.request.method': req.method,
          'http.route': route,
          // An unmatched path is whatever the caller sent: left out.
          'url.path': route ? req.url.split('?', 1)[0] : undefined,
          'url.scheme': req.protocol,
        },
      }),
    );
  });
  app.addHook('onError', async (req, _reply, err) => {
    errors.set(req, err);
  });
  app.addHook('onResponse', async (req, reply) => {
    const span = spans.get(req);
    if (!span) return;
    span.setAttributes({ 'http.response.status_code': reply.statusCode });
    if (reply.statusCode >= 500) {
      span.setAttributes({ 'error.type': String(reply.statusCode) });
      span.fail(errors.get(req) ?? new Error(`HTTP ${reply.statusCode}`));
    }
    span.end();
  });
  app.addHook('onRequestAbort', async (req) => {
    const span = spans.get(req);
    if (!span) return;
    span.setAttributes({ 'error.type': 'aborted' });
    span.end();
  });
  return (req) => spans.get(req)?.context;
}
