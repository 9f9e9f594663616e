export { peerAddress } from './peer-address.js';
export { type LiveSession, SessionRegistry } from './session-registry.js';
