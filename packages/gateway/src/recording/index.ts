export type { Protocol, Recorder, RecordFields, SessionInfo, SessionOutcome } from './recorder.js';
export { identityLabel, StoreRecorder } from './store-recorder.js';
