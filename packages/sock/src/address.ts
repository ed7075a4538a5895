import { isIPv4, isIPv6 } from 'node:net';
import { AddressError } from './errors.js';

/** The port used when an address names a host but no port, as in gunicorn. */
export const DEFAULT_PORT = 8000;

/** A TCP address; `family` is 0 for a hostname, which is resolved when binding. */
export interface TcpAddress {
  readonly kind: 'tcp';
  readonly host: string;
  readonly port: number;
  readonly family: 0 | 4 | 6;
}

/** A unix socket path as configured (relative paths are resolved when binding). */
export interface UnixAddress {
  readonly kind: 'unix';
  readonly path: string;
}

/** A descriptor this process inherited, already bound (systemd, einhorn, a parent). */
export interface FdAddress {
  readonly kind: 'fd';
  readonly fd: number;
}

export type ParsedAddress = TcpAddress | UnixAddress | FdAddress;

const SCHEME = /^([a-z][a-z0-9+.-]*):\/\//i;
const HOSTNAME = /^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*\.?$/;

/**
 * Parses a bind address: `host:port`, `:port` (all IPv4 interfaces), `[v6]:port`, `[v6]`,
 * `host` (port 8000), `tcp://…`, `unix:PATH` or `unix://PATH`, `fd://N`.
 * Throws {@link AddressError} naming the input for anything else.
 */
export function parseAddress(input: string, defaultPort: number = DEFAULT_PORT): ParsedAddress {
  if (typeof input !== 'string') throw new AddressError(String(input), 'not a string');
  const text = input.trim();
  if (text === '') throw new AddressError(input, 'empty address');

  if (text.startsWith('unix:')) {
    const path = text.startsWith('unix://') ? text.slice(7) : text.slice(5);
    if (path === '') throw new AddressError(input, 'empty unix socket path');
    if (path.includes('\0')) throw new AddressError(input, 'NUL byte in unix socket path');
    return { kind: 'unix', path };
  }

  if (text.startsWith('fd://')) {
    const n = text.slice(5);
    if (!/^\d+$/.test(n) || Number(n) > 2 ** 31 - 1) {
      throw new AddressError(input, `'${n}' is not a valid file descriptor`);
    }
    return { kind: 'fd', fd: Number(n) };
  }

  let rest = text;
  const scheme = SCHEME.exec(rest);
  if (scheme) {
    if (scheme[1]!.toLowerCase() !== 'tcp') {
      throw new AddressError(
        input,
        `unknown scheme '${scheme[1]}://' (use tcp://, unix: or fd://)`,
      );
    }
    rest = rest.slice(scheme[0].length);
    if (rest === '') throw new AddressError(input, 'no host after tcp://');
  }

  let host: string;
  let portText: string | undefined;
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close === -1) throw new AddressError(input, "unclosed '[' in IPv6 address");
    host = rest.slice(1, close);
    const after = rest.slice(close + 1);
    if (after !== '') {
      if (!after.startsWith(':')) throw new AddressError(input, `unexpected '${after}' after ']'`);
      portText = after.slice(1);
    }
    if (!isIPv6(host)) throw new AddressError(input, `'${host}' is not an IPv6 address`);
  } else if (rest.includes(']')) {
    throw new AddressError(input, "']' without '['");
  } else if (rest.includes(':')) {
    const parts = rest.split(':');
    if (parts.length > 2) {
      throw new AddressError(input, 'IPv6 addresses must be in brackets, as in [::1]:8000');
    }
    host = parts[0] === '' ? '0.0.0.0' : parts[0]!;
    portText = parts[1]!;
  } else {
    host = rest;
  }

  host = host.toLowerCase();
  const port = portText === undefined ? defaultPort : parsePort(input, portText);
  if (isIPv4(host)) return { kind: 'tcp', host, port, family: 4 };
  if (isIPv6(host)) return { kind: 'tcp', host, port, family: 6 };
  if (!HOSTNAME.test(host) || host.length > 253) {
    throw new AddressError(input, `'${host}' is not a valid host name or IP address`);
  }
  return { kind: 'tcp', host, port, family: 0 };
}

function parsePort(input: string, text: string): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) > 65535) {
    throw new AddressError(input, `'${text}' is not a valid port number (0-65535)`);
  }
  return Number(text);
}

/** The canonical text of an address: `host:port`, `[v6]:port`, `unix:PATH` or `fd://N`. */
export function formatAddress(address: ParsedAddress): string {
  switch (address.kind) {
    case 'tcp':
      return address.family === 6
        ? `[${address.host}]:${address.port}`
        : `${address.host}:${address.port}`;
    case 'unix':
      return `unix:${address.path}`;
    case 'fd':
      return `fd://${address.fd}`;
  }
}
