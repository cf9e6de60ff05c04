import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

/** A bare /metrics and /health/live endpoint for processes without the API (the worker). */
export async function startMetricsServer(registry: Registry, host: string, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.url === '/metrics' && req.method === 'GET') {
      registry.metrics().then(
        (body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body),
        () => res.writeHead(500).end(),
      );
    } else if (req.url === '/health/live')
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  return server;
}
