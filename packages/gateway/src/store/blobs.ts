import { createHash } from 'node:crypto';
import { WardError } from '@ward/protocol';
import type Database from 'better-sqlite3';
import type { AuditLog, RecordHook } from '../audit/audit-log.js';

/**
 * Bytes hashed and checked but not yet written: the audit record that names them writes them
 * in its own batch transaction (`BlobStore.hook`). Holds the caller's bytes, not a copy.
 */
export interface StagedBlob {
  readonly sha256: string;
  readonly bytes: Uint8Array;
}

/** Content-addressed bytes (recorded bodies, transcripts): an audit record names them by hash. */
export interface BlobStore {
  /**
   * Stores the bytes (once per content) and returns their hex SHA-256, in a transaction of its
   * own. They are durable once an audit append made after this call has resolved (the WAL is
   * synced and replayed as a prefix). A failed write (full disk, I/O error) turns the audit log
   * unhealthy, as a failed append does, and throws ERR_AUDIT_UNAVAILABLE; so does every put
   * after that, until the store is reopened. Records should rather `stage` their blobs.
   */
  put(bytes: Uint8Array): string;
  /**
   * Checks and hashes the bytes without writing them: throws ERR_STORE_BLOB_TOO_LARGE, or what
   * an append would be refused with (closed, read-only, unhealthy). The returned blob is written
   * by `hook`, inside the batch transaction of the record that names it.
   */
  stage(bytes: Uint8Array): StagedBlob;
  /**
   * The RecordHook that writes staged blobs with the record (once per content: a blob already
   * stored, or staged twice, is written once). A failed write fails the record's batch, which
   * turns the audit log unhealthy; the record and its blobs commit together or not at all.
   */
  hook(blobs: readonly StagedBlob[]): RecordHook;
  get(sha256: string): Buffer | undefined;
  has(sha256: string): boolean;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

export function createBlobStore(db: Database.Database, maxBytes: number, audit: AuditLog): BlobStore {
  const insert = db.prepare('INSERT OR IGNORE INTO blobs (sha256, size, bytes, created_at) VALUES (?, ?, ?, ?)');
  const select = db.prepare<[string], { bytes: Buffer }>('SELECT bytes FROM blobs WHERE sha256 = ?');
  const exists = db.prepare<[string], { one: number }>('SELECT 1 AS one FROM blobs WHERE sha256 = ?');
  const stage = (bytes: Uint8Array): StagedBlob => {
    if (bytes.byteLength > maxBytes) {
      throw new WardError(
        'ERR_STORE_BLOB_TOO_LARGE',
        'resource_exhausted',
        `blob of ${bytes.byteLength} bytes exceeds the store's limit of ${maxBytes}; record it in parts`,
      );
    }
    audit.assertWritable();
    return { sha256: createHash('sha256').update(bytes).digest('hex'), bytes };
  };
  // A view over the caller's bytes, not a copy (better-sqlite3 binds Buffers only).
  const write = (blob: StagedBlob, createdAt: string) =>
    insert.run(
      blob.sha256,
      blob.bytes.byteLength,
      Buffer.from(blob.bytes.buffer, blob.bytes.byteOffset, blob.bytes.byteLength),
      createdAt,
    );
  return {
    put(bytes) {
      const blob = stage(bytes);
      try {
        write(blob, new Date().toISOString());
      } catch (err) {
        // The bytes an audit record will name are not stored: the evidence would be incomplete.
        throw audit.writeFailed(err);
      }
      return blob.sha256;
    },
    stage,
    hook(blobs) {
      return (record) => {
        for (let i = 0; i < blobs.length; i++) {
          const blob = blobs[i]!;
          let seen = false;
          for (let j = 0; j < i && !seen; j++) seen = blobs[j]!.sha256 === blob.sha256;
          // INSERT OR IGNORE keeps one row per content across records; this skips rebinding
          // the same bytes twice within one (a request echoed as its response).
          if (!seen) write(blob, record.ts);
        }
      };
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
