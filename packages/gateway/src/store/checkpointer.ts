import { Worker } from 'node:worker_threads';
import type { CheckpointReply, CheckpointWorkerInit } from './checkpoint-worker.js';

/**
 * Moves WAL checkpoints off the gateway's event loop. With synchronous=NORMAL the commit itself
 * no longer syncs (wal-sync.ts does, in the thread pool), but SQLite's automatic checkpoint
 * still ran inside a commit every 1000 pages, with two fsyncs (the WAL, then the database) on
 * the main thread. A worker thread with its own connection runs a passive checkpoint instead,
 * when `nudge()` asks; SQLite's automatic checkpoint stays on at a larger threshold as the
 * fallback (e.g. if the worker cannot start). What remains on the event loop is one header
 * sync each time the writer starts the WAL over after a completed checkpoint.
 */
export interface Checkpointer {
  /** Starts a passive checkpoint unless one is running (the worker starts on first use). */
  nudge(): void;
  /** Checkpoints run / failed so far (a failed one leaves the WAL as it was). */
  readonly stats: { checkpoints: number; failures: number };
  /** Lets a running checkpoint finish, then stops the worker. */
  close(): Promise<void>;
}

export function createCheckpointer(path: string): Checkpointer {
  let worker: Worker | undefined;
  let running = false;
  let disabled = false;
  const stats = { checkpoints: 0, failures: 0 };
  const start = (): Worker => {
    const init: CheckpointWorkerInit = { path };
    const w = new Worker(new URL('./checkpoint-worker.js', import.meta.url), { workerData: init });
    // Never the reason the process stays up; close() ends it on a normal shutdown.
    w.unref();
    w.on('message', (reply: CheckpointReply) => {
      running = false;
      if (reply.ok) stats.checkpoints++;
      else stats.failures++;
    });
    w.on('error', () => {
      // SQLite's own checkpoint (at the larger threshold) keeps the WAL bounded from here on.
      stats.failures++;
      disabled = true;
    });
    w.on('exit', () => {
      running = false;
      if (worker === w) worker = undefined;
    });
    return w;
  };
  return {
    stats,
    nudge() {
      if (disabled || running) return;
      worker ??= start();
      running = true;
      worker.postMessage('checkpoint');
    },
    async close() {
      disabled = true;
      const w = worker;
      worker = undefined;
      if (!w) return;
      const exited = new Promise<void>((resolve) => w.once('exit', () => resolve()));
      // Referenced again while we wait: an unreferenced worker would let the loop run empty.
      w.ref();
      w.postMessage('close');
      await exited;
    },
  };
}
