export * from './tunnel/index.js';
