import { createHash } from 'node:crypto';
import { WardError } from '@ward/protocol';
import type Database from 'better-sqlite3';
import type { AuditLog } from '../audit/audit-log.js';

/** Content-addressed bytes (recorded bodies, transcripts): an audit record names them by hash. */
export interface BlobStore {
  /**
   * Stores the bytes (once per content) and returns their hex SHA-256. They are durable once
   * an audit append made after this call has resolved (the WAL is synced and replayed as a
   * prefix), which is when the record naming them is. A failed write
   * (full disk, I/O error) turns the audit log unhealthy, as a failed append does, and throws
   * ERR_AUDIT_UNAVAILABLE; so does every put after that, until the store is reopened.
   */
  put(bytes: Uint8Array): string;
  get(sha256: string): Buffer | undefined;
  has(sha256: string): boolean;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

export function createBlobStore(db: Database.Database, maxBytes: number, audit: AuditLog): BlobStore {
  const insert = db.prepare('INSERT OR IGNORE INTO blobs (sha256, size, bytes, created_at) VALUES (?, ?, ?, ?)');
  const select = db.prepare<[string], { bytes: Buffer }>('SELECT bytes FROM blobs WHERE sha256 = ?');
  const exists = db.prepare<[string], { one: number }>('SELECT 1 AS one FROM blobs WHERE sha256 = ?');
  return {
    put(bytes) {
      if (bytes.byteLength > maxBytes) {
        throw new WardError(
          'ERR_STORE_BLOB_TOO_LARGE',
          'resource_exhausted',
          `blob of ${bytes.byteLength} bytes exceeds the store's limit of ${maxBytes}; record it in parts`,
        );
      }
      audit.assertWritable();
      const sha = createHash('sha256').update(bytes).digest('hex');
      try {
        insert.run(
          sha,
          bytes.byteLength,
          Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
          new Date().toISOString(),
        );
      } catch (err) {
        // The bytes an audit record will name are not stored: the evidence would be incomplete.
        throw audit.writeFailed(err);
      }
      return sha;
    },
    get(sha256) {
      if (!SHA256_HEX.test(sha256)) return undefined;
      return select.get(sha256)?.bytes;
    },
    has(sha256) {
      return SHA256_HEX.test(sha256) && exists.get(sha256) !== undefined;
    },
  };
}
