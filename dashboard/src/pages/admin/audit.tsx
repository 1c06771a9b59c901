/**
 * The audit log (admin): every change, newest first, filtered by action and actor, paged
 * back with "Older entries" (auditLog's `after` cursor). The filters live in the address
 * (?action=…&actor=…), so a filtered view can be reloaded and shared.
 */
import { useEffect, useState } from 'preact/hooks';
import { useLocation, useRoute } from 'preact-iso';
import { request } from '../../api';
import { graphql } from '../../generated';
import type { AdminAuditLogQuery } from '../../generated/graphql';
import { AdminPage, messageOf, useLoad, When } from './common';

const AuditLog = graphql(`
  query AdminAuditLog($action: String, $actor: String, $after: Int, $first: Int) {
    auditLog(action: $action, actor: $actor, after: $after, first: $first) {
      id
      at
      actor
      tokenId
      action
      targetType
      targetId
      details
    }
  }
`);

type Entry = AdminAuditLogQuery['auditLog'][number];

const PAGE = 50;

/** The mutations the trail records (src/schema/audit.ts), offered as the action filter's suggestions. */
const ACTIONS = [
  'createGraph', 'importGraph', 'updateGraph', 'deleteGraph', 'cloneGraph', 'checkGraph',
  'addVertex', 'updateVertex', 'deleteVertex', 'addEdge', 'deleteEdge',
  'startPipeline', 'cancelPipeline', 'retryPipeline', 'deletePipeline', 'finishInput',
  'createSchedule', 'updateSchedule', 'deleteSchedule',
  'createToken', 'revokeToken',
  'createWebhook', 'updateWebhook', 'deleteWebhook', 'redeliverWebhookDelivery',
  'retention',
];

/** Where the dashboard shows what an entry acted on, when it has a page for it. */
function targetHref(type: string, id: number): string | undefined {
  switch (type) {
    case 'graph':
      return `/graphs/${id}`;
    case 'pipeline':
      return `/runs/${id}`;
    case 'track':
      return `/tracks/${id}`;
    case 'webhook':
      return `/admin/webhooks/${id}`;
    default:
      return undefined;
  }
}

export default function AuditPage() {
  const { query } = useRoute();
  const { route } = useLocation();
  const action = query.action ?? '';
  const actor = query.actor ?? '';
  const filters = { ...(action && { action }), ...(actor && { actor }) };
  const first = useLoad(() => request(AuditLog, { ...filters, first: PAGE }).then((data) => data.auditLog), `${action}\n${actor}`);
  const [older, setOlder] = useState<Entry[]>([]);
  const [end, setEnd] = useState(false);
  const [problem, setProblem] = useState<string>();
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    setOlder([]);
    setEnd(false);
    setProblem(undefined);
  }, [action, actor]);

  const page = first.current ? first.data : undefined;
  const entries = [...(page ?? []), ...older];
  const more = page !== undefined && page.length === PAGE && !end;
  const loadOlder = async () => {
    setBusy(true);
    try {
      const next = (await request(AuditLog, { ...filters, first: PAGE, after: entries[entries.length - 1]!.id })).auditLog;
      setOlder((now) => [...now, ...next]);
      if (next.length < PAGE) setEnd(true);
    } catch (error) {
      setProblem(`Older entries could not be read: ${messageOf(error)}`);
    } finally {
      setBusy(false);
    }
  };

  return (
    <AdminPage title="Audit log" problem={first.problem}>
      {/* Not for a caller who may not read the log (the role message says why). */}
      {!first.problem && (
        <Filters
          action={action}
          actor={actor}
          onApply={(next) => {
            const params = new URLSearchParams(Object.entries(next).filter(([, value]) => value !== ''));
            const search = params.toString();
            route(`/admin/audit${search ? `?${search}` : ''}`);
          }}
        />
      )}
      {page && (
        <>
          <p role="status" class="hint">
            {entries.length === 0
              ? `No entries${action || actor ? ' match these filters' : ' yet'}.`
              : `${entries.length} ${entries.length === 1 ? 'entry' : 'entries'}${more ? ' so far' : ''}, newest first${action || actor ? ', filtered' : ''}.`}
          </p>
          {entries.length > 0 && <AuditTable entries={entries} />}
          {problem && (
            <p role="alert" class="problem">
              {problem}
            </p>
          )}
          {more ? (
            <button type="button" disabled={busy} onClick={() => void loadOlder()}>
              Older entries
            </button>
          ) : (
            entries.length > 0 && <p class="hint">No older entries.</p>
          )}
        </>
      )}
      {!page && !first.problem && <p>Loading…</p>}
    </AdminPage>
  );
}

function Filters({ action, actor, onApply }: { action: string; actor: string; onApply: (filters: { action: string; actor: string }) => void }) {
  const [nextAction, setAction] = useState(action);
  const [nextActor, setActor] = useState(actor);
  // Follows the address (back, forward, a link).
  useEffect(() => setAction(action), [action]);
  useEffect(() => setActor(actor), [actor]);
  return (
    <form
      class="filters"
      aria-label="Filter the audit log"
      onSubmit={(event) => {
        event.preventDefault();
        onApply({ action: nextAction.trim(), actor: nextActor.trim() });
      }}
    >
      <div class="field">
        <label for="audit-action">Action</label>
        <input id="audit-action" list="audit-actions" autocomplete="off" placeholder="e.g. startPipeline" value={nextAction} onInput={(e) => setAction(e.currentTarget.value)} />
        <datalist id="audit-actions">
          {ACTIONS.map((a) => (
            <option key={a} value={a} />
          ))}
        </datalist>
      </div>
      <div class="field">
        <label for="audit-actor">Actor</label>
        <input id="audit-actor" autocomplete="off" aria-describedby="audit-actor-hint" value={nextActor} onInput={(e) => setActor(e.currentTarget.value)} />
        <p id="audit-actor-hint" class="hint">
          The name of the token used, exactly.
        </p>
      </div>
      <div class="buttons">
        <button type="submit">Filter</button>
        {(action || actor) && (
          <button type="button" onClick={() => onApply({ action: '', actor: '' })}>
            Show all
          </button>
        )}
      </div>
    </form>
  );
}

function AuditTable({ entries }: { entries: Entry[] }) {
  return (
    <table class="admin-table audit">
      <caption>Recorded changes</caption>
      <thead>
        <tr>
          <th scope="col">#</th>
          <th scope="col">When</th>
          <th scope="col">Actor</th>
          <th scope="col">Action</th>
          <th scope="col">Target</th>
          <th scope="col">Details</th>
        </tr>
      </thead>
      <tbody>
        {entries.map((entry) => {
          const href = entry.targetId !== null && entry.targetId !== undefined ? targetHref(entry.targetType, entry.targetId) : undefined;
          return (
            <tr key={entry.id} data-testid={`audit-${entry.id}`} data-action={entry.action}>
              <td>{entry.id}</td>
              <td>
                <When at={entry.at} />
              </td>
              <td>
                {entry.actor}
                {entry.tokenId !== null && entry.tokenId !== undefined && <span class="hint"> (token {entry.tokenId})</span>}
              </td>
              <th scope="row">
                <code>{entry.action}</code>
              </th>
              <td>
                {entry.targetType}
                {entry.targetId !== null && entry.targetId !== undefined && (
                  <>
                    {' '}
                    {href ? <a href={href}>{entry.targetId}</a> : entry.targetId}
                  </>
                )}
              </td>
              <td>
                <Details details={entry.details} />
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

/**
 * The recorded arguments, one per line: nested objects spread into dotted names (an
 * update's `input.enabled`), plain values as they are, lists as JSON.
 */
function Details({ details }: { details: unknown }) {
  if (!isRecord(details)) return <code>{JSON.stringify(details)}</code>;
  const fields = flatten(details);
  if (fields.length === 0) return <span class="never">none</span>;
  return (
    <dl class="details">
      {fields.map(([key, value]) => (
        <div key={key}>
          <dt>{key}</dt>
          <dd>
            <code>{typeof value === 'string' ? value : JSON.stringify(value)}</code>
          </dd>
        </div>
      ))}
    </dl>
  );
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function flatten(record: Record<string, unknown>, prefix = ''): [string, unknown][] {
  return Object.entries(record).flatMap(([key, value]) =>
    isRecord(value) && Object.keys(value).length > 0 ? flatten(value, `${prefix}${key}.`) : [[`${prefix}${key}`, value] as [string, unknown]],
  );
}
