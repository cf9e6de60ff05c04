import type { FastifyInstance } from 'fastify';
import type { RouteDoc } from './route-doc.js';

/** A route as Fastify registered it, with its documentation. */
export interface DocumentedRoute {
  readonly method: string;
  readonly url: string;
  readonly doc: RouteDoc;
}

/**
 * Records every route registered on `app` from now on (call it before registering any); the list fills as
 * plugins register. A route without documentation fails its registration, so the document cannot miss one.
 * Fastify's automatic HEAD routes are left out.
 */
export function collectRoutes(app: FastifyInstance): readonly DocumentedRoute[] {
  const routes: DocumentedRoute[] = [];
  app.addHook('onRoute', (route) => {
    const methods = [route.method].flat().filter((m) => m !== 'HEAD');
    if (methods.length === 0) return;
    const doc = route.config?.doc;
    if (!doc)
      throw new Error(`route ${methods.join(',')} ${route.url} has no OpenAPI doc (see documented())`);
    for (const method of methods) routes.push({ method, url: route.url, doc });
  });
  return routes;
}
