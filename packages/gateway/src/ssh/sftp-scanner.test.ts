import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { MAX_SFTP_PACKET, type SftpEvent, SftpScanner } from './sftp-scanner.js';

// A tiny SFTP v3 message builder (draft-ietf-secsh-filexfer-02).
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const u64 = (n: number) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
};
const str = (s: string | Buffer) => {
  const b = typeof s === 'string' ? Buffer.from(s) : s;
  return Buffer.concat([u32(b.length), b]);
};
const packet = (type: number, ...parts: Buffer[]) => {
  const body = Buffer.concat([Buffer.from([type]), ...parts]);
  return Buffer.concat([u32(body.length), body]);
};
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

const H = Buffer.from([0, 1, 2, 3]);
const part1 = Buffer.from('hello ');
const part2 = Buffer.from('world');

// In wire order: the client writes only once the server has answered its OPEN with a handle.
const steps: Array<['client' | 'server', Buffer]> = [
  ['client', packet(1, u32(3))], // INIT
  ['server', packet(2, u32(3))], // VERSION
  ['client', packet(3, u32(1), str('/srv/up.txt'), u32(0x1a), u32(0))], // OPEN write|creat|trunc
  ['server', packet(102, u32(1), str(H))], // HANDLE
  [
    'client',
    Buffer.concat([
      packet(6, u32(2), str(H), u64(0), str(part1)), // WRITE
      packet(6, u32(3), str(H), u64(6), str(part2)),
      packet(4, u32(4), str(H)), // CLOSE
      packet(13, u32(5), str('/srv/old.txt')), // REMOVE
      packet(200, u32(6), str('posix-rename@openssh.com'), str('/srv/a'), str('/srv/b')),
      packet(3, u32(7), str('/srv/missing'), u32(1), u32(0)), // OPEN read, fails
    ]),
  ],
  [
    'server',
    Buffer.concat([
      packet(101, u32(2), u32(0), str(''), str('')),
      packet(101, u32(3), u32(0), str(''), str('')),
      packet(101, u32(4), u32(0), str(''), str('')),
      packet(101, u32(5), u32(0), str(''), str('')),
      packet(101, u32(6), u32(0), str(''), str('')),
      packet(101, u32(7), u32(2), str('No such file'), str('')),
    ]),
  ],
];
const longest = Math.max(...steps.map(([, b]) => b.length));

const expected: SftpEvent[] = [
  {
    op: 'file',
    path: '/srv/up.txt',
    pflags: 0x1a,
    bytesWritten: 11,
    bytesRead: 0,
    sha256Written: sha(Buffer.from('hello world')),
    sha256Read: null,
    sequential: true,
    status: 0,
  },
  { op: 'remove', path: '/srv/old.txt', status: 0 },
  { op: 'rename', path: '/srv/a', to: '/srv/b', status: 0 },
  { op: 'open-failed', path: '/srv/missing', pflags: 1, status: 2 },
];

test('SFTP scanner: file writes with their SHA-256, removal, rename, failed open — split at every offset', () => {
  for (let cut = 0; cut <= longest; cut++) {
    const events: SftpEvent[] = [];
    const s = new SftpScanner((e) => events.push(e));
    for (const [side, bytes] of steps) {
      const at = Math.min(cut, bytes.length);
      s[side](bytes.subarray(0, at));
      s[side](bytes.subarray(at));
    }
    s.end();
    assert.deepEqual(events, expected, `cut ${cut}`);
    assert.equal(s.abandoned, undefined);
  }
});

test('SFTP scanner: reads hashed, open handles reported at the end, oversized packets stop the scan', () => {
  const events: SftpEvent[] = [];
  const s = new SftpScanner((e) => events.push(e));
  s.client(packet(3, u32(1), str('/etc/hosts'), u32(1), u32(0)));
  s.server(packet(102, u32(1), str(H)));
  s.client(packet(5, u32(2), str(H), u64(0), u32(100)));
  s.server(packet(103, u32(2), str(part1)));
  s.end();
  assert.equal(events.length, 1);
  assert.deepEqual(events[0], {
    op: 'file',
    path: '/etc/hosts',
    pflags: 1,
    bytesWritten: 0,
    bytesRead: 6,
    sha256Written: null,
    sha256Read: sha(part1),
    sequential: true,
    status: 'unclosed',
  });

  const big = new SftpScanner(() => assert.fail('no events after abandoning'));
  big.client(u32(MAX_SFTP_PACKET + 1));
  assert.match(big.abandoned ?? '', /length/);
  big.client(packet(13, u32(5), str('/x')));
  big.server(packet(101, u32(5), u32(0), str(''), str('')));
});
