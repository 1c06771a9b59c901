/** pipectl's command line: parsing, --input assignments, and the checks that need no server. */
import { describe, expect, it } from 'vitest';
import { DEFAULT_URL, HELP, parseCommandLine, parseInputAssignment, serverUrl } from '../../src/cli/args.ts';
import { collectInputs, exitCodeFor, table } from '../../src/cli/commands.ts';
import { ExitCode, UsageError } from '../../src/cli/errors.ts';
import { checkValue, needsPrompt, question, type PromptParam } from '../../src/cli/prompt.ts';

describe('parseCommandLine', () => {
  it.each([
    [['graphs'], { name: 'graphs', json: false }],
    [['graphs', '--json'], { name: 'graphs', json: true }],
    [['apply', 'g.yaml'], { name: 'apply', file: 'g.yaml', graphName: undefined }],
    [['apply', '-', '--name', 'g v2'], { name: 'apply', file: '-', graphName: 'g v2' }],
    [['watch', '12'], { name: 'watch', pipelineId: 12 }],
    [['logs', '7', '-f'], { name: 'logs', trackId: 7, follow: true }],
    [['logs', '7'], { name: 'logs', trackId: 7, follow: false }],
    [['cancel', '3'], { name: 'cancel', pipelineId: 3 }],
    [['retry', '3', '--watch'], { name: 'retry', pipelineId: 3, watch: true }],
    [['schedules'], { name: 'schedules', graph: undefined, json: false }],
    [['schedules', 'web server check', '--json'], { name: 'schedules', graph: 'web server check', json: true }],
    [['schedule', 'pause', 'nightly'], { name: 'schedule', action: 'pause', schedule: 'nightly' }],
    [['schedule', 'resume', '4'], { name: 'schedule', action: 'resume', schedule: '4' }],
    [[], { name: 'help' }],
    [['help'], { name: 'help' }],
    [['start', '--help'], { name: 'help' }],
  ])('%j', (argv, command) => {
    expect(parseCommandLine(argv).command).toEqual(command);
  });

  it('start collects every --input, in order, and its flags', () => {
    const { command, url } = parseCommandLine([
      '--url', 'http://h:1/graphql', 'start', 'web server check', '-i', 'port-open.port=4000', '--input', 'operator=Ada', '-w', '--name', 'nightly', '--no-prompt',
    ]);
    expect(url).toBe('http://h:1/graphql');
    expect(command).toEqual({
      name: 'start',
      graph: 'web server check',
      inputs: [
        { vertex: 'port-open', param: 'port', value: '4000' },
        { vertex: undefined, param: 'operator', value: 'Ada' },
      ],
      watch: true,
      runName: 'nightly',
      prompt: false,
    });
  });

  it('start takes --idempotency-key as given (the server checks it)', () => {
    expect(parseCommandLine(['start', '3', '--idempotency-key', 'ci-run 81 ']).command).toMatchObject({ name: 'start', graph: '3', idempotencyKey: 'ci-run 81 ' });
    expect(parseCommandLine(['start', '3']).command).toMatchObject({ idempotencyKey: undefined });
  });

  it('retry takes --from, repeated or comma-separated, each name once', () => {
    expect(parseCommandLine(['retry', '7', '--from', 'build', '--from', 'test, deploy,build', '-w']).command).toEqual({
      name: 'retry',
      pipelineId: 7,
      watch: true,
      from: ['build', 'test', 'deploy'],
    });
    expect(parseCommandLine(['retry', '7']).command).toEqual({ name: 'retry', pipelineId: 7, watch: false, from: undefined });
  });

  it.each([
    [['retry', '7', '--from', ''], /--from needs vertex names/],
    [['retry', '7', '--from', 'a,,b'], /--from needs vertex names/],
    [['start', 'g', '--from', 'a'], /start does not take --from/],
    [['retry', '3', '--idempotency-key', 'k'], /retry does not take --idempotency-key/],
    [['graphs', '--wach'], /Unknown option '--wach'/],
    [['logs', '7', '--watch'], /logs does not take --watch/],
    [['cancel', '3', '--follow'], /cancel does not take --follow/],
    [['watch'], /watch needs <pipeline>/],
    [['watch', '1', '2'], /takes 1 argument/],
    [['watch', 'abc'], /pipeline must be an id/],
    [['logs', '0'], /track must be an id/],
    [['start', ''], /graph id or name/],
    [['start', 'g', '--input', 'novalue'], /has no "="/],
    [['schedule', 'stop', 'nightly'], /schedule needs pause or resume, not "stop"/],
    [['schedule', 'pause'], /schedule needs <pause\|resume> <schedule>/],
    [['schedules', 'a', 'b'], /takes 1 argument/],
    [['schedules', '--watch'], /schedules does not take --watch/],
  ])('%j is a usage error', (argv, message) => {
    expect(() => parseCommandLine(argv)).toThrow(message);
    try {
      parseCommandLine(argv);
    } catch (error) {
      expect(error).toBeInstanceOf(UsageError);
      expect((error as UsageError).exitCode).toBe(ExitCode.USAGE);
    }
  });
});

describe('parseInputAssignment', () => {
  it.each([
    ['report.operator=Ada', { vertex: 'report', param: 'operator', value: 'Ada' }],
    ['operator=Ada', { vertex: undefined, param: 'operator', value: 'Ada' }],
    ['db.v2.url=postgres://u:p@h/db?x=1', { vertex: 'db.v2', param: 'url', value: 'postgres://u:p@h/db?x=1' }],
    ['a.msg=', { vertex: 'a', param: 'msg', value: '' }],
    ['a.msg=x; rm -rf /', { vertex: 'a', param: 'msg', value: 'x; rm -rf /' }],
  ])('%s', (text, expected) => {
    expect(parseInputAssignment(text)).toEqual(expected);
  });

  it.each([
    ['.x=1', /vertex name before "." is empty/],
    ['a.1x=1', /not a parameter name/],
    ['a.=1', /not a parameter name/],
  ])('%s is refused', (text, message) => {
    expect(() => parseInputAssignment(text)).toThrow(message);
  });
});

describe('serverUrl', () => {
  it('defaults to the local server and keeps a given one', () => {
    expect(serverUrl(undefined)).toBe(DEFAULT_URL);
    expect(serverUrl('  ')).toBe(DEFAULT_URL);
    expect(serverUrl('https://ci.example:8443/graphql')).toBe('https://ci.example:8443/graphql');
  });
  it.each(['not a url', 'ftp://x/graphql'])('refuses %s', (url) => {
    expect(() => serverUrl(url)).toThrow(UsageError);
  });
});

describe('help', () => {
  it('documents every command and every exit code', () => {
    for (const command of ['graphs', 'apply', 'start', 'watch', 'logs', 'cancel', 'retry']) expect(HELP).toContain(`  ${command} `);
    for (const code of Object.values(ExitCode)) expect(HELP).toMatch(new RegExp(`^  ${code} +\\S`, 'm'));
    expect(HELP).toContain('PIPECTL_URL');
  });
});

describe('collectInputs', () => {
  const param = (name: string, extra: Partial<PromptParam> = {}): PromptParam => ({ name, type: 'STRING', required: false, secret: false, ...extra });
  const vertices = [
    { name: 'port-open', inputs: [param('host'), param('port', { type: 'INTEGER' })] },
    { name: 'health', inputs: [param('host'), param('port', { type: 'INTEGER', from: 'port-open.port' })] },
    { name: 'report', inputs: [param('operator', { required: true })] },
  ];

  it('groups values by vertex; a value without a vertex goes to every vertex declaring it', () => {
    const values = collectInputs(vertices, [
      { vertex: undefined, param: 'host', value: '::1' },
      { vertex: 'port-open', param: 'port', value: '4000' },
      { vertex: 'report', param: 'operator', value: 'Ada' },
    ]);
    expect(Object.fromEntries(values)).toEqual({ 'port-open': { host: '::1', port: '4000' }, health: { host: '::1' }, report: { operator: 'Ada' } });
  });

  it('gives a value without a vertex only to the vertices that take it, not to those reading it from a step output', () => {
    expect(Object.fromEntries(collectInputs(vertices, [{ vertex: undefined, param: 'port', value: '4000' }]))).toEqual({ 'port-open': { port: '4000' } });
  });

  it.each([
    [{ vertex: 'nope', param: 'x', value: '1' }, /no vertex "nope". Its vertices: port-open, health, report/],
    [{ vertex: 'report', param: 'port', value: '1' }, /"report" declares no parameter "port" \(it has operator\)/],
    [{ vertex: 'health', param: 'port', value: '1' }, /vertex "health" reads "port" from the step output port-open.port; it cannot be given/],
    [{ vertex: undefined, param: 'colour', value: 'red' }, /no vertex of this graph declares a parameter "colour"/],
  ])('refuses %j as a usage error', (assignment, message) => {
    expect(() => collectInputs(vertices, [assignment])).toThrow(message);
  });
});

describe('prompting rules', () => {
  const p = (extra: Partial<PromptParam>): PromptParam => ({ name: 'x', type: 'STRING', required: false, secret: false, ...extra });

  it('asks for a required parameter or one without a default, unless given', () => {
    expect(needsPrompt(p({ required: true, default: 'a' }), false)).toBe(true);
    expect(needsPrompt(p({}), false)).toBe(true);
    expect(needsPrompt(p({ default: 'a' }), false)).toBe(false);
    expect(needsPrompt(p({ required: true }), true)).toBe(false);
    expect(needsPrompt(p({ from: 'a.x' }), false)).toBe(false);
  });

  it.each([
    [p({ type: 'INTEGER' }), '12', undefined],
    [p({ type: 'INTEGER' }), '1.5', 'expected a whole number'],
    [p({ type: 'NUMBER' }), 'x', 'expected a number'],
    [p({ type: 'BOOLEAN' }), 'yes', undefined],
    [p({ type: 'BOOLEAN' }), 'maybe', 'expected true or false'],
    [p({ type: 'IP' }), '::1', undefined],
    [p({ type: 'IP' }), '300.1.1.1', 'expected an IPv4 or IPv6 address'],
    [p({ choices: ['dev', 'prod'] }), 'prod', undefined],
    [p({ choices: ['dev', 'prod'] }), 'qa', 'expected one of dev, prod'],
    [p({ pattern: '[a-z]+' }), 'abc', undefined],
    [p({ pattern: '[a-z]+' }), 'abc1', 'expected text matching [a-z]+'],
  ])('checkValue(%j, %s)', (param, value, problem) => {
    expect(checkValue(param, value)).toBe(problem);
  });

  it('asks in words: type, required, secret, choices, description, default (never a secret one)', () => {
    expect(question('report', p({ name: 'operator', required: true, description: 'who runs it', default: 'Ada' }))).toBe(
      'report.operator (string, required; who runs it) [Ada]: ',
    );
    expect(question('deploy', p({ name: 'token', secret: true, default: 'hunter2' }))).toBe('deploy.token (string, secret, not echoed): ');
    expect(question('deploy', p({ name: 'env', choices: ['dev', 'prod'] }))).toBe('deploy.env (string, one of dev, prod): ');
  });
});

describe('exit codes', () => {
  it('tell how a watched pipeline ended', () => {
    expect([exitCodeFor('FINISH'), exitCodeFor('FAILED'), exitCodeFor('CANCELLED')]).toEqual([0, 1, 2]);
    expect(new Set(Object.values(ExitCode)).size).toBe(Object.values(ExitCode).length);
  });
});

describe('table', () => {
  it('pads columns to the widest cell', () => {
    expect(table([['ID', 'NAME', 'LAST'], ['1', 'web server check', '-'], ['12', 'x', 'pipeline 3 FINISH']])).toEqual([
      'ID  NAME              LAST',
      '1   web server check  -',
      '12  x                 pipeline 3 FINISH',
    ]);
  });
});
