export { type LiveSession, SessionRegistry } from './session-registry.js';
