/**
 * Webhooks (admin): `/admin/webhooks` lists them and registers one; `/admin/webhooks/:id`
 * shows one to edit, pause or delete, with its delivery log and Redeliver.
 *
 * The service has no subscription for deliveries, so the log is read again every few
 * seconds, but only while a delivery in view is PENDING (it is about to change); otherwise
 * the Refresh button reads it on demand.
 */
import { useEffect, useState } from 'preact/hooks';
import { useLocation, useRoute } from 'preact-iso';
import { request } from '../../api';
import { graphql } from '../../generated';
import type { WebhookDeliveryState, AdminWebhookLogQuery, AdminWebhooksQuery } from '../../generated/graphql';
import { AdminPage, Confirm, Field, fieldErrors, fieldProps, messageOf, useLoad, When, type FieldErrors, type TypedError } from './common';

const Webhooks = graphql(`
  query AdminWebhooks {
    webhooks {
      id
      url
      events
      hasSecret
      description
      enabled
      createdAt
    }
  }
`);

const WebhookLog = graphql(`
  query AdminWebhookLog($id: Int!, $first: Int, $state: WebhookDeliveryState) {
    webhook(id: $id) {
      id
      url
      events
      hasSecret
      description
      enabled
      createdAt
      deliveries(first: $first, state: $state) {
        id
        deliveryId
        event
        state
        attempts
        statusCode
        durationMs
        error
        responseBody
        payload
        createdAt
        lastAttemptAt
        nextAttemptAt
        deliveredAt
        pipeline {
          id
          name
        }
        track {
          id
          name
        }
      }
    }
  }
`);

const CreateWebhook = graphql(`
  mutation AdminCreateWebhook($url: String!, $events: [String!]!, $secret: String, $description: String, $enabled: Boolean) {
    createWebhook(url: $url, events: $events, secret: $secret, description: $description, enabled: $enabled) {
      __typename
      ... on Webhook {
        id
      }
      ... on Error {
        field
        message
      }
    }
  }
`);

const UpdateWebhook = graphql(`
  mutation AdminUpdateWebhook($id: Int!, $input: WebhookInput!) {
    updateWebhook(id: $id, input: $input) {
      __typename
      ... on Webhook {
        id
      }
      ... on Error {
        field
        message
      }
    }
  }
`);

const DeleteWebhook = graphql(`
  mutation AdminDeleteWebhook($id: Int!) {
    deleteWebhook(id: $id) {
      __typename
      ... on Deleted {
        id
      }
      ... on Error {
        field
        message
      }
    }
  }
`);

const Redeliver = graphql(`
  mutation AdminRedeliverWebhookDelivery($id: Int!) {
    redeliverWebhookDelivery(id: $id) {
      __typename
      ... on WebhookDelivery {
        id
      }
      ... on Error {
        field
        message
      }
    }
  }
`);

/** The events a webhook may want, as createWebhook's documentation lists them. */
const EVENTS: { event: string; when: string }[] = [
  { event: 'pipeline:finished', when: 'a run succeeded' },
  { event: 'pipeline:failed', when: 'a run failed' },
  { event: 'pipeline:cancelled', when: 'a run was cancelled' },
  { event: 'track:failed', when: 'a step failed for the last time' },
  { event: 'track:needs-input', when: 'a step waits for its input' },
];

const FIELDS = ['url', 'events', 'secret', 'description', 'enabled'] as const;
/** How many deliveries the log shows at first, and adds with "Older deliveries". */
const PAGE = 50;
/** The most Webhook.deliveries returns at once. */
const MAX_DELIVERIES = 500;
const POLL_MS = 2_000;

type Hook = AdminWebhooksQuery['webhooks'][number];
type Delivery = NonNullable<AdminWebhookLogQuery['webhook']>['deliveries'][number];

export default function WebhooksPage() {
  const { params } = useRoute();
  return params.id ? <WebhookDetail id={Number(params.id)} /> : <WebhookList />;
}

/** Runs a mutation whose result is `ok` or a typed error; says which, or why it failed. */
async function attempt(run: () => Promise<{ __typename: string } & TypedError>, ok: string): Promise<TypedError | undefined> {
  try {
    const result = await run();
    return result.__typename === ok ? undefined : result;
  } catch (error) {
    return { __typename: 'Error', field: '', message: messageOf(error) };
  }
}

function WebhookList() {
  const hooks = useLoad(() => request(Webhooks).then((data) => data.webhooks), 'webhooks');
  const [problem, setProblem] = useState<string>();
  return (
    <AdminPage title="Webhooks" problem={hooks.problem}>
      {hooks.data && (
        <>
          {problem && (
            <p role="alert" class="problem">
              {problem}
            </p>
          )}
          {hooks.data.length === 0 ? (
            <p>No webhooks yet: register one below.</p>
          ) : (
            <table class="admin-table">
              <caption>Every webhook, oldest first</caption>
              <thead>
                <tr>
                  <th scope="col">URL</th>
                  <th scope="col">Events</th>
                  <th scope="col">Description</th>
                  <th scope="col">Signed</th>
                  <th scope="col">State</th>
                </tr>
              </thead>
              <tbody>
                {hooks.data.map((hook) => (
                  <tr key={hook.id} data-testid={`webhook-${hook.id}`}>
                    <th scope="row">
                      <a href={`/admin/webhooks/${hook.id}`}>{hook.url}</a>
                    </th>
                    <td>{hook.events.join(', ')}</td>
                    <td>{hook.description ?? ''}</td>
                    <td>{hook.hasSecret ? 'yes' : 'no'}</td>
                    <td>
                      <Toggle
                        hook={hook}
                        onDone={(failed) => {
                          setProblem(failed);
                          void hooks.reload();
                        }}
                      />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          <WebhookForm key="new" onSaved={() => void hooks.reload()} />
        </>
      )}
      {!hooks.data && !hooks.problem && <p>Loading…</p>}
    </AdminPage>
  );
}

/** Enabled or paused, and the button that turns it the other way. */
function Toggle({ hook, onDone }: { hook: Pick<Hook, 'id' | 'enabled' | 'url'>; onDone: (problem: string | undefined) => void }) {
  const [busy, setBusy] = useState(false);
  return (
    <span class="toggle">
      <span class={hook.enabled ? 'state-enabled' : 'state-paused'}>{hook.enabled ? 'Enabled' : 'Paused'}</span>{' '}
      <button
        type="button"
        disabled={busy}
        aria-label={`${hook.enabled ? 'Disable' : 'Enable'} the webhook to ${hook.url}`}
        onClick={async () => {
          setBusy(true);
          const failed = await attempt(() => request(UpdateWebhook, { id: hook.id, input: { enabled: !hook.enabled } }).then((r) => r.updateWebhook), 'Webhook');
          setBusy(false);
          onDone(failed && `The webhook was not changed: ${failed.message}`);
        }}
      >
        {hook.enabled ? 'Disable' : 'Enable'}
      </button>
    </span>
  );
}

/**
 * Registers a webhook, or (with `hook`) edits one: then only what changed is sent, and an
 * empty secret keeps the one set.
 */
function WebhookForm({ hook, onSaved }: { hook?: Hook; onSaved: () => void }) {
  const prefix = hook ? `hook-${hook.id}` : 'new-hook';
  const [url, setUrl] = useState(hook?.url ?? '');
  const [events, setEvents] = useState<string[]>(hook?.events ?? []);
  const [secret, setSecret] = useState('');
  const [stopSigning, setStopSigning] = useState(false);
  const [description, setDescription] = useState(hook?.description ?? '');
  const [enabled, setEnabled] = useState(hook?.enabled ?? true);
  const [errors, setErrors] = useState<FieldErrors>({});
  const [saved, setSaved] = useState<string>();
  const [busy, setBusy] = useState(false);
  const id = (field: string) => `${prefix}-${field}`;

  const submit = async () => {
    setBusy(true);
    setErrors({});
    setSaved(undefined);
    // The order the server checks them in: events in the list's order, not the clicks'.
    const wanted = EVENTS.map((e) => e.event).filter((e) => events.includes(e));
    const failed = hook
      ? await attempt(
          () =>
            request(UpdateWebhook, {
              id: hook.id,
              input: {
                ...(url !== hook.url && { url }),
                ...(wanted.join() !== hook.events.join() && { events: wanted }),
                ...(secret !== '' ? { secret } : stopSigning && { secret: null }),
                ...(description !== (hook.description ?? '') && { description }),
              },
            }).then((r) => r.updateWebhook),
          'Webhook',
        )
      : await attempt(
          () =>
            request(CreateWebhook, { url, events: wanted, ...(secret !== '' && { secret }), ...(description !== '' && { description }), enabled }).then(
              (r) => r.createWebhook,
            ),
          'Webhook',
        );
    setBusy(false);
    if (failed) {
      setErrors(fieldErrors(failed, FIELDS));
      return;
    }
    setSecret('');
    setStopSigning(false);
    if (!hook) {
      setUrl('');
      setEvents([]);
      setDescription('');
      setEnabled(true);
    }
    setSaved(hook ? 'Saved.' : 'Webhook registered.');
    onSaved();
  };

  return (
    <form
      class="webhook-form"
      {...(hook ? { 'aria-label': 'Edit the webhook' } : { 'aria-labelledby': id('title') })}
      onSubmit={(event) => {
        event.preventDefault();
        void submit();
      }}
    >
      {/* An edit form sits under its own "Edit" summary. */}
      {!hook && <h2 id={id('title')}>New webhook</h2>}
      <Field
        id={id('url')}
        label="URL"
        hint="The http(s) address deliveries are POSTed to. Its host must resolve to a public address, unless the service's WEBHOOK_ALLOWED_HOSTS lists it."
        error={errors.url}
      >
        <input {...fieldProps(id('url'), true, errors.url)} type="text" inputMode="url" autocomplete="off" required value={url} onInput={(e) => setUrl(e.currentTarget.value)} />
      </Field>
      <fieldset aria-describedby={errors.events ? id('events-error') : undefined} aria-invalid={errors.events ? 'true' : undefined}>
        <legend>Events</legend>
        {EVENTS.map(({ event, when }) => (
          <label key={event} class="check">
            <input
              type="checkbox"
              name={id('events')}
              value={event}
              checked={events.includes(event)}
              onChange={(e) => {
                const checked = e.currentTarget.checked;
                setEvents((now) => (checked ? [...now, event] : now.filter((x) => x !== event)));
              }}
            />{' '}
            <code>{event}</code>: {when}
          </label>
        ))}
        {errors.events && (
          <p id={id('events-error')} class="problem field-error">
            {errors.events}
          </p>
        )}
      </fieldset>
      <Field
        id={id('secret')}
        label={hook?.hasSecret ? 'New signing secret (optional)' : 'Signing secret (optional)'}
        hint={
          <>
            16 to 256 characters, e.g. the output of <code>openssl rand -hex 32</code>. Every delivery is then signed (header X-Dagpipe-Signature-256). It is
            never shown again{hook?.hasSecret ? '; leave it empty to keep the one set' : ''}.
          </>
        }
        error={errors.secret}
      >
        <input {...fieldProps(id('secret'), true, errors.secret)} type="password" autocomplete="new-password" value={secret} onInput={(e) => setSecret(e.currentTarget.value)} />
      </Field>
      {hook?.hasSecret && (
        <label class="check">
          <input type="checkbox" checked={stopSigning} disabled={secret !== ''} onChange={(e) => setStopSigning(e.currentTarget.checked)} /> Stop signing
          deliveries (remove the secret)
        </label>
      )}
      <Field id={id('description')} label="Description (optional)" hint="What it is for, at most 200 characters." error={errors.description}>
        <input {...fieldProps(id('description'), true, errors.description)} maxLength={200} value={description} onInput={(e) => setDescription(e.currentTarget.value)} />
      </Field>
      {!hook && (
        <label class="check">
          <input type="checkbox" checked={enabled} onChange={(e) => setEnabled(e.currentTarget.checked)} /> Enabled (unchecked: registered paused)
        </label>
      )}
      {(errors[''] || errors.enabled) && (
        <p role="alert" class="problem">
          {errors[''] ?? errors.enabled}
        </p>
      )}
      {Object.keys(errors).length > 0 && !errors[''] && !errors.enabled && (
        <p role="alert" class="problem">
          {hook ? 'Nothing was saved' : 'The webhook was not registered'}: see the field marked above.
        </p>
      )}
      {saved && <p role="status">{saved}</p>}
      <button type="submit" disabled={busy}>
        {hook ? 'Save changes' : 'Register webhook'}
      </button>
    </form>
  );
}

const STATES: WebhookDeliveryState[] = ['PENDING', 'DELIVERED', 'FAILED'];

function WebhookDetail({ id }: { id: number }) {
  const { route } = useLocation();
  const [state, setState] = useState<WebhookDeliveryState | ''>('');
  const [first, setFirst] = useState(PAGE);
  const [problem, setProblem] = useState<string>();
  const [busy, setBusy] = useState(false);
  const loaded = useLoad(
    () => request(WebhookLog, { id, first, ...(state && { state }) }).then((data) => data.webhook),
    `${id} ${first} ${state}`,
  );
  const hook = loaded.data;
  const pending = hook?.deliveries.some((d) => d.state === 'PENDING') ?? false;
  useEffect(() => {
    if (!pending) return;
    const timer = setInterval(() => void loaded.reload(), POLL_MS);
    return () => clearInterval(timer);
  }, [pending, loaded.reload]);

  const title = hook ? `Webhook to ${hook.url}` : 'Webhook';
  if (loaded.data === null)
    return (
      <AdminPage title={title}>
        <p>
          There is no webhook {id}: it may have been deleted. <a href="/admin/webhooks">See every webhook.</a>
        </p>
      </AdminPage>
    );
  return (
    <AdminPage title={title} problem={loaded.problem}>
      <p>
        <a href="/admin/webhooks">← Every webhook</a>
      </p>
      {!hook && !loaded.problem && <p>Loading…</p>}
      {hook && (
        <>
          {problem && (
            <p role="alert" class="problem">
              {problem}
            </p>
          )}
          <dl class="facts">
            <dt>Events</dt>
            <dd>{hook.events.join(', ')}</dd>
            <dt>Description</dt>
            <dd>{hook.description ?? 'none'}</dd>
            <dt>Signed</dt>
            <dd>{hook.hasSecret ? 'yes (X-Dagpipe-Signature-256)' : 'no'}</dd>
            <dt>Registered</dt>
            <dd>
              <When at={hook.createdAt} />
            </dd>
            <dt>State</dt>
            <dd>
              <Toggle
                hook={hook}
                onDone={(failed) => {
                  setProblem(failed);
                  void loaded.reload();
                }}
              />
            </dd>
          </dl>
          <p>
            <Confirm
              id="delete-webhook"
              label="Delete this webhook"
              question="Delete this webhook with its delivery log? Deliveries still pending are dropped. (Disable keeps the log.)"
              confirmLabel="Delete"
              onConfirm={async () => {
                const failed = await attempt(() => request(DeleteWebhook, { id }).then((r) => r.deleteWebhook), 'Deleted');
                if (failed) setProblem(`The webhook was not deleted: ${failed.message}`);
                else route('/admin/webhooks');
              }}
            />
          </p>
          <details class="edit">
            <summary>Edit</summary>
            {/* Keyed by what it shows, so that a save (or a toggle) starts the form from the webhook as it is now. */}
            <WebhookForm key={JSON.stringify([hook.url, hook.events, hook.hasSecret, hook.description, hook.enabled])} hook={hook} onSaved={() => void loaded.reload()} />
          </details>

          <h2 id="log">Delivery log</h2>
          <div class="log-controls">
            <label for="delivery-state">State</label>
            <select id="delivery-state" value={state} onChange={(e) => setState(e.currentTarget.value as WebhookDeliveryState | '')}>
              <option value="">all</option>
              {STATES.map((s) => (
                <option key={s} value={s}>
                  {s}
                </option>
              ))}
            </select>
            <button type="button" onClick={() => void loaded.reload()}>
              Refresh
            </button>
            {pending && <span class="hint">Pending deliveries: refreshed every few seconds.</span>}
          </div>
          <DeliveryLog
            deliveries={hook.deliveries}
            busy={busy}
            onRedeliver={async (delivery) => {
              setBusy(true);
              setProblem(undefined);
              const failed = await attempt(() => request(Redeliver, { id: delivery.id }).then((r) => r.redeliverWebhookDelivery), 'WebhookDelivery');
              if (failed) setProblem(`Delivery ${delivery.id} was not sent again: ${failed.message}`);
              await loaded.reload();
              setBusy(false);
            }}
          />
          {hook.deliveries.length === first &&
            (first < MAX_DELIVERIES ? (
              <button type="button" onClick={() => setFirst(first + PAGE)}>
                Older deliveries
              </button>
            ) : (
              <p class="hint">The newest {MAX_DELIVERIES} are shown; read older ones with the API (Webhook.deliveries with after).</p>
            ))}
        </>
      )}
    </AdminPage>
  );
}

function DeliveryLog({ deliveries, busy, onRedeliver }: { deliveries: Delivery[]; busy: boolean; onRedeliver: (delivery: Delivery) => Promise<void> }) {
  if (deliveries.length === 0) return <p>No deliveries yet: they are made when an event it wants happens.</p>;
  return (
    <table class="admin-table deliveries" aria-labelledby="log">
      <thead>
        <tr>
          <th scope="col">Delivery</th>
          <th scope="col">Event</th>
          <th scope="col">State</th>
          <th scope="col">Attempts</th>
          <th scope="col">Last answer</th>
          <th scope="col">Times</th>
          <th scope="col">Details</th>
        </tr>
      </thead>
      <tbody>
        {deliveries.map((d) => (
          <tr key={d.id} data-testid={`delivery-${d.id}`} data-state={d.state}>
            <th scope="row">
              #{d.id}
              <br />
              <code class="uuid">{d.deliveryId}</code>
            </th>
            <td>
              <code>{d.event}</code>
              {d.pipeline && (
                <>
                  <br />
                  run <a href={`/runs/${d.pipeline.id}`}>{d.pipeline.name}</a>
                </>
              )}
              {d.track && (
                <>
                  , step <a href={`/tracks/${d.track.id}`}>{d.track.name}</a>
                </>
              )}
            </td>
            <td>
              <span class={`delivery-state state-${d.state}`}>{d.state}</span>
              {(d.state === 'DELIVERED' || d.state === 'FAILED') && (
                <>
                  {' '}
                  <button type="button" disabled={busy} aria-label={`Redeliver delivery ${d.id}`} onClick={() => void onRedeliver(d)}>
                    Redeliver
                  </button>
                </>
              )}
            </td>
            <td>{d.attempts}</td>
            <td>
              {d.statusCode !== null && d.statusCode !== undefined ? `HTTP ${d.statusCode}` : 'no answer'}
              {d.durationMs !== null && d.durationMs !== undefined && ` in ${d.durationMs} ms`}
              {d.error && <p class="problem">{d.error}</p>}
            </td>
            <td>
              <dl class="times">
                <dt>Queued</dt>
                <dd>
                  <When at={d.createdAt} />
                </dd>
                <dt>Last attempt</dt>
                <dd>
                  <When at={d.lastAttemptAt} never="none yet" />
                </dd>
                {d.deliveredAt && (
                  <>
                    <dt>Delivered</dt>
                    <dd>
                      <When at={d.deliveredAt} />
                    </dd>
                  </>
                )}
                {d.nextAttemptAt && (
                  <>
                    <dt>Next attempt</dt>
                    <dd>
                      <When at={d.nextAttemptAt} />
                    </dd>
                  </>
                )}
              </dl>
            </td>
            <td>
              <details>
                <summary>Payload</summary>
                <pre>{JSON.stringify(d.payload, null, 2)}</pre>
              </details>
              {d.responseBody && (
                <details>
                  <summary>Answer body</summary>
                  <pre>{d.responseBody}</pre>
                </details>
              )}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
