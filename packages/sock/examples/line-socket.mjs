// line-socket.mjs: `node line-socket.mjs` serves a JSON-lines control socket at ./time.sock,
// asks it one question with the client, prints the reply and closes (removing the file).
import { LineClientError, LineServer, requestLine } from '@arb/sock';

const reply = (value) => `${JSON.stringify(value)}\n`;
const server = new LineServer({
  path: './time.sock', // mode 0600; a socket another process listens on is refused
  maxConnections: 16, // the other limits keep their defaults
  idleTimeoutMs: 10_000,
  // one request line in (a Buffer, never blank), one reply line out
  handle: async (line) => {
    const request = JSON.parse(line.toString('utf8')); // a throw answers "internal error: ..."
    if (request.cmd !== 'time')
      return reply({ ok: false, error: `unknown command '${request.cmd}'` });
    return reply({ ok: true, now: new Date().toISOString() });
  },
});
await server.listen();
try {
  const answer = await requestLine('./time.sock', { cmd: 'time' }, { timeoutMs: 2000 });
  console.log(`ok: ${answer.ok}, now: ${answer.now}`);
} catch (err) {
  // NoSocketError ("no control socket at PATH"), SocketBusyError (no reply in time), ...
  if (err instanceof LineClientError) console.error(`${err.code}: ${err.message}`);
  process.exitCode = 2;
} finally {
  await server.close();
}
