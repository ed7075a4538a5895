// A TypeScript app file: arb loads .ts directly (no build step).
import type { IncomingMessage, ServerResponse } from 'node:http';

interface Reply {
  kind: 'typescript';
  pid: number;
}

export default function handler(_req: IncomingMessage, res: ServerResponse): void {
  const reply: Reply = { kind: 'typescript', pid: process.pid };
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify(reply));
}
