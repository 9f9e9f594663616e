import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FrontendMessages } from './codec/index.js';
import { type StatementRecord, StatementTracker } from './statement-tracker.js';

const wire = { raw: Buffer.alloc(0), byteLength: 0 };
const query = (sql: string): FrontendMessages.TaggedFrontendMessage => ({ ...wire, type: 'Query', query: sql });
const parse = (sql: string): FrontendMessages.TaggedFrontendMessage => ({
  ...wire,
  type: 'Parse',
  name: '',
  query: sql,
  paramTypes: [],
});
const bind = (params: string[]): FrontendMessages.TaggedFrontendMessage => ({
  ...wire,
  type: 'Bind',
  portal: '',
  statement: '',
  paramFormats: [],
  params: params.map((p) => Buffer.from(p)),
  resultFormats: [],
});
const execute: FrontendMessages.TaggedFrontendMessage = { ...wire, type: 'Execute', portal: '', maxRows: 0 };
const sync: FrontendMessages.TaggedFrontendMessage = { ...wire, type: 'Sync' };

function tracker() {
  const seen: StatementRecord[] = [];
  return { seen, tracker: new StatementTracker((r) => seen.push(r)) };
}

test('a simple query is recorded once, at ReadyForQuery, with its tags and rows', () => {
  const { seen, tracker: t } = tracker();
  t.frontend(query('select 1; select 2'));
  t.dataRow();
  t.complete('SELECT 1');
  t.dataRow();
  t.complete('SELECT 1');
  assert.equal(seen.length, 0);
  t.ready();
  assert.equal(seen.length, 1);
  assert.deepEqual(seen[0]?.tags, ['SELECT 1', 'SELECT 1']);
  assert.equal(seen[0]?.rows, 2);
  assert.equal(seen[0]?.interrupted, undefined);
});

test('an Execute skipped after an earlier error in its pipeline is recorded as skipped', () => {
  const { seen, tracker: t } = tracker();
  t.frontend(parse('select $1'));
  t.frontend(bind(['a']));
  t.frontend(execute);
  t.frontend(execute);
  t.frontend(sync);
  t.error('22P02', 'bad input');
  t.ready();
  assert.equal(seen.length, 2);
  assert.equal(seen[0]?.error?.sqlState, '22P02');
  assert.equal(seen[1]?.skipped, true);
  assert.equal(t.pending, 0);
});

test('drain records every statement still waiting for its answer as interrupted', () => {
  const { seen, tracker: t } = tracker();
  // An error came back, but the client left before ReadyForQuery closed the simple query.
  t.frontend(query('select pg_sleep(10); select 1'));
  t.error('57014', 'canceling statement due to user request');
  // And a pipeline the backend never answered.
  t.frontend(parse('update t set x = $1'));
  t.frontend(bind(['42']));
  t.frontend(execute);
  t.frontend(sync);
  assert.equal(seen.length, 0);
  t.drain();
  assert.equal(seen.length, 2);
  assert.equal(seen[0]?.sql, 'select pg_sleep(10); select 1');
  assert.equal(seen[0]?.error?.sqlState, '57014');
  assert.equal(seen[0]?.interrupted, true);
  assert.equal(seen[1]?.sql, 'update t set x = $1');
  assert.deepEqual(seen[1]?.params, ['42']);
  assert.equal(seen[1]?.interrupted, true);
  assert.equal(t.pending, 0);
  t.drain();
  assert.equal(seen.length, 2, 'a second drain records nothing twice');
});
