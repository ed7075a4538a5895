export {
  DEFAULT_PORT,
  type FdAddress,
  formatAddress,
  type ParsedAddress,
  parseAddress,
  type TcpAddress,
  type UnixAddress,
} from './address.js';
export { type AdoptedListener, type AdoptOptions, adopt, listenOn } from './adopt.js';
export { type BindOptions, bind, DEFAULT_BACKLOG } from './bind.js';
export { type CloseOptions, claimSocketFile, closeListeners as close } from './close.js';
export { type CreateListenersOptions, createListeners, type MasterListeners } from './create.js';
export {
  AddressError,
  BindError,
  InheritError,
  ReusePortError,
  SocketInUseError,
  SocketPathError,
} from './errors.js';
export { type Handoff, type HandoffOptions, handoff, withListenPid } from './handoff.js';
export { type InheritOptions, inheritFd } from './inherit.js';
export {
  LineClientError,
  NoSocketError,
  type RequestLineOptions,
  requestLine,
  SocketBusyError,
} from './line-client.js';
export {
  jsonErrorLine,
  LineServer,
  type LineServerLimits,
  type LineServerLog,
  type LineServerOptions,
} from './line-server.js';
export type { Listener, ListenerOrigin } from './listener.js';
export { describeSocket, type SocketInfo } from './proc-net.js';
export { cpuPercent, type ProcStats, readProcStats } from './proc-stats.js';
export { assertReusePort, listenReusePort, reusePortSupported } from './reuse-port.js';
export {
  type ListenFdsOptions,
  listenFds,
  SD_LISTEN_FDS_START,
  type SystemdFds,
  systemdFds,
} from './systemd.js';
export {
  type ClaimedSocket,
  type ClaimOptions,
  claimSocketPath,
  isSocketLive,
  MAX_UNIX_PATH_BYTES,
  type SocketFileId,
  socketFileId,
  unlinkSocketIfOurs,
} from './unix.js';
export { lookupGroup, lookupUser, type UserEntry } from './users.js';
