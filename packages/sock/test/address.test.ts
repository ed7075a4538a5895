import { describe, expect, it } from 'vitest';
import { AddressError, formatAddress, parseAddress } from '../src/index.js';

describe('parseAddress', () => {
  it.each([
    ['127.0.0.1:8000', { kind: 'tcp', host: '127.0.0.1', port: 8000, family: 4 }],
    ['localhost:8000', { kind: 'tcp', host: 'localhost', port: 8000, family: 0 }],
    ['localhost', { kind: 'tcp', host: 'localhost', port: 8000, family: 0 }],
    ['tcp://localhost', { kind: 'tcp', host: 'localhost', port: 8000, family: 0 }],
    ['tcp://localhost:5000', { kind: 'tcp', host: 'localhost', port: 5000, family: 0 }],
    ['LocalHost:1', { kind: 'tcp', host: 'localhost', port: 1, family: 0 }],
    ['example.com:443', { kind: 'tcp', host: 'example.com', port: 443, family: 0 }],
    [':9000', { kind: 'tcp', host: '0.0.0.0', port: 9000, family: 4 }],
    ['0.0.0.0:0', { kind: 'tcp', host: '0.0.0.0', port: 0, family: 4 }],
    ['[::1]:8000', { kind: 'tcp', host: '::1', port: 8000, family: 6 }],
    ['[::1]:5000', { kind: 'tcp', host: '::1', port: 5000, family: 6 }],
    ['[::1]', { kind: 'tcp', host: '::1', port: 8000, family: 6 }],
    ['[::]:65535', { kind: 'tcp', host: '::', port: 65535, family: 6 }],
    ['[FE80::1]:80', { kind: 'tcp', host: 'fe80::1', port: 80, family: 6 }],
    ['unix:/run/app.sock', { kind: 'unix', path: '/run/app.sock' }],
    ['unix:run/app.sock', { kind: 'unix', path: 'run/app.sock' }],
    ['unix://run/app.sock', { kind: 'unix', path: 'run/app.sock' }],
    ['unix:///run/app.sock', { kind: 'unix', path: '/run/app.sock' }],
    ['fd://33', { kind: 'fd', fd: 33 }],
    ['fd://3', { kind: 'fd', fd: 3 }],
  ])('%s', (input, expected) => {
    expect(parseAddress(input)).toEqual(expected);
  });

  it('uses the given default port', () => {
    expect(parseAddress('localhost', 3000)).toMatchObject({ port: 3000 });
  });

  it.each([
    ['', 'empty address'],
    ['   ', 'empty address'],
    ['localhost:http', "'http' is not a valid port number"],
    ['127.0.0.1:65536', "'65536' is not a valid port number"],
    ['127.0.0.1:-1', "'-1' is not a valid port number"],
    ['127.0.0.1:', "'' is not a valid port number"],
    ['127.0.0.1:80x', "'80x' is not a valid port number"],
    ['[::1', "unclosed '['"],
    ['[::1]8000', "unexpected '8000' after ']'"],
    ['[::1]:port', "'port' is not a valid port number"],
    ['[localhost]:80', "'localhost' is not an IPv6 address"],
    ['::1]:80', "']' without '['"],
    ['::1', 'IPv6 addresses must be in brackets'],
    ['fe80::1:8000', 'IPv6 addresses must be in brackets'],
    ['http://localhost:80', "unknown scheme 'http://'"],
    ['udp://1.2.3.4:5', "unknown scheme 'udp://'"],
    ['tcp://', 'no host after tcp://'],
    ['unix:', 'empty unix socket path'],
    ['unix://', 'empty unix socket path'],
    ['fd://', "'' is not a valid file descriptor"],
    ['fd://abc', "'abc' is not a valid file descriptor"],
    ['fd://-3', "'-3' is not a valid file descriptor"],
    ['bad host:80', "'bad host' is not a valid host name"],
    ['a..b:80', "'a..b' is not a valid host name"],
  ])('rejects %j', (input, reason) => {
    let error: unknown;
    try {
      parseAddress(input);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(AddressError);
    expect((error as AddressError).address).toBe(input);
    expect((error as AddressError).code).toBe('ERR_ARB_ADDRESS');
    expect((error as Error).message).toContain(reason);
    expect((error as Error).message).toContain(JSON.stringify(input));
  });

  it('formats every kind canonically', () => {
    for (const text of [
      '127.0.0.1:8000',
      '[::1]:80',
      'localhost:1',
      'unix:/a b/c.sock',
      'fd://4',
    ]) {
      expect(formatAddress(parseAddress(text))).toBe(text);
    }
    expect(formatAddress(parseAddress('tcp://[::1]'))).toBe('[::1]:8000');
  });
});
