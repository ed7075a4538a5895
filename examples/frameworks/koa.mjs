// Koa: export the request listener, koa.callback().
import Koa from 'koa';

const app = new Koa();
app.use((ctx) => {
  ctx.body = { kind: 'koa', pid: process.pid };
});
export const handler = app.callback();
