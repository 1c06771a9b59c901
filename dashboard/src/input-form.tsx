/**
 * Forms generated from a vertex's input schema: `ParamsForm` draws one vertex's fields (the
 * start form of the graph page has one per vertex), `TrackInputForm` is a waiting track's
 * whole form, submitting finishInput. The server judges every value (form-fields.ts): its
 * ValidationError names the field, and the message is shown at that input.
 */
import { useEffect, useState } from 'preact/hooks';
import { request } from './api';
import { fieldsFor, initialValues, paramAt, paramsFrom, type Field, type ParamDef, type Values } from './form-fields';
import { graphql } from './generated';
import type { TrackInputFormQuery } from './generated/graphql';
import { allows, useViewer } from './viewer';

export interface ParamsFormProps {
  /** Makes the inputs' ids unique on the page. */
  idPrefix: string;
  fields: readonly Field[];
  values: Values;
  onChange: (name: string, value: string | boolean) => void;
  /** Messages by parameter name (the server's, or the browser's for a number it could not read). */
  errors: Record<string, string>;
  /** Read-only: shown, not editable (a viewer). */
  disabled?: boolean;
}

/** One vertex's parameters, each with its label, hints and error. */
export function ParamsForm({ idPrefix, fields, values, onChange, errors, disabled }: ParamsFormProps) {
  if (fields.length === 0) return <p class="hint">This step takes no parameters.</p>;
  return (
    <div class="params">
      {fields.map((field, i) => {
        const id = `${idPrefix}-${i}`;
        const error = errors[field.name];
        const described = [field.hints.length > 0 && `${id}-hint`, error && `${id}-error`].filter(Boolean).join(' ') || undefined;
        const common = {
          id,
          name: field.name,
          disabled,
          'aria-describedby': described,
          'aria-invalid': error ? ('true' as const) : undefined,
          required: field.required,
        };
        const value = values[field.name] ?? field.initial;
        let control;
        if (field.control === 'from') {
          control = (
            <output id={id} class="from" aria-describedby={described}>
              comes from step {field.fromStep}
            </output>
          );
        } else if (field.control === 'checkbox') {
          control = <input {...common} type="checkbox" checked={value === true} onChange={(e) => onChange(field.name, e.currentTarget.checked)} />;
        } else if (field.control === 'select') {
          control = (
            <select {...common} value={String(value)} onChange={(e) => onChange(field.name, e.currentTarget.value)}>
              {field.options!.map((o) => (
                <option key={o.value} value={o.value}>
                  {o.label}
                </option>
              ))}
            </select>
          );
        } else {
          control = (
            <input
              {...common}
              // Preact's types narrow an input's props by a literal type; the three share these.
              type={field.control as 'text'}
              value={String(value)}
              pattern={field.pattern}
              step={field.step}
              inputMode={field.inputMode}
              placeholder={field.placeholder}
              autoComplete={field.control === 'password' ? 'new-password' : 'off'}
              spellcheck={false}
              onInput={(e) => onChange(field.name, e.currentTarget.value)}
            />
          );
        }
        return (
          <div key={field.name} class={`param ${field.control}`}>
            <label for={id}>
              {field.name}
              {field.required && <span aria-hidden="true"> *</span>}
              <span class="type"> ({field.type.toLowerCase()})</span>
            </label>
            {control}
            {field.hints.length > 0 && (
              <p id={`${id}-hint`} class="hint">
                {field.hints.join(' ')}
              </p>
            )}
            {error && (
              <p id={`${id}-error`} class="problem field-error">
                {error}
              </p>
            )}
          </div>
        );
      })}
    </div>
  );
}

/**
 * The number fields whose text the browser could not read: it reports "" for them, which
 * would silently mean "not given", so they are named instead of sent.
 */
export function unreadable(form: HTMLFormElement, idPrefix: string, fields: readonly Field[]): Record<string, string> {
  const found: Record<string, string> = {};
  fields.forEach((f, i) => {
    const input = form.querySelector<HTMLInputElement>(`#${CSS.escape(`${idPrefix}-${i}`)}`);
    if (f.control === 'number' && input?.validity.badInput) found[f.name] = `This is not a number: type digits only${f.type === 'NUMBER' ? ' (with a "." for decimals)' : ''}.`;
  });
  return found;
}

/** What a form needs of each parameter: spread it into a vertex's inputs. */
export const FormInputParamFields = graphql(`
  fragment FormInputParam on InputParam {
    name
    type
    required
    default
    choices
    pattern
    secret
    description
    from
  }
`);

const TrackInput = graphql(`
  query TrackInputForm($id: Int!) {
    track(id: $id) {
      id
      name
      state
      needsInput
      blockedBy {
        kind
        message
        missingParams
      }
      vertex {
        inputs {
          ...FormInputParam
        }
      }
    }
  }
`);

const FinishInput = graphql(`
  mutation FinishInputForm($trackId: Int!, $params: JSON!) {
    finishInput(trackId: $trackId, params: $params) {
      __typename
      ... on Track {
        id
        state
        needsInput
      }
      ... on Error {
        field
        message
      }
    }
  }
`);

type LoadedTrack = NonNullable<TrackInputFormQuery['track']>;

/** The form for a track's parameters, generated from its input schema; submitting runs finishInput. */
export function TrackInputForm({ trackId, onDone }: { trackId: number; onDone?: () => void }) {
  const { role } = useViewer();
  const [track, setTrack] = useState<LoadedTrack | null>();
  const [problem, setProblem] = useState<string>();
  useEffect(() => {
    request(TrackInput, { id: trackId }).then(
      (data) => setTrack(data.track),
      (error: unknown) => setProblem(error instanceof Error ? error.message : String(error)),
    );
  }, [trackId]);
  if (problem)
    return (
      <p role="alert" class="problem">
        {problem}
      </p>
    );
  if (track === undefined) return <p>Loading the form…</p>;
  if (track === null) return <p>This track no longer exists (its run was deleted).</p>;
  if (!track.needsInput)
    return (
      <p class="hint">
        {track.name} has its inputs (it is {track.state.toLowerCase()}): nothing to supply.
      </p>
    );
  return <LoadedForm track={track} canSubmit={allows(role, 'operator')} role={role} onDone={onDone} />;
}

function LoadedForm({ track, canSubmit, role, onDone }: { track: LoadedTrack; canSubmit: boolean; role: string; onDone: (() => void) | undefined }) {
  const [fields] = useState(() => fieldsFor(track.vertex.inputs as ParamDef[], 'finish'));
  const [values, setValues] = useState<Values>(() => initialValues(fields));
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [formProblem, setFormProblem] = useState<string>();
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState<string>();
  const idPrefix = `track-${track.id}`;
  const missing = track.blockedBy?.missingParams ?? [];

  const submit = async (event: Event) => {
    event.preventDefault();
    const bad = unreadable(event.currentTarget as HTMLFormElement, idPrefix, fields);
    setErrors(bad);
    setFormProblem(undefined);
    if (Object.keys(bad).length > 0) return;
    setBusy(true);
    try {
      const { finishInput: result } = await request(FinishInput, { trackId: track.id, params: paramsFrom(fields, values) });
      if (result.__typename === 'Track') {
        // Secrets typed here are not kept once the server has them.
        setValues(initialValues(fields));
        setDone(`Inputs supplied: ${track.name} is ${result.state.toLowerCase()}${result.state === 'WAITING' ? ' (it runs when its predecessors succeed)' : ''}.`);
        onDone?.();
      } else {
        const param = paramAt(result.field, 'params');
        if (param && fields.some((f) => f.name === param)) setErrors({ [param]: result.message });
        else setFormProblem(result.message);
      }
    } catch (error) {
      setFormProblem(error instanceof Error ? error.message : String(error));
    } finally {
      setBusy(false);
    }
  };

  if (done)
    return (
      <p role="status" class="done">
        {done}
      </p>
    );
  return (
    <form class="input-form" noValidate onSubmit={submit} aria-label={`Inputs of ${track.name}`}>
      {missing.length > 0 && <p class="hint">Needed: {missing.join(', ')}. Fields marked * must be filled.</p>}
      {!canSubmit && <p class="hint">Your role ({role}) may look, not supply inputs: an operator's token can.</p>}
      <fieldset disabled={!canSubmit || busy}>
        <legend class="visually-hidden">Parameters of {track.name}</legend>
        <ParamsForm idPrefix={idPrefix} fields={fields} values={values} errors={errors} disabled={!canSubmit} onChange={(name, value) => setValues((v) => ({ ...v, [name]: value }))} />
      </fieldset>
      {formProblem && (
        <p role="alert" class="problem">
          {formProblem}
        </p>
      )}
      {canSubmit && (
        <button type="submit" disabled={busy}>
          {busy ? 'Sending…' : 'Supply inputs'}
        </button>
      )}
    </form>
  );
}
