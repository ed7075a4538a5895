// ESM with a named export: arb app spec `esm.mjs:app`.
export const app = (_req, res) => res.end(JSON.stringify({ kind: 'esm', pid: process.pid }));
