/** The baseline: a bare Fastify route that parses the same JSON body and returns a constant. */
import Fastify from 'fastify';

const app = Fastify({ logger: false });
app.post('/v1/score', async () => ({ score: 0.01, decision: 'approve' }));
// CPU time of this process (µs), so the bench can divide it by the requests it served.
app.get('/cpu', async () => process.cpuUsage());
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 18090) });
process.send?.('ready');
