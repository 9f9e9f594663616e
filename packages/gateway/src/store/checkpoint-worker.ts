// Worker thread of the store's checkpointer (checkpointer.ts): its own connection to the
// database, on which it runs passive WAL checkpoints when asked. A checkpoint syncs the WAL,
// copies its pages into the database file and syncs that; here those two fsyncs wait on this
// thread instead of stalling the gateway's event loop inside a commit.
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

export interface CheckpointWorkerInit {
  path: string;
}

export type CheckpointReply = { ok: true; log: number; checkpointed: number } | { ok: false; code: string };

const init = workerData as CheckpointWorkerInit;
const db = new Database(init.path, { fileMustExist: true });
// Per connection: NORMAL makes the checkpoint sync the WAL before copying frames and the
// database after (https://www.sqlite.org/pragma.html#pragma_synchronous); OFF would not.
db.pragma('synchronous = NORMAL');

parentPort?.on('message', (message: 'checkpoint' | 'close') => {
  if (message === 'close') {
    db.close();
    parentPort?.close();
    return;
  }
  let reply: CheckpointReply;
  try {
    // PASSIVE: copies what it can without waiting for (or blocking) the writer or readers.
    const [row] = db.pragma('wal_checkpoint(PASSIVE)') as Array<{ busy: number; log: number; checkpointed: number }>;
    reply = { ok: true, log: row?.log ?? 0, checkpointed: row?.checkpointed ?? 0 };
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    reply = { ok: false, code: typeof code === 'string' ? code : 'unknown' };
  }
  parentPort?.postMessage(reply);
});
