import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import * as z from 'zod';
import { WardError } from '../errors.js';
import { closestMatch, editDistance } from './edit-distance.js';
import { byteSizeField, durationField, enumField, hostPortField, nameField, pathField } from './fields.js';
import { loadConfigFile, parseConfigText } from './load.js';
import { problem } from './problem.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ward-config-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const schema = () =>
  z.strictObject({
    listen: z.strictObject({ http: hostPortField().default({ host: '127.0.0.1', port: 7400 }) }).prefault({}),
    timeout: durationField().default(1000),
    window: byteSizeField().default(1024),
    enabled: z.boolean().default(true),
    dataDir: pathField(dir).default(join(dir, 'data')),
    connections: z
      .array(
        z.strictObject({
          name: nameField('connection'),
          type: enumField(['postgres', 'ssh', 'http'], 'a connection type'),
          port: z.number().int().min(1).max(65535).describe('a port number such as 5432'),
        }),
      )
      .default([]),
  });

/** The problem lines of an ERR_CONFIG_INVALID, or a failed assertion. */
function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof WardError, String(err));
    assert.equal(err.code, 'ERR_CONFIG_INVALID');
    assert.equal(err.kind, 'invalid_argument');
    return err.message.split('\n');
  }
  assert.fail('expected ERR_CONFIG_INVALID');
}

const LINE = /^(?<file>[^:]+):(?<line>\d+):(?<col>\d+): (?<field>[^:]+): (?<what>.+)\. Fix: (?<fix>.+)[.?]$/;

function parts(line: string) {
  const m = LINE.exec(line);
  assert.ok(m?.groups, `not in FILE:LINE:COL: field: what. Fix: fix. form: ${line}`);
  return m.groups as { file: string; line: string; col: string; field: string; what: string; fix: string };
}

describe('parseConfigText', () => {
  test('valid text gives the parsed, defaulted and deep-frozen value', () => {
    const config = parseConfigText(
      'timeout: 5m\nconnections:\n  - { name: a, type: ssh, port: 22 }\n',
      'c.yaml',
      schema(),
    );
    assert.equal(config.timeout, 300_000);
    assert.deepEqual(config.listen.http, { host: '127.0.0.1', port: 7400 });
    assert.equal(config.window, 1024);
    assert.equal(config.connections[0]?.port, 22);
    assert.ok(Object.isFrozen(config));
    assert.ok(Object.isFrozen(config.connections));
    assert.ok(Object.isFrozen(config.connections[0]));
    assert.ok(Object.isFrozen(config.listen.http));
    assert.throws(() => {
      (config.listen.http as { port: number }).port = 1;
    }, TypeError);
  });

  test('an empty file is an empty mapping (defaults apply)', () => {
    assert.equal(parseConfigText('', 'c.yaml', schema()).timeout, 1000);
    assert.equal(parseConfigText('# only a comment\n', 'c.yaml', schema()).enabled, true);
  });

  test('line:col points at the offending value, 1-based', () => {
    const text = ['listen:', '  http: 7400', 'connections:', '  - name: ok', '    type: pg', '    port: 22', ''].join(
      '\n',
    );
    const lines = problems(() => parseConfigText(text, 'gateway.yaml', schema()));
    assert.equal(lines.length, 2);
    const [first, second] = lines.map(parts);
    assert.deepEqual([first?.file, first?.line, first?.col, first?.field], ['gateway.yaml', '2', '9', 'listen.http']);
    assert.deepEqual([second?.line, second?.col, second?.field], ['5', '11', 'connections[0].type']);
    assert.equal(
      lines[1],
      'gateway.yaml:5:11: connections[0].type: "pg" is not a connection type. Fix: use one of postgres, ssh, http.',
    );
  });

  test('positions work inside flow mappings and sequences', () => {
    const text = 'connections: [{ name: a, type: ssh, port: 22 }, { name: b, type: ssh, port: "x" }]\n';
    const [line] = problems(() => parseConfigText(text, 'c.yaml', schema())).map(parts);
    assert.deepEqual([line?.line, line?.col, line?.field], ['1', '77', 'connections[1].port']);
  });

  test('every problem is reported at once, in file order', () => {
    const text = [
      'timeout: 60', // 1: bare number
      'window: lots', // 2
      'enabled: yes', // 3: YAML 1.2 reads "yes" as a string
      'connections:', // 4
      '  - name: Bad Name', // 5
      '    type: ssh', // 6
      '    port: 0', // 7
      '  - name: b', // 8: port missing
      '    type: http',
      'listn: {}', // 10: unknown key
      '',
    ].join('\n');
    const lines = problems(() => parseConfigText(text, 'c.yaml', schema()));
    assert.deepEqual(
      lines.map((l) => {
        const p = parts(l);
        return `${p.line}:${p.col} ${p.field}`;
      }),
      [
        '1:10 timeout',
        '2:9 window',
        '3:10 enabled',
        '5:11 connections[0].name',
        '7:11 connections[0].port',
        '8:5 connections[1].port',
        '10:1 listn',
      ],
    );
    assert.match(lines[0] ?? '', /Fix: write 60s for seconds or 60ms/);
    assert.match(lines[5] ?? '', /is missing\. Fix: add port: a port number such as 5432\./);
  });

  test('unknown keys get a did-you-mean within edit distance 2', () => {
    const text = 'listen:\n  htpp: 127.0.0.1:1\nconnections:\n  - { name: a, tpye: ssh, port: 22 }\ntimout: 1s\n';
    const lines = problems(() => parseConfigText(text, 'c.yaml', schema()));
    // The misspelt required "type" is reported once, as the typo, not again as missing.
    assert.deepEqual(lines, [
      'c.yaml:2:3: listen.htpp: "htpp" is not a known key. Fix: did you mean "http"?',
      'c.yaml:4:16: connections[0].tpye: "tpye" is not a known key. Fix: did you mean "type"?',
      'c.yaml:5:1: timout: "timout" is not a known key. Fix: did you mean "timeout"?',
    ]);
  });

  test('an unknown key with no close match lists the keys allowed there', () => {
    const [line] = problems(() => parseConfigText('listen: { frobnicate: 1 }\n', 'c.yaml', schema()));
    assert.equal(
      line,
      'c.yaml:1:11: listen.frobnicate: "frobnicate" is not a known key. Fix: remove it; keys allowed here: http.',
    );
  });

  test('YAML syntax errors carry line:col too', () => {
    const lines = problems(() => parseConfigText('timeout: 1s\nlisten:\n  http: [1, 2\n', 'c.yaml', schema()));
    assert.ok(lines.length >= 1);
    for (const l of lines) assert.match(l, /^c\.yaml:\d+:\d+: YAML syntax: .+\. Fix: .+\.$/);
    const tab = problems(() => parseConfigText('listen:\n\thttp: 127.0.0.1:1\n', 'c.yaml', schema()));
    assert.match(tab[0] ?? '', /^c\.yaml:2:1: YAML syntax: /);
  });

  test('a duplicated key is a syntax error at the second occurrence', () => {
    const lines = problems(() => parseConfigText('timeout: 1s\nwindow: 1KiB\ntimeout: 2s\n', 'c.yaml', schema()));
    assert.deepEqual(lines, [
      'c.yaml:3:1: YAML syntax: Map keys must be unique. Fix: keep only one of the two entries with this key.',
    ]);
  });

  test('a top level that is not a mapping is refused', () => {
    const [line] = problems(() => parseConfigText('- a\n- b\n', 'c.yaml', schema()));
    assert.equal(parts(line ?? '').field, '(top level)');
  });

  test('an alias bomb is refused instead of expanded', () => {
    const levels = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 8; i++)
      levels.push(
        `${'b'.repeat(i)}: &${'b'.repeat(i)} [${Array(10)
          .fill(i === 1 ? '*a' : `*${'b'.repeat(i - 1)}`)
          .join(', ')}]`,
      );
    const lines = problems(() => parseConfigText(`${levels.join('\n')}\n`, 'c.yaml', z.unknown()));
    assert.equal(lines.length, 1);
  });

  test('rawCheck problems are reported and replace the unknown-key report for the same key', () => {
    const rawCheck = (raw: unknown) =>
      (raw as { secret?: unknown }).secret === undefined
        ? []
        : [{ path: ['secret'], message: problem('no secrets here', 'move it') }];
    const lines = problems(() => parseConfigText('timeout: 1s\nsecret: x\n', 'c.yaml', schema(), { rawCheck }));
    assert.deepEqual(lines, ['c.yaml:2:1: secret: no secrets here. Fix: move it.']);
  });

  test('a missing parsed field (address, duration) reads like any missing field', () => {
    const s = z.strictObject({
      address: hostPortField().describe('host:port, e.g. 127.0.0.1:7401'),
      every: durationField(),
    });
    const lines = problems(() => parseConfigText('{}\n', 'c.yaml', s));
    assert.deepEqual(lines, [
      'c.yaml:1:1: address: is missing. Fix: add address: host:port, e.g. 127.0.0.1:7401.',
      'c.yaml:1:1: every: is missing. Fix: add every: a duration such as 250ms, 30s, 5m or 1h.',
    ]);
  });

  test('a missing enum field lists the allowed values', () => {
    const [line] = problems(() => parseConfigText('connections:\n  - { name: a, port: 1 }\n', 'c.yaml', schema()));
    assert.equal(line, 'c.yaml:2:5: connections[0].type: is missing. Fix: add type: one of postgres, ssh, http.');
  });

  test('pathField resolves against the base directory and checks existence on request', () => {
    writeFileSync(join(dir, 'cert.pem'), 'x');
    const s = z.strictObject({ a: pathField(dir, { mustExist: 'file' }), b: pathField(dir).optional() });
    const ok = parseConfigText('a: cert.pem\nb: sub/dir\n', join(dir, 'c.yaml'), s);
    assert.equal(ok.a, join(dir, 'cert.pem'));
    assert.equal(ok.b, join(dir, 'sub/dir'));
    const lines = problems(() => parseConfigText(`a: missing.pem\nb: "~/x"\n`, 'c.yaml', s));
    assert.equal(lines.length, 2);
    assert.match(lines[0] ?? '', new RegExp(`^c\\.yaml:1:4: a: file ${join(dir, 'missing.pem')} does not exist`));
    assert.match(lines[1] ?? '', /^c\.yaml:2:4: b: .*"~" is not expanded/);
    const isDir = problems(() => parseConfigText(`a: ${dir}\n`, 'c.yaml', s));
    assert.match(isDir[0] ?? '', /is a directory, not a file/);
  });
});

describe('loadConfigFile', () => {
  test('loads a file from disk', () => {
    const path = join(dir, 'c.yaml');
    writeFileSync(path, 'timeout: 2s\n');
    assert.equal(loadConfigFile(path, schema(), { what: 'gateway' }).timeout, 2000);
  });

  test('a missing file is ERR_CONFIG_NOT_FOUND', () => {
    const path = join(dir, 'nope.yaml');
    assert.throws(
      () => loadConfigFile(path, schema(), { what: 'agent' }),
      (err: unknown) => err instanceof WardError && err.code === 'ERR_CONFIG_NOT_FOUND' && err.kind === 'not_found',
    );
  });

  test('a directory is ERR_CONFIG_UNREADABLE', () => {
    assert.throws(
      () => loadConfigFile(dir, schema(), { what: 'agent' }),
      (err: unknown) => err instanceof WardError && err.code === 'ERR_CONFIG_UNREADABLE',
    );
  });

  test('the error names the file as given', () => {
    const path = join(dir, 'g.yaml');
    writeFileSync(path, 'timeout: forever\n');
    const [line] = problems(() => loadConfigFile(path, schema(), { what: 'gateway' }));
    assert.equal(parts(line ?? '').file, path);
  });
});

describe('closestMatch', () => {
  test('edit distance counts a transposition as one edit', () => {
    assert.equal(editDistance('tpye', 'type'), 1);
    assert.equal(editDistance('pasword', 'password'), 1);
    assert.equal(editDistance('', 'abc'), 3);
    assert.equal(editDistance('kitten', 'sitting'), 3);
  });
  test('suggests only within the distance limit', () => {
    assert.equal(closestMatch('agnet', ['agent', 'name']), 'agent');
    assert.equal(closestMatch('Keyhash', ['keyHash']), 'keyHash');
    assert.equal(closestMatch('zzzzzz', ['agent', 'name']), undefined);
  });
});
