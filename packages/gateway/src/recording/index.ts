export type { Protocol, Recorder, RecordFields, SessionInfo, SessionOutcome } from './recorder.js';
