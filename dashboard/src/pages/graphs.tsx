/** The graphs, each with its DAG drawn; a graph's name opens its page. */
import { useEffect, useState } from 'preact/hooks';
import { request } from '../api';
import { Dag } from '../dag';
import { graphql } from '../generated';
import type { GraphsQuery } from '../generated/graphql';

const Graphs = graphql(`
  query Graphs {
    graphs {
      id
      name
      desc
      checked
      vertices {
        name
      }
      edges {
        tail {
          name
        }
        head {
          name
        }
      }
    }
  }
`);

export default function GraphsPage() {
  const [graphs, setGraphs] = useState<GraphsQuery['graphs']>();
  const [problem, setProblem] = useState<string>();
  useEffect(() => {
    request(Graphs).then(
      (data) => setGraphs(data.graphs),
      (error: unknown) => setProblem(error instanceof Error ? error.message : String(error)),
    );
  }, []);
  return (
    <main>
      <h1>Graphs</h1>
      {problem && (
        <p role="alert" class="problem">
          {problem}
        </p>
      )}
      {graphs ? <GraphList graphs={graphs} /> : !problem && <p>Loading…</p>}
    </main>
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
