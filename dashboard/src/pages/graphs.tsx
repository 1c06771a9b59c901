/**
 * The graphs, each with its DAG drawn; a graph's name opens its page. An admin imports a
 * graph here from a definition file (as `pipectl apply` does: importGraph, then checkGraph).
 */
import { useEffect, useState } from 'preact/hooks';
import { request } from '../api';
import { Dag } from '../dag';
import { graphql } from '../generated';
import type { GraphsQuery } from '../generated/graphql';
import { allows, useViewer } from '../viewer';

const Graphs = graphql(`
  query Graphs {
    graphs {
      id
      name
      desc
      checked
      ...DagGraph
    }
  }
`);

const ImportGraph = graphql(`
  mutation DashboardImportGraph($definition: String!, $format: DefinitionFormat, $name: String) {
    importGraph(definition: $definition, format: $format, name: $name) {
      __typename
      ... on Graph {
        id
        name
      }
      ... on Error {
        field
        message
      }
    }
  }
`);

const CheckGraph = graphql(`
  mutation DashboardCheckGraph($id: Int!) {
    checkGraph(id: $id) {
      __typename
      ... on Graph {
        id
        checked
      }
      ... on Error {
        field
        message
      }
    }
  }
`);

export default function GraphsPage() {
  const { role } = useViewer();
  const [graphs, setGraphs] = useState<GraphsQuery['graphs']>();
  const [problem, setProblem] = useState<string>();
  const load = () =>
    request(Graphs).then(
      (data) => setGraphs(data.graphs),
      (error: unknown) => setProblem(error instanceof Error ? error.message : String(error)),
    );
  useEffect(() => void load(), []);
  return (
    <main>
      <h1>Graphs</h1>
      {problem && (
        <p role="alert" class="problem">
          {problem}
        </p>
      )}
      {graphs ? <GraphList graphs={graphs} /> : !problem && <p>Loading…</p>}
      {allows(role, 'admin') && <ImportForm onImported={load} />}
    </main>
  );
}

interface FieldProblem {
  field: string;
  message: string;
}

/** JSON when it looks like JSON; the service reads anything else as YAML (its default). */
function formatOf(text: string, fileName: string | undefined) {
  if (fileName?.toLowerCase().endsWith('.json') || text.trimStart().startsWith('{')) return 'JSON' as const;
  return undefined;
}

/** A definition file (examples/*.yaml, or Graph.definition of another service) into a checked graph. */
function ImportForm({ onImported }: { onImported: () => void }) {
  const [definition, setDefinition] = useState('');
  const [fileName, setFileName] = useState<string>();
  const [name, setName] = useState('');
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<FieldProblem>();
  const [done, setDone] = useState<{ id: number; name: string; checked: boolean; why?: string }>();

  const submit = async () => {
    setBusy(true);
    setProblem(undefined);
    setDone(undefined);
    try {
      const { importGraph } = await request(ImportGraph, { definition, format: formatOf(definition, fileName), name: name.trim() || undefined });
      if (importGraph.__typename !== 'Graph') {
        setProblem({ field: importGraph.field, message: importGraph.message });
        return;
      }
      const { checkGraph } = await request(CheckGraph, { id: importGraph.id });
      setDone({ id: importGraph.id, name: importGraph.name, checked: checkGraph.__typename === 'Graph', ...(checkGraph.__typename !== 'Graph' && { why: checkGraph.message }) });
      setDefinition('');
      setFileName(undefined);
      setName('');
      onImported();
    } catch (error) {
      setProblem({ field: '', message: error instanceof Error ? error.message : String(error) });
    } finally {
      setBusy(false);
    }
  };

  // The service names the argument at fault: "name", or a path in the definition
  // ("definition.vertices.0.inputs.ip.type"; a cycle: "edges"). A failure to reach the
  // service has no field.
  const at = (field: 'definition' | 'name') => {
    if (!problem || problem.field === '') return undefined;
    return (problem.field === 'name') === (field === 'name') ? problem : undefined;
  };
  const elsewhere = problem?.field === '' ? problem : undefined;
  return (
    <section class="import" aria-labelledby="import-heading">
      <h2 id="import-heading">Import a graph</h2>
      <form
        onSubmit={(event) => {
          event.preventDefault();
          void submit();
        }}
      >
        <label for="definition-file">Definition file (YAML or JSON)</label>
        <input
          id="definition-file"
          type="file"
          accept=".yaml,.yml,.json,application/json,text/yaml"
          onChange={async (event) => {
            const file = event.currentTarget.files?.[0];
            if (!file) return;
            setFileName(file.name);
            setDefinition(await file.text());
          }}
        />
        <label for="definition">Definition</label>
        <textarea
          id="definition"
          rows={10}
          required
          spellcheck={false}
          value={definition}
          onInput={(event) => setDefinition(event.currentTarget.value)}
          aria-invalid={at('definition') ? true : undefined}
          aria-describedby={at('definition') ? 'definition-problem' : 'definition-hint'}
        />
        {at('definition') ? (
          <p id="definition-problem" class="problem">
            {at('definition')?.field !== 'definition' && <code>{at('definition')?.field}</code>} {at('definition')?.message}
          </p>
        ) : (
          <p id="definition-hint" class="hint">
            As <code>pipectl apply</code> takes it, e.g. <code>examples/web-server-check.yaml</code>; it is checked after the import.
          </p>
        )}
        <label for="import-name">Name (leave empty for the definition's)</label>
        <input id="import-name" value={name} onInput={(event) => setName(event.currentTarget.value)} aria-invalid={at('name') ? true : undefined} aria-describedby={at('name') ? 'import-name-problem' : undefined} />
        {at('name') && (
          <p id="import-name-problem" class="problem">
            {at('name')?.message}
          </p>
        )}
        {elsewhere && (
          <p role="alert" class="problem">
            {elsewhere.message}
          </p>
        )}
        <button type="submit" disabled={busy}>
          Import and check
        </button>
        {done && (
          <p role="status">
            Imported <a href={`/graphs/${done.id}`}>{done.name}</a>
            {done.checked ? ' and checked it: it can be started.' : `, but its check failed: ${done.why}`}
          </p>
        )}
      </form>
    </section>
  );
}

function GraphList({ graphs }: { graphs: GraphsQuery['graphs'] }) {
  if (graphs.length === 0)
    return (
      <p>
        No graphs yet. Import one with <code>pipectl import</code> or the importGraph mutation.
      </p>
    );
  return (
    <ul class="graphs">
      {graphs.map((graph) => (
        <li key={graph.id}>
          <h2>
            <a href={`/graphs/${graph.id}`}>{graph.name}</a>
          </h2>
          {graph.desc && <p>{graph.desc}</p>}
          <Dag label={`The DAG of ${graph.name}`} vertices={graph.vertices} edges={graph.edges} />
        </li>
      ))}
    </ul>
  );
}
