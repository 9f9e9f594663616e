import { createHash, type Hash } from 'node:crypto';

/** One finished file operation seen in an SFTP session (recorded as `ssh.sftp`). */
export type SftpEvent =
  | {
      op: 'file';
      path: string;
      /** SSH_FXF_* open flags: 1 read, 2 write, 4 append, 8 creat, 16 trunc, 32 excl. */
      pflags: number;
      bytesWritten: number;
      bytesRead: number;
      /** SHA-256 (hex) of the bytes written / read through the handle, in the order they passed. */
      sha256Written: string | null;
      sha256Read: string | null;
      /** False when writes or reads were not at consecutive offsets (the hash is then of the stream, not the file). */
      sequential: boolean;
      /** SSH_FX_* status of the CLOSE, or `unclosed` when the session ended first. */
      status: number | 'unclosed';
    }
  | { op: 'open-failed'; path: string; pflags: number; status: number }
  | { op: 'remove' | 'mkdir' | 'rmdir' | 'opendir'; path: string; status: number }
  | { op: 'rename'; path: string; to: string; status: number };

/** Largest SFTP packet examined: sftp-server's own limit is 256 KiB (SFTP_MAX_MSG_LENGTH). */
export const MAX_SFTP_PACKET = 512 * 1024;

// draft-ietf-secsh-filexfer-02 §3 (the version OpenSSH speaks, 3).
enum Fxp {
  OPEN = 3,
  CLOSE = 4,
  READ = 5,
  WRITE = 6,
  OPENDIR = 11,
  REMOVE = 13,
  MKDIR = 14,
  RMDIR = 15,
  RENAME = 18,
  EXTENDED = 200,
  STATUS = 101,
  HANDLE = 102,
  DATA = 103,
}

interface OpenFile {
  path: string;
  pflags: number;
  bytesWritten: number;
  bytesRead: number;
  written: Hash;
  read: Hash;
  nextWrite: bigint;
  nextRead: bigint;
  sequential: boolean;
}

type Pending =
  | { kind: 'open'; path: string; pflags: number }
  | { kind: 'close'; handle: string }
  | { kind: 'read'; handle: string }
  | { kind: 'path'; op: 'remove' | 'mkdir' | 'rmdir' | 'opendir'; path: string }
  | { kind: 'rename'; path: string; to: string };

/** Reads SSH strings and integers from one packet; every read is bounds-checked. */
class Reader {
  #p = 0;
  constructor(readonly buf: Buffer) {}
  u8(): number {
    if (this.#p + 1 > this.buf.length) throw new RangeError('short packet');
    return this.buf[this.#p++] as number;
  }
  u32(): number {
    if (this.#p + 4 > this.buf.length) throw new RangeError('short packet');
    const v = this.buf.readUInt32BE(this.#p);
    this.#p += 4;
    return v;
  }
  u64(): bigint {
    if (this.#p + 8 > this.buf.length) throw new RangeError('short packet');
    const v = this.buf.readBigUInt64BE(this.#p);
    this.#p += 8;
    return v;
  }
  bytes(): Buffer {
    const n = this.u32();
    if (this.#p + n > this.buf.length) throw new RangeError('short packet');
    const v = this.buf.subarray(this.#p, this.#p + n);
    this.#p += n;
    return v;
  }
  text(): string {
    return this.bytes().toString('utf8');
  }
}

/** Splits a byte stream into SFTP packets (uint32 length + body), keeping the remainder. */
class Framer {
  #parts: Buffer[] = [];
  #bytes = 0;
  push(chunk: Buffer): Buffer[] {
    this.#parts.push(chunk);
    this.#bytes += chunk.length;
    const out: Buffer[] = [];
    let buf = this.#parts.length === 1 ? (this.#parts[0] as Buffer) : Buffer.concat(this.#parts, this.#bytes);
    while (buf.length >= 4) {
      const len = buf.readUInt32BE(0);
      // Checked before anything is kept for it (STYLE: length prefixes against a maximum first).
      if (len > MAX_SFTP_PACKET || len === 0) throw new RangeError(`SFTP packet length ${len}`);
      if (buf.length < 4 + len) break;
      out.push(buf.subarray(4, 4 + len));
      buf = buf.subarray(4 + len);
    }
    this.#parts = buf.length > 0 ? [Buffer.from(buf)] : [];
    this.#bytes = buf.length;
    return out;
  }
}

/**
 * Watches the SFTP packets of one session in both directions (I/O-free: the session feeds it
 * the bytes it relays) and reports file operations: which path was opened, how many bytes
 * were written and read through each handle with their SHA-256, removals, renames, directory
 * changes. It never changes a byte. On anything it cannot parse it stops watching
 * (`abandoned`), the bytes still flow, and the session records that it did.
 */
export class SftpScanner {
  readonly #fromClient = new Framer();
  readonly #fromServer = new Framer();
  readonly #pending = new Map<number, Pending>();
  readonly #files = new Map<string, OpenFile>();
  readonly #emit: (event: SftpEvent) => void;
  #abandoned: string | undefined;

  constructor(emit: (event: SftpEvent) => void) {
    this.#emit = emit;
  }

  /** Why scanning stopped, or undefined while it runs. */
  get abandoned(): string | undefined {
    return this.#abandoned;
  }

  client(chunk: Buffer): void {
    this.#guard(() => {
      for (const packet of this.#fromClient.push(chunk)) this.#onClient(new Reader(packet));
    });
  }

  server(chunk: Buffer): void {
    this.#guard(() => {
      for (const packet of this.#fromServer.push(chunk)) this.#onServer(new Reader(packet));
    });
  }

  /** Reports handles still open when the session ends. */
  end(): void {
    for (const file of this.#files.values()) this.#emitFile(file, 'unclosed');
    this.#files.clear();
    this.#pending.clear();
  }

  #guard(run: () => void): void {
    if (this.#abandoned) return;
    try {
      run();
    } catch (err) {
      this.#abandoned = err instanceof Error ? err.message : String(err);
      this.#pending.clear();
    }
  }

  #onClient(r: Reader): void {
    const type = r.u8();
    if (type === 1) return; // SSH_FXP_INIT carries a version, no id.
    const id = r.u32();
    switch (type) {
      case Fxp.OPEN: {
        const path = r.text();
        this.#pending.set(id, { kind: 'open', path, pflags: r.u32() });
        return;
      }
      case Fxp.CLOSE:
        this.#pending.set(id, { kind: 'close', handle: r.bytes().toString('hex') });
        return;
      case Fxp.READ: {
        const handle = r.bytes().toString('hex');
        const offset = r.u64();
        const file = this.#files.get(handle);
        if (file && offset !== file.nextRead) file.sequential = false;
        this.#pending.set(id, { kind: 'read', handle });
        if (file) file.nextRead = offset + BigInt(r.u32());
        return;
      }
      case Fxp.WRITE: {
        const handle = r.bytes().toString('hex');
        const offset = r.u64();
        const data = r.bytes();
        const file = this.#files.get(handle);
        if (!file) return;
        if (offset !== file.nextWrite) file.sequential = false;
        file.nextWrite = offset + BigInt(data.length);
        file.bytesWritten += data.length;
        file.written.update(data);
        return;
      }
      case Fxp.OPENDIR:
        this.#pending.set(id, { kind: 'path', op: 'opendir', path: r.text() });
        return;
      case Fxp.REMOVE:
        this.#pending.set(id, { kind: 'path', op: 'remove', path: r.text() });
        return;
      case Fxp.MKDIR:
        this.#pending.set(id, { kind: 'path', op: 'mkdir', path: r.text() });
        return;
      case Fxp.RMDIR:
        this.#pending.set(id, { kind: 'path', op: 'rmdir', path: r.text() });
        return;
      case Fxp.RENAME: {
        const path = r.text();
        this.#pending.set(id, { kind: 'rename', path, to: r.text() });
        return;
      }
      case Fxp.EXTENDED: {
        // OpenSSH's sftp renames with this extension when the server offers it (PROTOCOL §4.3).
        if (r.text() !== 'posix-rename@openssh.com') return;
        const path = r.text();
        this.#pending.set(id, { kind: 'rename', path, to: r.text() });
        return;
      }
      default:
        return;
    }
  }

  #onServer(r: Reader): void {
    const type = r.u8();
    if (type === 2) return; // SSH_FXP_VERSION
    const id = r.u32();
    const pending = this.#pending.get(id);
    if (!pending) return;
    // READ answers DATA per request; only the pending id's own answer clears it.
    this.#pending.delete(id);
    switch (type) {
      case Fxp.HANDLE: {
        const handle = r.bytes().toString('hex');
        if (pending.kind === 'open') {
          this.#files.set(handle, {
            path: pending.path,
            pflags: pending.pflags,
            bytesWritten: 0,
            bytesRead: 0,
            written: createHash('sha256'),
            read: createHash('sha256'),
            nextWrite: 0n,
            nextRead: 0n,
            sequential: true,
          });
        } else if (pending.kind === 'path') {
          this.#emit({ op: pending.op, path: pending.path, status: 0 });
        }
        return;
      }
      case Fxp.DATA: {
        if (pending.kind !== 'read') return;
        const file = this.#files.get(pending.handle);
        const data = r.bytes();
        if (!file) return;
        file.bytesRead += data.length;
        file.read.update(data);
        return;
      }
      case Fxp.STATUS: {
        const status = r.u32();
        switch (pending.kind) {
          case 'open':
            this.#emit({ op: 'open-failed', path: pending.path, pflags: pending.pflags, status });
            return;
          case 'close': {
            const file = this.#files.get(pending.handle);
            if (!file) return;
            this.#files.delete(pending.handle);
            this.#emitFile(file, status);
            return;
          }
          case 'path':
            this.#emit({ op: pending.op, path: pending.path, status });
            return;
          case 'rename':
            this.#emit({ op: 'rename', path: pending.path, to: pending.to, status });
            return;
          default:
            return; // a READ at end of file answers STATUS EOF
        }
      }
      default:
        return;
    }
  }

  #emitFile(file: OpenFile, status: number | 'unclosed'): void {
    this.#emit({
      op: 'file',
      path: file.path,
      pflags: file.pflags,
      bytesWritten: file.bytesWritten,
      bytesRead: file.bytesRead,
      sha256Written: file.bytesWritten > 0 ? file.written.digest('hex') : null,
      sha256Read: file.bytesRead > 0 ? file.read.digest('hex') : null,
      sequential: file.sequential,
      status,
    });
  }
}
