/**
 * A graph: its definition (YAML or JSON, to copy into git), its DAG, its runs (by state,
 * newest first, older ones a page at a time), its schedules, and Start with the parameters
 * of each vertex (an operator's; only a checked graph starts).
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { useLocation, useRoute } from 'preact-iso';
import { request } from '../api';
import { Dag } from '../dag';
import { fieldsFor, initialValues, startErrorAt, startInputs, type Field, type ParamDef, type Values } from '../form-fields';
import { graphql } from '../generated';
import type { DefinitionFormat, GraphPageQuery, GraphRunsQuery, PipelineState } from '../generated/graphql';
import { ParamsForm, unreadable } from '../input-form';
import { Action } from '../viewer';

const GraphPageDocument = graphql(`
  query GraphPage($id: Int!, $format: DefinitionFormat) {
    graph(id: $id) {
      id
      name
      desc
      checked
      sealed
      maxConcurrentPipelines
      definition(format: $format)
      ...DagGraph
      vertices {
        id
        name
        inputs {
          ...FormInputParam
        }
      }
      schedules {
        id
        name
        cron
        timeZone
        paused
        nextRunAt
        lastTickAt
        overlap
      }
    }
  }
`);

const GraphRuns = graphql(`
  query GraphRuns($graphId: Int!, $state: PipelineState, $first: Int, $after: Int) {
    pipelines(graphId: $graphId, state: $state, first: $first, after: $after) {
      id
      name
      state
      createdAt
      finishedAt
    }
  }
`);

const StartRun = graphql(`
  mutation StartRun($graphId: Int!, $name: String, $desc: String, $inputs: [VertexParams!]) {
    startPipeline(graphId: $graphId, name: $name, desc: $desc, inputs: $inputs) {
      __typename
      ... on Pipeline {
        id
      }
      ... on Error {
        field
        message
      }
    }
  }
`);

type Graph = NonNullable<GraphPageQuery['graph']>;
type Run = GraphRunsQuery['pipelines'][number];

/** Runs a page: small enough to read, and "Older runs" fetches the next. */
export const RUNS_PAGE = 10;
const STATES: PipelineState[] = ['RUNNING', 'QUEUED', 'FINISH', 'FAILED', 'CANCELLED'];

const message = (error: unknown) => (error instanceof Error ? error.message : String(error));
const when = (iso: string | null | undefined) => (iso ? new Date(iso).toLocaleString() : '—');

export default function GraphPage() {
  const { params } = useRoute();
  const id = Number(params.id);
  const [format, setFormat] = useState<DefinitionFormat>('YAML');
  const [graph, setGraph] = useState<Graph | null>();
  const [problem, setProblem] = useState<string>();
  useEffect(() => {
    if (!Number.isSafeInteger(id)) return setGraph(null);
    // An answer for the format (or graph) before the latest is dropped.
    let current = true;
    request(GraphPageDocument, { id, format }).then(
      (data) => current && setGraph(data.graph),
      (error: unknown) => current && setProblem(message(error)),
    );
    return () => {
      current = false;
    };
  }, [id, format]);

  if (problem)
    return (
      <main>
        <h1>Graph</h1>
        <p role="alert" class="problem">
          {problem}
        </p>
      </main>
    );
  if (graph === undefined)
    return (
      <main>
        <p>Loading…</p>
      </main>
    );
  if (graph === null)
    return (
      <main>
        <h1>Graph not found</h1>
        <p>
          There is no graph {params.id}. <a href="/">Go to the graphs.</a>
        </p>
      </main>
    );
  return (
    <main class="graph-page">
      <h1>{graph.name}</h1>
      {graph.desc && <p>{graph.desc}</p>}
      <p class="hint">
        {graph.checked ? 'Checked' : 'Not checked'}
        {graph.sealed ? ', sealed (a run started from it: it no longer changes)' : ''}
        {graph.maxConcurrentPipelines != null ? `; at most ${graph.maxConcurrentPipelines} runs at once` : ''}.
      </p>
      <StartSection graph={graph} />
      <section aria-labelledby="dag-heading">
        <h2 id="dag-heading">DAG</h2>
        <div class="dag-box">
          <Dag label={`The DAG of ${graph.name}`} vertices={graph.vertices} edges={graph.edges} />
        </div>
      </section>
      <Runs graphId={graph.id} />
      <Schedules schedules={graph.schedules} />
      <Definition text={graph.definition} format={format} onFormat={setFormat} />
    </main>
  );
}

function Definition({ text, format, onFormat }: { text: string; format: DefinitionFormat; onFormat: (f: DefinitionFormat) => void }) {
  const [copied, setCopied] = useState<string>();
  const copy = () => {
    navigator.clipboard.writeText(text).then(
      () => setCopied('Copied.'),
      () => setCopied('The browser did not allow copying: select the text and copy it.'),
    );
  };
  return (
    <section aria-labelledby="definition-heading">
      <h2 id="definition-heading">Definition</h2>
      <p class="hint">The whole graph as a file, for git: importGraph (or pipectl apply) reads it back.</p>
      <div class="definition-tools">
        <label for="definition-format">Format</label>
        <select id="definition-format" value={format} onChange={(e) => onFormat(e.currentTarget.value as DefinitionFormat)}>
          <option value="YAML">YAML</option>
          <option value="JSON">JSON</option>
        </select>
        <button type="button" onClick={copy}>
          Copy
        </button>
        <span role="status">{copied}</span>
      </div>
      <label for="definition" class="visually-hidden">
        Definition ({format})
      </label>
      <textarea id="definition" class="definition" readOnly rows={Math.min(30, text.split('\n').length + 1)} value={text} spellcheck={false} />
    </section>
  );
}

function Runs({ graphId }: { graphId: number }) {
  const [state, setState] = useState<PipelineState | ''>('');
  const [runs, setRuns] = useState<Run[]>();
  const [more, setMore] = useState(false);
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<string>();

  // A filter changed while a page was read: only the latest read may fill the list.
  const latest = useRef(0);
  // One more than a page tells whether an older page exists, without an empty last page.
  const load = (after: number | undefined, previous: Run[]) => {
    const read = ++latest.current;
    setBusy(true);
    request(GraphRuns, { graphId, state: state || null, first: RUNS_PAGE + 1, after: after ?? null }).then(
      (data) => {
        if (read !== latest.current) return;
        setRuns([...previous, ...data.pipelines.slice(0, RUNS_PAGE)]);
        setMore(data.pipelines.length > RUNS_PAGE);
        setProblem(undefined);
        setBusy(false);
      },
      (error: unknown) => {
        if (read !== latest.current) return;
        setProblem(message(error));
        setBusy(false);
      },
    );
  };
  useEffect(() => load(undefined, []), [graphId, state]);

  return (
    <section aria-labelledby="runs-heading">
      <h2 id="runs-heading">Runs</h2>
      <div class="filters">
        <label for="runs-state">State</label>
        <select id="runs-state" value={state} onChange={(e) => setState(e.currentTarget.value as PipelineState | '')}>
          <option value="">All</option>
          {STATES.map((s) => (
            <option key={s} value={s}>
              {s.toLowerCase()}
            </option>
          ))}
        </select>
      </div>
      {problem && (
        <p role="alert" class="problem">
          {problem}
        </p>
      )}
      {runs === undefined ? (
        <p>Loading…</p>
      ) : runs.length === 0 ? (
        <p>{state ? `No ${state.toLowerCase()} runs.` : 'No runs yet.'}</p>
      ) : (
        <table class="runs">
          <thead>
            <tr>
              <th scope="col">Run</th>
              <th scope="col">State</th>
              <th scope="col">Started</th>
              <th scope="col">Ended</th>
            </tr>
          </thead>
          <tbody>
            {runs.map((run) => (
              <tr key={run.id} data-testid={`run-${run.id}`} data-state={run.state}>
                <td>
                  <a href={`/runs/${run.id}`}>
                    #{run.id} {run.name}
                  </a>
                </td>
                <td>
                  <span class={`badge state-${run.state}`}>{run.state.toLowerCase()}</span>
                </td>
                <td>{when(run.createdAt)}</td>
                <td>{when(run.finishedAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {more && runs && (
        <button type="button" disabled={busy} onClick={() => load(runs.at(-1)?.id, runs)}>
          Older runs
        </button>
      )}
    </section>
  );
}

function Schedules({ schedules }: { schedules: Graph['schedules'] }) {
  return (
    <section aria-labelledby="schedules-heading">
      <h2 id="schedules-heading">Schedules</h2>
      {schedules.length === 0 ? (
        <p>No schedules. A definition's schedules key (or createSchedule) adds them.</p>
      ) : (
        <table class="schedules">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Cron</th>
              <th scope="col">Time zone</th>
              <th scope="col">Next tick</th>
              <th scope="col">Last tick</th>
              <th scope="col">While the last run runs</th>
            </tr>
          </thead>
          <tbody>
            {schedules.map((s) => (
              <tr key={s.id} data-testid={`schedule-${s.name}`}>
                <td>{s.name}</td>
                <td>
                  <code>{s.cron}</code>
                </td>
                <td>{s.timeZone}</td>
                <td>{s.paused ? 'paused' : when(s.nextRunAt)}</td>
                <td>{when(s.lastTickAt)}</td>
                <td>{{ ALLOW: 'start another', QUEUE: 'queue', SKIP: 'skip the tick' }[s.overlap]}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

interface VertexFields {
  name: string;
  fields: Field[];
}

function StartSection({ graph }: { graph: Graph }) {
  const [open, setOpen] = useState(false);
  return (
    <section aria-labelledby="start-heading" class="start">
      <h2 id="start-heading" class="visually-hidden">
        Start
      </h2>
      {!open && (
        <Action
          id="start"
          need="operator"
          unavailable={graph.checked ? undefined : 'Run checkGraph first: only a checked graph starts (pipectl apply checks it too; it needs an admin).'}
          onClick={() => setOpen(true)}
        >
          Start
        </Action>
      )}
      {open && <StartForm graph={graph} onCancel={() => setOpen(false)} />}
    </section>
  );
}

function StartForm({ graph, onCancel }: { graph: Graph; onCancel: () => void }) {
  const { route } = useLocation();
  const [vertices] = useState<VertexFields[]>(() => graph.vertices.map((v) => ({ name: v.name, fields: fieldsFor(v.inputs as ParamDef[], 'start') })));
  const [values, setValues] = useState<Record<string, Values>>(() => Object.fromEntries(vertices.map((v) => [v.name, initialValues(v.fields)])));
  const [name, setName] = useState('');
  const [desc, setDesc] = useState('');
  const [errors, setErrors] = useState<Record<string, Record<string, string>>>({});
  const [formErrors, setFormErrors] = useState<{ name?: string; desc?: string; other?: string }>({});
  const [busy, setBusy] = useState(false);

  const submit = async (event: Event) => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    const bad = Object.fromEntries(vertices.map((v, i) => [v.name, unreadable(form, `start-${i}`, v.fields)]).filter(([, e]) => Object.keys(e as object).length > 0));
    setErrors(bad);
    setFormErrors({});
    if (Object.keys(bad).length > 0) return;
    setBusy(true);
    const inputs = startInputs(vertices, values);
    try {
      const { startPipeline: result } = await request(StartRun, { graphId: graph.id, name: name.trim() || null, desc: desc.trim() || null, inputs });
      if (result.__typename === 'Pipeline') {
        route(`/runs/${result.id}`);
        return;
      }
      const at = startErrorAt(result.field, inputs);
      if (at && vertices.some((v) => v.name === at.vertex && v.fields.some((f) => f.name === at.param))) setErrors({ [at.vertex]: { [at.param]: result.message } });
      else if (result.field === 'name' || result.field === 'desc') setFormErrors({ [result.field]: result.message });
      else setFormErrors({ other: result.message });
    } catch (error) {
      setFormErrors({ other: message(error) });
    }
    setBusy(false);
  };

  return (
    <form class="start-form" noValidate onSubmit={submit} aria-labelledby="start-form-heading">
      <h2 id="start-form-heading">Start {graph.name}</h2>
      <p class="hint">Nothing is needed up front: a step whose parameters are left empty waits for them on the Waiting for input page.</p>
      <fieldset disabled={busy}>
        <legend>Run</legend>
        <label for="start-name">Name</label>
        <input id="start-name" value={name} placeholder={graph.name} maxLength={48} aria-invalid={formErrors.name ? 'true' : undefined} aria-describedby={formErrors.name ? 'start-name-error' : undefined} onInput={(e) => setName(e.currentTarget.value)} />
        {formErrors.name && (
          <p id="start-name-error" class="problem field-error">
            {formErrors.name}
          </p>
        )}
        <label for="start-desc">Description</label>
        <input id="start-desc" value={desc} placeholder={graph.desc ?? ''} maxLength={100} aria-invalid={formErrors.desc ? 'true' : undefined} aria-describedby={formErrors.desc ? 'start-desc-error' : undefined} onInput={(e) => setDesc(e.currentTarget.value)} />
        {formErrors.desc && (
          <p id="start-desc-error" class="problem field-error">
            {formErrors.desc}
          </p>
        )}
      </fieldset>
      {vertices.map((v, i) => (
        <fieldset key={v.name} disabled={busy} data-testid={`start-vertex-${v.name}`}>
          <legend>Step {v.name}</legend>
          <ParamsForm
            idPrefix={`start-${i}`}
            fields={v.fields}
            values={values[v.name] ?? {}}
            errors={errors[v.name] ?? {}}
            onChange={(param, value) => setValues((all) => ({ ...all, [v.name]: { ...all[v.name], [param]: value } }))}
          />
        </fieldset>
      ))}
      {formErrors.other && (
        <p role="alert" class="problem">
          {formErrors.other}
        </p>
      )}
      <div class="buttons">
        <button type="submit" disabled={busy}>
          {busy ? 'Starting…' : 'Start the run'}
        </button>
        <button type="button" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}
