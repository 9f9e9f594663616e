import { closeSync, fdatasync, openSync } from 'node:fs';

/**
 * Durability for a store whose connection runs WAL with synchronous=NORMAL: an fdatasync of the
 * `-wal` file on an fd of our own, run in libuv's thread pool so the event loop keeps relaying
 * while the disk flushes.
 *
 * Why this is enough (https://www.sqlite.org/pragma.html#pragma_synchronous, /wal.html):
 * - A commit in WAL mode appends the transaction's frames, the last one marked as a commit,
 *   to the `-wal` file. NORMAL skips only the sync after that append. fsync/fdatasync act on
 *   the file (the inode), not on the descriptor, so our fdatasync flushes every frame written
 *   before it began, whichever descriptor wrote them. Recovery replays the WAL's valid prefix
 *   (frame checksums chain from the header), so a synced commit survives power loss, and a
 *   later, unsynced one can be lost only together with everything after it.
 * - Checkpoints stay safe without us: with NORMAL "the WAL file is synchronized before each
 *   checkpoint and the database file is synchronized after each completed checkpoint and the
 *   WAL file header is synchronized when a WAL file begins to be reused after a checkpoint"
 *   (pragma docs). Frames are copied into the database only once they are on disk, and the WAL
 *   is rewritten from its start only once the database holds them.
 * - The `-wal` file keeps its inode while the store is open: SQLite deletes it only when the
 *   last connection closes (ours is open until after the last sync), and truncation by
 *   journal_size_limit keeps the inode.
 */
export interface WalSync {
  /** Resolves once everything written to the WAL before the call is on disk. */
  sync(): Promise<void>;
  close(): void;
}

export function openWalSync(databasePath: string): WalSync {
  // The connection has read the database by now (migrations, meta), which creates the file.
  const fd = openSync(`${databasePath}-wal`, 'r');
  let closed = false;
  return {
    sync() {
      if (closed) return Promise.reject(new Error('the WAL file is closed'));
      return new Promise<void>((resolve, reject) => fdatasync(fd, (err) => (err ? reject(err) : resolve())));
    },
    close() {
      if (closed) return;
      closed = true;
      closeSync(fd);
    },
  };
}
