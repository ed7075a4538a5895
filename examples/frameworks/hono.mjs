// Hono: an object with fetch(Request): Response, the Web-standard handler shape.
import { Hono } from 'hono';

const app = new Hono();
app.get('/', (c) => c.json({ kind: 'hono', pid: process.pid }));
app.post('/echo', async (c) => c.json({ kind: 'hono', echo: await c.req.text() }));
export default app;
