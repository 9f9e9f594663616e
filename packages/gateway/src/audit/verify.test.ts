import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, type TestContext, test } from 'node:test';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { tempStore } from '../store/test-support.js';
import { canonicalJson, checkpointPayload, recordHash } from './canonical.js';
import { exportAuditLog } from './export.js';
import { publicKeyId } from './signing-key.js';
import type { VerifyFailureCode } from './types.js';
import { verifyAuditExport, verifyStore } from './verify.js';

type Line = Record<string, unknown>;

/** A store with `n` records, each awaited alone so every record has its own checkpoint. */
async function storeWithRecords(t: TestContext, n: number) {
  const ts = tempStore(t);
  for (let i = 1; i <= n; i++) {
    await ts.store.audit.append({
      kind: i % 3 ? 'pg.query' : 'http.exchange',
      sessionId: `s-${i % 2}`,
      identity: 'user:alice',
      decision: i % 4 ? 'allow' : 'deny',
      data: { i, sql: `SELECT ${i}`, nested: { list: [i, 'x'] } },
    });
  }
  return ts;
}

async function exportLines(t: TestContext, n: number) {
  const ts = await storeWithRecords(t, n);
  const path = join(ts.dir, 'export.jsonl');
  const result = await exportAuditLog(ts.store, path);
  const text = readFileSync(path, 'utf8');
  assert.ok(text.endsWith('\n'));
  const lines = text.slice(0, -1).split('\n');
  return { ...ts, path, result, lines, publicKeyPem: ts.store.audit.publicKeyPem };
}

/** Export layout for a one-checkpoint-per-record log: header, then (record k, checkpoint k)… */
const recordLine = (seq: number) => 2 * seq - 1; // 0-based index into lines
const parse = (l: string) => JSON.parse(l) as Line;

async function expectBad(
  lines: string[],
  publicKeyPem: string | undefined,
  want: { seq: number; code: VerifyFailureCode; line?: number },
) {
  const result = await verifyAuditExport(lines, { publicKeyPem });
  assert.equal(result.ok, false, 'tampering went undetected');
  assert.equal(result.firstBad?.code, want.code, result.firstBad?.reason);
  assert.equal(result.firstBad?.seq, want.seq, result.firstBad?.reason);
  if (want.line !== undefined) assert.equal(result.firstBad?.line, want.line);
  return result;
}

/** Recomputes the chain from `fromSeq` on, as an attacker without the key would. */
function rehash(lines: string[], fromSeq: number): string[] {
  const out = [...lines];
  let prev = out.map(parse).find((o) => o['type'] === 'record' && o['seq'] === fromSeq - 1)?.['hash'] as
    | string
    | undefined;
  for (let i = 0; i < out.length; i++) {
    const o = parse(out[i]!);
    if (o['type'] !== 'record' || (o['seq'] as number) < fromSeq) continue;
    if (prev !== undefined) o['prev_hash'] = prev;
    o['hash'] = recordHash(o as never, canonicalJson(o['data']));
    prev = o['hash'] as string;
    out[i] = JSON.stringify(o);
  }
  return out;
}

/** Re-signs checkpoints with seq >= fromSeq (and the final one) with another key. */
function resign(lines: string[], fromSeq: number, key: KeyObject, keyId: string, gatewayId: string): string[] {
  const hashes = new Map<number, string>();
  let prevSeq = 0;
  return lines.map((l) => {
    const o = parse(l);
    if (o['type'] === 'record') hashes.set(o['seq'] as number, o['hash'] as string);
    if (o['type'] !== 'checkpoint' && o['type'] !== 'final') return l;
    const cpPrev = prevSeq;
    prevSeq = o['seq'] as number;
    if ((o['seq'] as number) < fromSeq) return l;
    o['hash'] = hashes.get(o['seq'] as number);
    o['key_id'] = keyId;
    const payload = checkpointPayload({
      seq: o['seq'] as number,
      hash: o['hash'] as string,
      ts: o['ts'] as string,
      gatewayId,
      prevSeq: cpPrev,
      final: o['type'] === 'final',
    });
    o['signature'] = sign(null, payload, key).toString('base64');
    return JSON.stringify(o);
  });
}

describe('export and offline verify', () => {
  test('round trip: a fresh export verifies, with the header key and with the trusted key', async (t) => {
    const { lines, path, result, publicKeyPem, store } = await exportLines(t, 10);
    assert.deepEqual(result, { records: 10, checkpoints: 10, lastSeq: 10, lastHash: store.audit.head().hash });
    assert.equal(lines.length, 1 + 10 * 2 + 1);
    assert.equal(parse(lines[0]!)['type'], 'header');
    assert.equal(parse(lines.at(-1)!)['type'], 'final');
    const expected = { ok: true, records: 10, checkpoints: 11, keyId: store.audit.keyId };
    assert.deepEqual(await verifyAuditExport(path, { publicKeyPem }), expected);
    assert.deepEqual(await verifyAuditExport(path), expected);
    assert.deepEqual(await verifyAuditExport(lines), expected);
  });

  test('an empty log exports a header and a final checkpoint over seq 0, which verifies', async (t) => {
    const { store } = tempStore(t);
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on('data', (c: Buffer) => chunks.push(c));
    assert.deepEqual((await exportAuditLog(store, out)).records, 0);
    const lines = Buffer.concat(chunks).toString('utf8').trimEnd().split('\n');
    assert.equal(lines.length, 2);
    assert.deepEqual(await verifyAuditExport(lines, { publicKeyPem: store.audit.publicKeyPem }), {
      ok: true,
      records: 0,
      checkpoints: 1,
      keyId: store.audit.keyId,
    });
  });

  test('batched checkpoints: the export interleaves each checkpoint after its record', async (t) => {
    const { store, dir } = tempStore(t);
    await Promise.all(Array.from({ length: 300 }, (_, i) => store.audit.append({ kind: 'k', data: { i } })));
    await Promise.all(Array.from({ length: 5 }, (_, i) => store.audit.append({ kind: 'k', data: { i } })));
    const path = join(dir, 'e.jsonl');
    // Smaller pages than the log, so the export's paging is exercised.
    const res = await exportAuditLog(store, path);
    assert.deepEqual([res.records, res.checkpoints], [305, 2]);
    const verdict = await verifyAuditExport(path, { publicKeyPem: store.audit.publicKeyPem });
    assert.deepEqual([verdict.ok, verdict.records, verdict.checkpoints], [true, 305, 3]);
  });

  test('an edited field is named at its record', async (t) => {
    const { lines, publicKeyPem } = await exportLines(t, 10);
    for (const [field, value] of [
      ['data', { i: 5, sql: 'SELECT 5; DROP TABLE users', nested: { list: [5, 'x'] } }],
      ['identity', 'user:mallory'],
      ['decision', 'deny'],
      ['ts', '2020-01-01T00:00:00.000Z'],
    ] as const) {
      const edited = [...lines];
      const o = parse(edited[recordLine(5)]!);
      o[field] = value;
      edited[recordLine(5)] = JSON.stringify(o);
      await expectBad(edited, publicKeyPem, { seq: 5, code: 'hash_mismatch', line: recordLine(5) + 1 });
    }
  });

  test('a deleted record is named by its seq (alone, or with its checkpoint)', async (t) => {
    const { lines, publicKeyPem } = await exportLines(t, 10);
    const withoutBoth = lines.filter((_, i) => i !== recordLine(4) && i !== recordLine(4) + 1);
    await expectBad(withoutBoth, publicKeyPem, { seq: 4, code: 'seq_mismatch' });
    const withoutRecord = lines.filter((_, i) => i !== recordLine(4));
    await expectBad(withoutRecord, publicKeyPem, { seq: 4, code: 'seq_mismatch' });
    // Renumbering the rest to hide the gap breaks the chain link instead.
    const renumbered = withoutBoth.map((l) => {
      const o = parse(l);
      if ((o['type'] === 'record' || o['type'] === 'checkpoint') && (o['seq'] as number) > 4) {
        o['seq'] = (o['seq'] as number) - 1;
      }
      return JSON.stringify(o);
    });
    await expectBad(renumbered, publicKeyPem, { seq: 4, code: 'prev_hash_mismatch' });
  });

  test('two swapped records are named at the first position out of order', async (t) => {
    const { lines, publicKeyPem } = await exportLines(t, 10);
    const swapped = [...lines];
    [swapped[recordLine(3)], swapped[recordLine(6)]] = [swapped[recordLine(6)]!, swapped[recordLine(3)]!];
    await expectBad(swapped, publicKeyPem, { seq: 3, code: 'seq_mismatch', line: recordLine(3) + 1 });
    const withCheckpoints = [...lines];
    // Swap whole (record, checkpoint) pairs 7 and 8.
    withCheckpoints.splice(
      recordLine(7),
      4,
      ...lines.slice(recordLine(8), recordLine(8) + 2),
      ...lines.slice(recordLine(7), recordLine(7) + 2),
    );
    await expectBad(withCheckpoints, publicKeyPem, { seq: 7, code: 'seq_mismatch' });
  });

  test('a truncated tail is detected whether or not the final checkpoint is kept', async (t) => {
    const { lines, publicKeyPem } = await exportLines(t, 10);
    // Drop records 8..10 with their checkpoints and the final checkpoint.
    await expectBad(lines.slice(0, recordLine(8)), publicKeyPem, { seq: 8, code: 'truncated' });
    // Only the final checkpoint removed: still an export that does not say where it ends.
    await expectBad(lines.slice(0, -1), publicKeyPem, { seq: 11, code: 'truncated' });
    // Records 8..10 dropped, the final checkpoint (over seq 10) kept at the end.
    await expectBad([...lines.slice(0, recordLine(8)), lines.at(-1)!], publicKeyPem, { seq: 8, code: 'truncated' });
  });

  test('a rewritten chain re-signed with another key is refused from the first re-signed checkpoint', async (t) => {
    const { lines, publicKeyPem, store } = await exportLines(t, 10);
    const gatewayId = store.gatewayId;
    const edited = [...lines];
    const o = parse(edited[recordLine(6)]!);
    o['data'] = { i: 6, sql: 'SELECT 6', nested: { list: [6, 'forged'] } };
    edited[recordLine(6)] = JSON.stringify(o);
    const chained = rehash(edited, 6);
    // Chain recomputed but checkpoints left alone: the checkpoint over 6 no longer matches.
    await expectBad(chained, publicKeyPem, { seq: 6, code: 'checkpoint_mismatch' });
    const other = generateKeyPairSync('ed25519');
    const otherId = publicKeyId(other.publicKey);
    const forged = resign(chained, 6, other.privateKey, otherId, gatewayId);
    await expectBad(forged, publicKeyPem, { seq: 6, code: 'unknown_key' });
    // Claiming the real key id does not help: the signature does not verify.
    const lying = resign(chained, 6, other.privateKey, store.audit.keyId, gatewayId);
    await expectBad(lying, publicKeyPem, { seq: 6, code: 'bad_signature' });
    // Everything re-signed and the header swapped: only the trusted key tells.
    const whole = resign(rehash(edited, 6), 1, other.privateKey, otherId, gatewayId);
    const header = parse(whole[0]!);
    header['public_key'] = other.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    whole[0] = JSON.stringify(header);
    await expectBad(whole, publicKeyPem, { seq: 1, code: 'unknown_key' });
    assert.equal((await verifyAuditExport(whole)).ok, true, 'without a trusted key a full re-sign passes (documented)');
  });

  test('a header naming another key than the trusted one is refused even when the rest verifies', async (t) => {
    const { lines, publicKeyPem } = await exportLines(t, 3);
    const header = parse(lines[0]!);
    header['public_key'] = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString();
    await expectBad([JSON.stringify(header), ...lines.slice(1)], publicKeyPem, {
      seq: 0,
      code: 'unknown_key',
      line: 1,
    });
  });

  test('in a batched log a rewritten record is pinned to its batch (first record after the last good checkpoint)', async (t) => {
    const { store, dir } = tempStore(t, { maxBatch: 10 });
    await Promise.all(Array.from({ length: 30 }, (_, i) => store.audit.append({ kind: 'k', data: { i } })));
    const path = join(dir, 'e.jsonl');
    await exportAuditLog(store, path);
    const lines = readFileSync(path, 'utf8').trimEnd().split('\n');
    const idx = lines.findIndex((l) => parse(l)['seq'] === 15 && parse(l)['type'] === 'record');
    const o = parse(lines[idx]!);
    o['data'] = { i: 'forged' };
    lines[idx] = JSON.stringify(o);
    const chained = rehash(lines, 15);
    // Checkpoints sit at 10, 20, 30: the one at 20 fails, so 11..20 are suspect.
    await expectBad(chained, store.audit.publicKeyPem, { seq: 11, code: 'checkpoint_mismatch' });
  });

  test('malformed lines and unknown fields are refused', async (t) => {
    const { lines, publicKeyPem } = await exportLines(t, 3);
    const extra = parse(lines[recordLine(2)]!);
    extra['note'] = 'added';
    await expectBad(
      [...lines.slice(0, recordLine(2)), JSON.stringify(extra), ...lines.slice(recordLine(2) + 1)],
      publicKeyPem,
      {
        seq: 2,
        code: 'malformed',
      },
    );
    await expectBad([...lines.slice(0, 3), 'not json', ...lines.slice(3)], publicKeyPem, {
      seq: 2,
      code: 'malformed',
      line: 4,
    });
    await expectBad([...lines, lines[recordLine(1)]!], publicKeyPem, { seq: 4, code: 'after_final' });
    await expectBad(lines.slice(1), publicKeyPem, { seq: 1, code: 'malformed', line: 1 });
  });

  test('property: any single mutation of an exported log is detected', async (t) => {
    const { lines, publicKeyPem } = await exportLines(t, 8);
    assert.equal((await verifyAuditExport(lines, { publicKeyPem })).ok, true);
    const n = lines.length;
    const index = fc.integer({ min: 0, max: n - 1 });
    const differentValue = (old: unknown) =>
      fc.jsonValue().filter((v) => canonicalJson(v) !== canonicalJson(old ?? null));
    const mutation = fc.oneof(
      index.map((i) => ({ name: `delete line ${i}`, apply: (ls: string[]) => ls.filter((_, j) => j !== i) })),
      fc
        .tuple(index, index)
        .filter(([i, j]) => i !== j)
        .map(([i, j]) => ({
          name: `swap lines ${i} and ${j}`,
          apply: (ls: string[]) => {
            const out = [...ls];
            [out[i], out[j]] = [out[j]!, out[i]!];
            return out;
          },
        })),
      index.map((i) => ({
        name: `duplicate line ${i}`,
        apply: (ls: string[]) => [...ls.slice(0, i + 1), ...ls.slice(i)],
      })),
      fc
        .integer({ min: 0, max: n - 1 })
        .map((k) => ({ name: `keep ${k} lines`, apply: (ls: string[]) => ls.slice(0, k) })),
      index.chain((i) => {
        const keys = Object.keys(parse(lines[i]!));
        return fc.constantFrom(...keys).chain((key) =>
          differentValue(parse(lines[i]!)[key]).map((value) => ({
            name: `line ${i}: ${key} = ${JSON.stringify(value)}`,
            apply: (ls: string[]) => {
              const o = parse(ls[i]!);
              o[key] = value;
              return ls.map((l, j) => (j === i ? JSON.stringify(o) : l));
            },
          })),
        );
      }),
      fc.tuple(index, fc.string({ minLength: 1 }), fc.jsonValue()).map(([i, key, value]) => ({
        name: `line ${i}: add or replace ${JSON.stringify(key)}`,
        apply: (ls: string[]) => {
          const o = parse(ls[i]!);
          const before = canonicalJson(o);
          setOwn(o, key, value);
          // Same canonical content means no mutation happened: mark it so the check skips it.
          if (canonicalJson(o) === before) return undefined;
          return ls.map((l, j) => (j === i ? JSON.stringify(o) : l));
        },
      })),
      index
        .filter((i) => parse(lines[i]!)['type'] === 'record')
        .chain((i) =>
          fc.tuple(fc.string(), fc.jsonValue()).map(([key, value]) => ({
            name: `line ${i}: data[${JSON.stringify(key)}] = ${JSON.stringify(value)}`,
            apply: (ls: string[]) => {
              const o = parse(ls[i]!);
              const data = { ...(o['data'] as Line) };
              const before = canonicalJson(data);
              setOwn(data, key, value);
              if (canonicalJson(data) === before) return undefined;
              o['data'] = data;
              return ls.map((l, j) => (j === i ? JSON.stringify(o) : l));
            },
          })),
        ),
    );
    let checked = 0;
    await fc.assert(
      fc.asyncProperty(mutation, async (m) => {
        const mutated = m.apply(lines);
        if (mutated === undefined) return;
        checked++;
        const result = await verifyAuditExport(mutated, { publicKeyPem });
        assert.equal(result.ok, false, `undetected: ${m.name}`);
      }),
      { numRuns: 300 },
    );
    assert.ok(checked >= 250, `only ${checked} real mutations were checked`);
  });
});

describe('verifyAuditExport with worker threads', () => {
  test('a file verifies with workers exactly as line by line, intact and under tampering across chunks', async (t) => {
    const ts = tempStore(t, { maxBatch: 64 });
    await Promise.all(
      Array.from({ length: 3000 }, (_, i) =>
        ts.store.audit.append({
          kind: 'pg.query',
          sessionId: `s-${i % 7}`,
          decision: 'allow',
          // Some records take the general parser (an escape, an emoji), one is longer than a
          // read chunk (1 MiB).
          data:
            i === 1800
              ? { body: 'b'.repeat(1_500_000) }
              : { i, sql: i % 5 ? `SELECT ${i}` : `SELECT '${i}\n😀'`, params: [i, null, 1.5] },
        }),
      ),
    );
    const path = join(ts.dir, 'export.jsonl');
    await exportAuditLog(ts.store, path);
    const lines = readFileSync(path, 'utf8').slice(0, -1).split('\n');
    assert.ok(lines.length > 3000);
    const publicKeyPem = ts.store.audit.publicKeyPem;
    // Indices well past the first chunk, on either side of a chunk edge.
    const firstCheckpointAfter = (i: number) =>
      lines.findIndex((l, j) => j > i && l.startsWith('{"type":"checkpoint"'));
    const cp = firstCheckpointAfter(2400);
    const cases: { name: string; lines: string[]; newline?: boolean; trusted?: boolean }[] = [
      { name: 'intact', lines },
      { name: 'intact, header key only', lines, trusted: false },
      { name: 'no final newline', lines, newline: false },
      { name: 'CRLF', lines: lines.map((l) => `${l}\r`) },
      {
        name: 'record data edited',
        lines: lines.map((l, i) => (i === 2500 ? l.replace('"rows"', '"r0ws"').replace(/"i":(\d+)/, '"i":7') : l)),
      },
      { name: 'checkpoint deleted', lines: lines.filter((_, i) => i !== cp) },
      {
        name: 'checkpoint signature altered',
        lines: lines.map((l, i) =>
          i === cp ? l.replace(/"signature":"(.)/, (_m, c: string) => `"signature":"${c === 'A' ? 'B' : 'A'}`) : l,
        ),
      },
      {
        name: 'adjacent lines swapped',
        lines: lines.map((l, i, a) => (i === 2000 ? a[2001]! : i === 2001 ? a[2000]! : l)),
      },
      { name: 'tail cut', lines: lines.slice(0, -10) },
      { name: 'final duplicated', lines: [...lines, lines[lines.length - 1]!] },
      { name: 'empty line inserted', lines: [...lines.slice(0, 2700), '', ...lines.slice(2700)] },
      { name: 'garbage line', lines: lines.map((l, i) => (i === 2900 ? 'xyz' : l)) },
      { name: 'no header', lines: lines.slice(1) },
      {
        name: 'whitespace in a record',
        lines: lines.map((l, i) => (i === 2600 ? l.replace(',"data":', ', "data": ') : l)),
      },
    ];
    const codes = new Set<string>();
    for (const c of cases) {
      const file = join(ts.dir, 'case.jsonl');
      writeFileSync(file, c.lines.join('\n') + (c.newline === false ? '' : '\n'));
      const opts = c.trusted === false ? {} : { publicKeyPem };
      const reference = await verifyAuditExport(c.lines, opts);
      assert.deepEqual(await verifyAuditExport(file, { ...opts, workers: 0 }), reference, c.name);
      assert.deepEqual(await verifyAuditExport(file, { ...opts, workers: 2 }), reference, c.name);
      codes.add(reference.firstBad?.code ?? 'ok');
    }
    assert.deepEqual(
      [...codes].sort(),
      ['bad_signature', 'seq_mismatch', 'hash_mismatch', 'malformed', 'ok', 'truncated', 'after_final'].sort(),
    );
  });
});

describe('verifyStore on the live database', () => {
  /** The attacker's own connection: no triggers, no foreign keys. */
  function attacker(path: string): Database.Database {
    const db = new Database(path);
    db.pragma('foreign_keys = OFF');
    db.exec(`DROP TRIGGER IF EXISTS audit_records_no_update; DROP TRIGGER IF EXISTS audit_records_no_delete;
             DROP TRIGGER IF EXISTS audit_checkpoints_no_update; DROP TRIGGER IF EXISTS audit_checkpoints_no_delete;`);
    return db;
  }

  test('the append-only triggers stop plain UPDATE and DELETE', async (t) => {
    const { store } = await storeWithRecords(t, 2);
    assert.throws(() => store.db.prepare("UPDATE audit_records SET kind = 'x' WHERE seq = 1").run(), /append-only/);
    assert.throws(() => store.db.prepare('DELETE FROM audit_checkpoints WHERE seq = 1').run(), /append-only/);
  });

  test('an UPDATE of a past record is named at its seq', async (t) => {
    const { store, options } = await storeWithRecords(t, 10);
    const db = attacker(options.path);
    t.after(() => db.close());
    db.prepare("UPDATE audit_records SET identity = 'user:mallory' WHERE seq = 5").run();
    const r = verifyStore(store);
    assert.deepEqual([r.ok, r.firstBad?.code, r.firstBad?.seq, r.records], [false, 'hash_mismatch', 5, 4]);
  });

  test('a DELETE of a past record is named at its seq', async (t) => {
    const { store, options } = await storeWithRecords(t, 10);
    const db = attacker(options.path);
    t.after(() => db.close());
    db.prepare('DELETE FROM audit_records WHERE seq = 5').run();
    const r = verifyStore(store);
    assert.deepEqual([r.firstBad?.code, r.firstBad?.seq], ['seq_mismatch', 5]);
  });

  test('swapped row contents are named at the first swapped seq', async (t) => {
    const { store, options } = await storeWithRecords(t, 10);
    const db = attacker(options.path);
    t.after(() => db.close());
    const cols = 'ts, kind, session_id, identity, source, connection, rule, decision, data, prev_hash, hash';
    db.exec(`CREATE TEMP TABLE keep AS SELECT seq, ${cols} FROM audit_records WHERE seq IN (3, 4)`);
    for (const [to, from] of [
      [3, 4],
      [4, 3],
    ]) {
      db.prepare(
        `UPDATE audit_records SET (${cols}) = (SELECT ${cols} FROM keep WHERE seq = ${from}) WHERE seq = ${to}`,
      ).run();
    }
    const r = verifyStore(store);
    assert.deepEqual([r.firstBad?.code, r.firstBad?.seq], ['prev_hash_mismatch', 3]);
  });

  test('a deleted tail is caught: with its checkpoints by the live head, without them by the checkpoints', async (t) => {
    const { store, options } = await storeWithRecords(t, 10);
    const db = attacker(options.path);
    t.after(() => db.close());
    db.prepare('DELETE FROM audit_records WHERE seq >= 8').run();
    let r = verifyStore(store);
    assert.deepEqual([r.firstBad?.code, r.firstBad?.seq], ['truncated', 8]);
    db.prepare('DELETE FROM audit_checkpoints WHERE seq >= 8').run();
    r = verifyStore(store);
    assert.deepEqual([r.firstBad?.code, r.firstBad?.seq], ['truncated', 8]);
  });

  test('a forged record appended without a checkpoint is caught live and refused on reopen', async (t) => {
    const ts = await storeWithRecords(t, 3);
    const head = ts.store.audit.head();
    const db = attacker(ts.options.path);
    t.after(() => db.close());
    const fields = {
      seq: 4,
      ts: new Date().toISOString(),
      kind: 'session.end',
      session_id: null,
      identity: 'user:alice',
      source: null,
      connection: null,
      rule: null,
      decision: null,
      prev_hash: head.hash,
    };
    db.prepare(
      `INSERT INTO audit_records (seq, ts, kind, session_id, identity, source, connection, rule, decision, data, prev_hash, hash)
       VALUES (@seq, @ts, @kind, @session_id, @identity, @source, @connection, @rule, @decision, '{}', @prev_hash, @hash)`,
    ).run({ ...fields, hash: recordHash(fields, '{}') });
    const r = verifyStore(ts.store);
    assert.deepEqual([r.firstBad?.code, r.firstBad?.seq], ['unsigned_tail', 4]);
    await ts.store.close();
    assert.throws(() => ts.reopen(), { code: 'ERR_AUDIT_TAMPERED' });
    // Read-only still opens, to inspect it; its export leaves the unsigned record out.
    const ro = ts.reopen({ readOnly: true });
    assert.deepEqual([verifyStore(ro).firstBad?.code, verifyStore(ro).firstBad?.seq], ['unsigned_tail', 4]);
    const out = join(ts.dir, 'ro.jsonl');
    assert.equal((await exportAuditLog(ro, out)).records, 3);
    assert.equal((await verifyAuditExport(out, { publicKeyPem: ro.audit.publicKeyPem })).ok, true);
  });

  test('an edited export file on disk is reported with its line', async (t) => {
    const { path, publicKeyPem } = await exportLines(t, 4);
    const text = readFileSync(path, 'utf8').replace('"SELECT 3"', '"SELECT 4"');
    writeFileSync(path, text);
    const r = await verifyAuditExport(path, { publicKeyPem });
    assert.deepEqual([r.firstBad?.code, r.firstBad?.seq, r.firstBad?.line], ['hash_mismatch', 3, recordLine(3) + 1]);
  });
});

/**
 * `o[key] = value` with the key "__proto__" (which fc.string() generates) would replace the
 * prototype instead of adding a key; JSON.parse makes it an own key, and so does this.
 */
function setOwn(o: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
}
