import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isAllowedEnv } from './env-allow.js';
import { parseSshUsername } from './username.js';

test('user names: <connection> and <remote-user>@<connection>', () => {
  const cases: Array<[string, ReturnType<typeof parseSshUsername>]> = [
    ['prod-web', { connection: 'prod-web', user: '' }],
    ['deploy@prod-web', { connection: 'prod-web', user: 'deploy' }],
    ['svc_1.x-y@db_2', { connection: 'db_2', user: 'svc_1.x-y' }],
    ['MACHINE$@c1', { connection: 'c1', user: 'MACHINE$' }],
    ['', undefined],
    ['Prod', undefined],
    ['deploy@', undefined],
    ['@prod', undefined],
    ['a@b@prod', undefined],
    ['de ploy@prod', undefined],
    ['-x@prod', undefined],
    [`u@${'a'.repeat(64)}`, undefined],
    [`${'u'.repeat(33)}@prod`, undefined],
    ['root;id@prod', undefined],
  ];
  for (const [input, expected] of cases) assert.deepEqual(parseSshUsername(input), expected, input);
});

test('env allow-list: LANG, LC_*, TERM, WARD_TEST_* and nothing else', () => {
  for (const name of ['LANG', 'LC_ALL', 'LC_CTYPE', 'TERM', 'WARD_TEST_X', 'WARD_TEST_1_A'])
    assert.equal(isAllowedEnv(name), true, name);
  for (const name of [
    'PATH',
    'LD_PRELOAD',
    'BASH_ENV',
    'PROMPT_COMMAND',
    'LC_',
    'lc_all',
    'WARD_TEST_',
    'TERMCAP',
    'LANGUAGE',
    'HOME',
  ])
    assert.equal(isAllowedEnv(name), false, name);
});
