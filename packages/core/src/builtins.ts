import { createRequire } from 'node:module';

// `import http from 'node:http'` in an ES module builds the module's namespace, which on
// Node.js >= 22 evaluates http's lazy getters (WebSocket, ...) and so loads undici, http2
// and zlib: about 10 MB of RSS and 15 ms of start-up that neither the master nor a worker
// uses. `require` returns the module object without touching those getters.
const require = createRequire(import.meta.url);

export const http = (): typeof import('node:http') => require('node:http');
export const https = (): typeof import('node:https') => require('node:https');
