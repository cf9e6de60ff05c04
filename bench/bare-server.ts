/** The baseline: a bare Fastify route that parses the same JSON body and returns a constant. */
import Fastify from 'fastify';

const app = Fastify({ logger: false });
app.post('/v1/score', async () => ({ score: 0.01, decision: 'approve' }));
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 18090) });
process.send?.('ready');
