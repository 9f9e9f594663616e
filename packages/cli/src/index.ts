export { replayAsciicast } from './commands/replay.js';
export { configDir, credentialsPath, loadCredentials, saveCredentials } from './credentials.js';
export { firstScreen, type RunningDemo, startDemo } from './demo/run-demo.js';
export { createProgram, main, VERSION } from './program.js';
