export { type AgentConnection, type AgentOptions, type RunningAgent, startAgent } from './agent.js';
export * from './config/index.js';
export * from './http/index.js';
export * from './postgres/index.js';
export * from './ssh/index.js';
export * from './tunnel/index.js';
