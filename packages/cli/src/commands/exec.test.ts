import assert from 'node:assert/strict';
import { test } from 'node:test';
import { exitStatusOf } from './exec-ssh.js';
import { csvLine, formatTable, jsonLine } from './sql-output.js';
import { hostKeyAlias } from './ssh-known-hosts.js';

test('table: aligned like psql, NULL empty, control characters escaped, wide characters counted as two', () => {
  assert.equal(
    formatTable(
      ['id', 'name'],
      [
        ['1', 'apple'],
        ['10', null],
        ['2', 'a\nb'],
        ['3', '日本'],
      ],
    ),
    ' id | name\n----+-------\n 1  | apple\n 10 |\n 2  | a\\nb\n 3  | 日本\n(4 rows)\n',
  );
  assert.equal(formatTable(['x'], [['1']]), ' x\n---\n 1\n(1 row)\n');
  assert.equal(formatTable(['x'], []), ' x\n---\n(0 rows)\n');
});

test('csv: RFC 4180 quoting; NULL is an empty field, an empty string a quoted one', () => {
  const cases: Array<[Array<string | null>, string]> = [
    [['a', 'b'], 'a,b\r\n'],
    [['x,y', 'say "hi"'], '"x,y","say ""hi"""\r\n'],
    [['line\nbreak', 'cr\r'], '"line\nbreak","cr\r"\r\n'],
    [[null, ''], ',""\r\n'],
  ];
  for (const [values, expected] of cases) assert.equal(csvLine(values), expected);
});

test('json: one object per row, values as text, NULL as null', () => {
  assert.equal(jsonLine(['a', 'b'], ['1', null]), '{"a":"1","b":null}\n');
});

test('exit status: the code, or 128 + the signal number with or without the SIG prefix, 255 without either', () => {
  assert.equal(exitStatusOf(0, undefined), 0);
  assert.equal(exitStatusOf(7, undefined), 7);
  assert.equal(exitStatusOf(null, 'SIGTERM'), 143);
  assert.equal(exitStatusOf(null, 'KILL'), 137);
  assert.equal(exitStatusOf(null, undefined), 255);
});

test('host key alias: one per gateway host and port, safe in known_hosts', () => {
  assert.equal(hostKeyAlias('http://127.0.0.1:7400'), 'ward-gateway-127.0.0.1-7400');
  assert.equal(hostKeyAlias('https://gw.example.com'), 'ward-gateway-gw.example.com-443');
  assert.equal(hostKeyAlias('http://[::1]:7400'), 'ward-gateway---1-7400');
});
