import { z } from 'zod';
import { ERRORS, type ErrorCode } from '../../domain/errors.js';
import { BODY_ERRORS, PARAM_ERRORS } from '../errors.js';
import { OipErrorSchema } from '../oip.js';
import { ErrorSchema } from '../schemas.js';
import type { DocumentedRoute } from './collect.js';
import type { RouteDoc } from './route-doc.js';

const SCHEMES = { admin: 'adminToken', events: 'eventsToken' } as const;
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

type JsonSchema = {
  properties?: Record<string, { description?: string; [k: string]: unknown }>;
  required?: string[];
};
const jsonSchema = (schema: z.ZodType, io: 'input' | 'output') =>
  z.toJSONSchema(schema, { io, unrepresentable: 'any' });
const content = (schema: z.ZodType, io: 'input' | 'output', type = 'application/json') => ({
  [type]: { schema: jsonSchema(schema, io) },
});

/** `/admin/models/:name` → `/admin/models/{name}`. */
export const openApiPath = (url: string) => url.replace(/:(\w+)/g, '{$1}');

/**
 * The OpenAPI 3.1 document of the routes that were registered: each route's own declaration (summary,
 * parameters, body, answers, the error codes it throws) and, for every error, its status and meaning from the
 * catalogue. A bearer scheme appears only when routes behind its token do.
 */
export function openApiDocument(o: { version: string }, routes: readonly DocumentedRoute[]) {
  const paths: Record<string, Record<string, object>> = {};
  for (const route of routes) {
    const path = openApiPath(route.url);
    paths[path] = { ...paths[path], [route.method.toLowerCase()]: operation(route) };
  }
  const bearer = (variable: string) => ({
    type: 'http',
    scheme: 'bearer',
    description: `The ${variable} the service was started with`,
  });
  const used = new Set(routes.flatMap((r) => (r.doc.bearer ? [r.doc.bearer] : [])));
  const schemes = {
    ...(used.has('admin') ? { [SCHEMES.admin]: bearer('ADMIN_TOKEN') } : {}),
    ...(used.has('events') ? { [SCHEMES.events]: bearer('EVENTS_TOKEN') } : {}),
  };
  return {
    openapi: '3.1.0',
    info: {
      title: 'fraudscore',
      version: o.version,
      description: 'Real-time card-transaction fraud scoring.',
    },
    paths,
    ...(used.size ? { components: { securitySchemes: schemes } } : {}),
  };
}

function operation({ method, url, doc }: DocumentedRoute) {
  const parameters = [
    ...pathParameters(url, doc.params),
    ...parametersOf(doc.query, 'query'),
    ...parametersOf(doc.headers, 'header'),
  ];
  const answers = answersOf(doc.responses);
  const errors = errorResponses(errorsOf(method, url, doc), doc.errorBody);
  const both = Object.keys(answers).filter((status) => status in errors);
  if (both.length) throw new Error(`${method} ${url}: status ${both} is both an answer and an error`);
  return {
    summary: doc.summary,
    ...(parameters.length ? { parameters } : {}),
    ...(doc.body ? { requestBody: { required: true, content: content(doc.body, 'input') } } : {}),
    responses: { ...answers, ...errors },
    ...(doc.bearer ? { security: [{ [SCHEMES[doc.bearer]]: [] }] } : {}),
  };
}

/** The codes a route can answer with: its own, Fastify's for its body and path parameters, and `internal`. */
function errorsOf(method: string, url: string, doc: RouteDoc): ErrorCode[] {
  return [
    ...new Set<ErrorCode>([
      ...doc.errors,
      ...(BODY_METHODS.has(method) ? BODY_ERRORS : []),
      ...(url.includes(':') ? PARAM_ERRORS : []),
      'internal',
    ]),
  ];
}

/**
 * One response per status; its description names each code, and the body's `code` lists exactly those (the Open
 * Inference Protocol's body has only a message, which starts with the code).
 */
function errorResponses(codes: readonly ErrorCode[], body?: 'oip') {
  const byStatus = new Map<number, [ErrorCode, ...ErrorCode[]]>();
  for (const code of codes) {
    const status = ERRORS[code].status;
    const same = byStatus.get(status);
    if (same) same.push(code);
    else byStatus.set(status, [code]);
  }
  return Object.fromEntries(
    [...byStatus].map(([status, same]) => [
      String(status),
      {
        description: same.map((c) => `- \`${c}\`: ${ERRORS[c].description}`).join('\n'),
        content: content(body === 'oip' ? OipErrorSchema : ErrorSchema(same), 'output'),
      },
    ]),
  );
}

function answersOf(responses: RouteDoc['responses']) {
  return Object.fromEntries(
    Object.entries(responses).map(([status, r]) => [
      status,
      {
        description: r.description,
        ...(r.schema ? { content: content(r.schema, 'output', r.contentType) } : {}),
      },
    ]),
  );
}

/** Each `:name` of the URL, typed by the route's params schema when it has one. */
function pathParameters(url: string, schema: z.ZodObject | undefined) {
  const properties = schema ? ((jsonSchema(schema, 'input') as JsonSchema).properties ?? {}) : {};
  return [...url.matchAll(/:(\w+)/g)].map(([, name]) => parameter(name!, 'path', true, properties[name!]));
}

function parametersOf(schema: z.ZodObject | undefined, where: 'query' | 'header') {
  if (!schema) return [];
  const json = jsonSchema(schema, 'input') as JsonSchema;
  return Object.entries(json.properties ?? {}).map(([name, s]) =>
    parameter(name, where, json.required?.includes(name) ?? false, s),
  );
}

function parameter(
  name: string,
  where: string,
  required: boolean,
  schema: { description?: string; [k: string]: unknown } = { type: 'string' },
) {
  const { description, ...rest } = schema;
  return { name, in: where, required, ...(description ? { description } : {}), schema: rest };
}
