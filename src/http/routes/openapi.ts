import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { TaggedEventSchema, TransactionSchema } from '../../domain/events.js';
import { ScoreResultSchema } from '../../domain/scoring/result.js';
import { ErrorSchema, EventsResultSchema } from '../schemas.js';
import { DEADLINE_HEADER } from './score.js';

const json = (schema: z.ZodType, io: 'input' | 'output' = 'output') => ({
  'application/json': { schema: z.toJSONSchema(schema, { io, unrepresentable: 'any' }) },
});
const errors = Object.fromEntries(
  [
    ['400', 'Malformed JSON or a schema violation; `problems` lists each field path and message'],
    ['413', 'Body over the size limit'],
    ['415', 'Content type is not application/json'],
  ].map(([code, description]) => [code, { description, content: json(ErrorSchema) }]),
);

/** The OpenAPI document is generated from the same zod schemas that validate requests. */
export function openApiDocument(o: { version: string; maxBatch: number; maxEvents: number }) {
  const deadline = {
    name: DEADLINE_HEADER,
    in: 'header',
    required: false,
    description: 'Shorter per-request budget in milliseconds (never longer than the configured one).',
    schema: { type: 'number', exclusiveMinimum: 0 },
  };
  const explain = {
    name: 'explain',
    in: 'query',
    required: false,
    schema: { type: 'string', enum: ['true', 'false'] },
  };
  return {
    openapi: '3.1.0',
    info: {
      title: 'fraudscore',
      version: o.version,
      description: 'Real-time card-transaction fraud scoring.',
    },
    paths: {
      '/v1/score': {
        post: {
          summary: 'Score one transaction',
          parameters: [explain, deadline],
          requestBody: { required: true, content: json(TransactionSchema, 'input') },
          responses: {
            '200': { description: 'Score, decision and reasons', content: json(ScoreResultSchema) },
            ...errors,
          },
        },
      },
      '/v1/score/batch': {
        post: {
          summary: `Score up to ${o.maxBatch} transactions in one inference batch per model member`,
          parameters: [explain, deadline],
          requestBody: {
            required: true,
            content: json(z.object({ transactions: z.array(TransactionSchema).max(o.maxBatch) }), 'input'),
          },
          responses: {
            '200': {
              description: 'Results in request order',
              content: json(z.object({ results: z.array(ScoreResultSchema) })),
            },
            ...errors,
          },
        },
      },
      '/v1/events': {
        post: {
          summary: `Apply up to ${o.maxEvents} transaction and label events to the feature store`,
          requestBody: {
            required: true,
            content: json(z.object({ events: z.array(TaggedEventSchema).max(o.maxEvents) }), 'input'),
          },
          responses: {
            '200': {
              description: 'Counts, and each rejected event with its problems',
              content: json(EventsResultSchema),
            },
            '503': { description: 'Feature store unavailable', content: json(ErrorSchema) },
            ...errors,
          },
        },
      },
      '/health/live': {
        get: { summary: 'Liveness', responses: { '200': { description: 'Process is up' } } },
      },
      '/health/ready': {
        get: {
          summary: 'Readiness: a model warmed up and the feature store reachable',
          responses: { '200': { description: 'Ready' }, '503': { description: 'Not ready' } },
        },
      },
      '/metrics': {
        get: {
          summary: 'Prometheus metrics',
          responses: { '200': { description: 'Text exposition format' } },
        },
      },
    },
  };
}

export const openApiRoutes: FastifyPluginAsync<{ document: object }> = async (app, o) => {
  app.get('/openapi.json', async () => o.document);
  app.get('/docs', async (_req, reply) => reply.type('text/html; charset=utf-8').send(docsPage(o.document)));
};

/** A self-contained page (no CDN): endpoints with their schemas, readable without a tool. */
function docsPage(doc: object): string {
  const d = doc as {
    info: { title: string; version: string };
    paths: Record<
      string,
      Record<string, { summary?: string; requestBody?: unknown; responses?: unknown; parameters?: unknown }>
    >;
  };
  const esc = (s: string) => s.replace(/[&<>]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;' })[c]!);
  const ops = Object.entries(d.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(
      ([
        method,
        op,
      ]) => `<section><h2><code>${method.toUpperCase()} ${esc(path)}</code></h2><p>${esc(op.summary ?? '')}</p>
${op.parameters ? `<details><summary>Parameters</summary><pre>${esc(JSON.stringify(op.parameters, null, 2))}</pre></details>` : ''}
${op.requestBody ? `<details><summary>Request body</summary><pre>${esc(JSON.stringify(op.requestBody, null, 2))}</pre></details>` : ''}
<details><summary>Responses</summary><pre>${esc(JSON.stringify(op.responses, null, 2))}</pre></details></section>`,
    ),
  );
  return `<!doctype html><html><head><meta charset="utf-8"><title>${esc(d.info.title)} API</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}pre{background:#f5f5f5;padding:.75rem;overflow:auto}h2{font-size:1.1rem;margin-top:2rem}</style>
</head><body><h1>${esc(d.info.title)} API <small>${esc(d.info.version)}</small></h1>
<p>Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1, generated from the zod schemas that validate requests).</p>
${ops.join('\n')}</body></html>`;
}
