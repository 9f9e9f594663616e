export * from './http/index.js';
export * from './tunnel/index.js';
