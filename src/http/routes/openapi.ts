import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { documented } from '../openapi/route-doc.js';

export interface OpenApiRoutesOptions {
  /** Built on first request, once every route is registered. */
  readonly document: () => object;
}

/** The generated OpenAPI document, and a page that shows it without any tool. */
export const openApiRoutes: FastifyPluginAsync<OpenApiRoutesOptions> = async (app, o) => {
  let cached: object | undefined;
  const document = () => {
    cached ??= o.document();
    return cached;
  };
  const jsonDoc = documented({
    summary: 'This document (OpenAPI 3.1)',
    responses: { 200: { description: 'The OpenAPI document', schema: z.record(z.string(), z.unknown()) } },
    errors: [],
  });
  app.get('/openapi.json', jsonDoc, async () => document());
  const pageDoc = documented({
    summary: 'This document as a page',
    responses: { 200: { description: 'HTML', schema: z.string(), contentType: 'text/html' } },
    errors: [],
  });
  app.get('/docs', pageDoc, async (_req, reply) =>
    reply.type('text/html; charset=utf-8').send(docsPage(document())),
  );
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
<p>Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1, generated from the registered routes, the zod schemas that validate them and the error catalogue).</p>
${ops.join('\n')}</body></html>`;
}
