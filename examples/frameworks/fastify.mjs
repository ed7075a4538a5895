// A Fastify instance that is not listening: arb readies it and serves app.server.
import Fastify from 'fastify';

const app = Fastify();
app.get('/', async () => ({ kind: 'fastify', pid: process.pid }));
export default app;
