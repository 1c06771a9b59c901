/**
 * The pure half of the dashboard's input forms (dashboard/src/form-fields.ts): which control
 * each declared parameter gets, what is prefilled and required in a waiting track's form and
 * in the start form, what the typed text is sent as, and which field a server error names.
 */
import { describe, expect, it } from 'vitest';
import { fieldFor, fieldsFor, htmlPattern, initialValues, paramAt, paramsFrom, startErrorAt, startInputs, type ParamDef } from '../../dashboard/src/form-fields.ts';

const param = (p: Partial<ParamDef> & Pick<ParamDef, 'name' | 'type'>): ParamDef => ({ required: false, secret: false, ...p });

describe('controls', () => {
  it.each([
    [param({ name: 's', type: 'STRING' }), 'text'],
    [param({ name: 'ip', type: 'IP' }), 'text'],
    [param({ name: 'n', type: 'INTEGER' }), 'number'],
    [param({ name: 'x', type: 'NUMBER' }), 'number'],
    [param({ name: 'b', type: 'BOOLEAN', default: false }), 'checkbox'],
    [param({ name: 'pw', type: 'STRING', secret: true }), 'password'],
    [param({ name: 'env', type: 'STRING', choices: ['staging', 'production'] }), 'select'],
    [param({ name: 'port', type: 'INTEGER', from: 'port-open.port' }), 'from'],
  ] as const)('%o is a %s control', (p, control) => {
    expect(fieldFor(p, 'finish').control).toBe(control);
  });

  it('numbers step by 1 (INTEGER) or any amount (NUMBER)', () => {
    expect(fieldFor(param({ name: 'n', type: 'INTEGER' }), 'finish')).toMatchObject({ step: '1', inputMode: 'numeric' });
    expect(fieldFor(param({ name: 'x', type: 'NUMBER' }), 'finish')).toMatchObject({ step: 'any', inputMode: 'decimal' });
  });

  it('a from parameter is not editable and says which step gives it', () => {
    const field = fieldFor(param({ name: 'ip', type: 'IP', from: 'port-open.ip', description: 'The address.' }), 'finish');
    expect(field).toMatchObject({ control: 'from', fromStep: 'port-open', required: false });
    expect(field.hints.join(' ')).toMatch(/The address\. Comes from step port-open \(its output ip\)/);
    expect(initialValues([field])).toEqual({});
    expect(paramsFrom([field], { ip: '1.2.3.4' })).toEqual({});
  });

  it('a choice list is a select of its values, the default chosen', () => {
    const field = fieldFor(param({ name: 'n', type: 'INTEGER', choices: [1, 2, 3], default: 2 }), 'finish');
    expect(field.options).toEqual([
      { value: '', label: 'Default (2)' },
      { value: '0', label: '1' },
      { value: '1', label: '2' },
      { value: '2', label: '3' },
    ]);
    expect(field.initial).toBe('1');
    // The declared value is sent, with its type (a number here).
    expect(paramsFrom([field], { n: '2' })).toEqual({ n: 3 });
    expect(paramsFrom([field], { n: '' })).toEqual({});
  });

  it('a pattern goes on the input only if a browser can read it (v flag)', () => {
    expect(fieldFor(param({ name: 't', type: 'STRING', pattern: '[A-Z]+-[0-9]+' }), 'finish').pattern).toBe('[A-Z]+-[0-9]+');
    // Valid for the service (u flag), not for the browser's pattern attribute (v flag).
    expect(htmlPattern('[a-z-(]+')).toBeUndefined();
    const field = fieldFor(param({ name: 't', type: 'STRING', pattern: '[a-z-(]+' }), 'finish');
    expect(field.pattern).toBeUndefined();
    expect(field.hints).toContain('Must match the pattern [a-z-(]+ in full.');
  });
});

describe('required and prefilled', () => {
  it('a waiting track must be given what has no default, or is required', () => {
    const fields = fieldsFor(
      [
        param({ name: 'a', type: 'STRING' }),
        param({ name: 'b', type: 'STRING', default: 'x' }),
        param({ name: 'c', type: 'STRING', default: 'x', required: true }),
      ],
      'finish',
    );
    expect(fields.map((f) => f.required)).toEqual([true, false, true]);
    // A required parameter's default is shown, not filled in: submitting it untouched
    // would count as given.
    expect(initialValues(fields)).toEqual({ a: '', b: 'x', c: '' });
    expect(fields[2]).toMatchObject({ placeholder: 'x' });
  });

  it('nothing is required at start: what is left empty is asked for when the step waits', () => {
    const fields = fieldsFor([param({ name: 'a', type: 'STRING' }), param({ name: 'c', type: 'INTEGER', default: 4, required: true })], 'start');
    expect(fields.map((f) => f.required)).toEqual([false, false]);
    expect(fields[0]!.hints).toContain('Leave it empty to give it when the step waits for input.');
  });

  it('a secret is a password field with nothing filled in, not even its default', () => {
    const field = fieldFor(param({ name: 'pw', type: 'STRING', secret: true, default: 'hunter2' }), 'finish');
    expect(field).toMatchObject({ control: 'password', initial: '' });
    expect(field.placeholder).toBeUndefined();
    expect(JSON.stringify(field)).not.toContain('hunter2');
  });

  it('a boolean the start may leave out is a select that can say "not given"', () => {
    const field = fieldFor(param({ name: 'go', type: 'BOOLEAN', required: true }), 'start');
    expect(field.control).toBe('select');
    expect(paramsFrom([field], { go: '' })).toEqual({});
    expect(paramsFrom([field], { go: 'false' })).toEqual({ go: false });
    expect(fieldFor(param({ name: 'go', type: 'BOOLEAN', default: true }), 'start')).toMatchObject({ control: 'checkbox', initial: true });
  });
});

describe('values sent', () => {
  const fields = fieldsFor(
    [
      param({ name: 'n', type: 'INTEGER' }),
      param({ name: 'x', type: 'NUMBER' }),
      param({ name: 's', type: 'STRING' }),
      param({ name: 'b', type: 'BOOLEAN' }),
    ],
    'finish',
  );

  it('numbers that parse are numbers; empty fields are left out; a checkbox is always sent', () => {
    expect(paramsFrom(fields, { n: '42', x: '-1.5e3', s: '', b: false })).toEqual({ n: 42, x: -1500, b: false });
    expect(paramsFrom(fields, { n: '', x: '', s: ' a b ', b: true })).toEqual({ s: ' a b ', b: true });
  });

  it('what does not parse is sent as typed: the server judges it and names the field', () => {
    expect(paramsFrom(fields, { n: '1.5', x: '0x10' })).toMatchObject({ n: '1.5', x: '0x10' });
  });
});

describe('server errors at their field', () => {
  it('finishInput names params.<name>', () => {
    expect(paramAt('params.ticket', 'params')).toBe('ticket');
    expect(paramAt('params', 'params')).toBeUndefined();
    expect(paramAt('trackId', 'params')).toBeUndefined();
  });

  it('startPipeline names inputs.<index>.params.<name>, the index of the inputs sent', () => {
    const vertices = [
      { name: 'first', fields: fieldsFor([param({ name: 'a', type: 'STRING' })], 'start') },
      { name: 'second', fields: fieldsFor([param({ name: 'ip', type: 'IP' })], 'start') },
    ];
    // Nothing typed for "first": only "second" is sent, as inputs.0.
    const inputs = startInputs(vertices, { first: { a: '' }, second: { ip: 'nope' } });
    expect(inputs).toEqual([{ vertex: 'second', params: { ip: 'nope' } }]);
    expect(startErrorAt('inputs.0.params.ip', inputs)).toEqual({ vertex: 'second', param: 'ip' });
    expect(startErrorAt('inputs.0.vertex', inputs)).toBeUndefined();
    expect(startErrorAt('name', inputs)).toBeUndefined();
  });
});
