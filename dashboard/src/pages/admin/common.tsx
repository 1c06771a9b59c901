/**
 * What the admin pages (tokens, webhooks, audit log) share: loading with the service's
 * refusal shown in its words (a non-admin reads "… needs the admin role …", not a crash),
 * the typed errors of a mutation's result placed at their field, dates, and a confirmation
 * asked in the page rather than in a browser dialog (which screen readers and tests handle
 * poorly, and which blocks the tab).
 */
import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export interface Loaded<Data> {
  data: Data | undefined;
  /** Whether `data` is for the current key (false while a new key's load is on its way). */
  current: boolean;
  /** Why it could not be loaded, in the service's words (e.g. the role it needs). */
  problem: string | undefined;
  reload: () => Promise<void>;
}

/**
 * Loads with `load` now and whenever `key` changes; `reload` loads again. An answer that
 * comes after a newer load started is dropped, so a slow page never overwrites a newer one.
 */
export function useLoad<Data>(load: () => Promise<Data>, key: string): Loaded<Data> {
  const [data, setData] = useState<Data>();
  const [loadedKey, setLoadedKey] = useState<string>();
  const [problem, setProblem] = useState<string>();
  const latest = useRef(0);
  const reload = useCallback(async () => {
    const mine = ++latest.current;
    try {
      const loaded = await load();
      if (mine !== latest.current) return;
      setData(loaded);
      setLoadedKey(key);
      setProblem(undefined);
    } catch (error) {
      if (mine === latest.current) setProblem(messageOf(error));
    }
  }, [key]);
  useEffect(() => {
    void reload();
    // Left: answers still on their way are dropped.
    return () => void ++latest.current;
  }, [reload]);
  return { data, current: loadedKey === key, problem, reload };
}

/** The page's title and, when it could not be loaded, why (the role message for a non-admin). */
export function AdminPage({ title, problem, children }: { title: string; problem?: string | undefined; children?: ComponentChildren }) {
  return (
    <main class="admin">
      <h1>{title}</h1>
      {problem && (
        <p role="alert" class="problem">
          {problem}
        </p>
      )}
      {children}
    </main>
  );
}

/** A typed error of a result union (every one implements Error: field and message). */
export interface TypedError {
  __typename: string;
  field?: string;
  message?: string;
}

/** Messages by field; `''` holds what belongs to no field on the form. */
export type FieldErrors = Record<string, string>;

/**
 * Where a typed error goes on a form: its field path with the input object's prefix and a
 * list index dropped ("input.events.1" -> "events"), if the form has that field; else the
 * form as a whole (e.g. ForbiddenError's "authorization", NotFoundError's "id").
 */
export function fieldErrors(error: TypedError, fields: readonly string[]): FieldErrors {
  const path = (error.field ?? '').replace(/^input\./, '').split('.')[0] ?? '';
  const message = error.message ?? `The service refused it (${error.__typename}).`;
  return fields.includes(path) ? { [path]: message } : { '': message };
}

/** A form field's label, control, hint and error, tied together for assistive technology. */
export function Field({
  id,
  label,
  hint,
  error,
  children,
}: {
  id: string;
  label: string;
  hint?: ComponentChildren;
  error?: string | undefined;
  /** The control: gets its props from `fieldProps(id, hint, error)`. */
  children: ComponentChildren;
}) {
  return (
    <div class="field">
      <label for={id}>{label}</label>
      {children}
      {hint && (
        <p id={`${id}-hint`} class="hint">
          {hint}
        </p>
      )}
      {error && (
        <p id={`${id}-error`} class="problem field-error">
          {error}
        </p>
      )}
    </div>
  );
}

/** The control's side of `Field`: its id, what describes it, and whether it is wrong. */
export function fieldProps(id: string, hint: boolean, error: string | undefined) {
  const describedBy = [error && `${id}-error`, hint && `${id}-hint`].filter(Boolean).join(' ');
  return { id, name: id, 'aria-describedby': describedBy || undefined, 'aria-invalid': error ? ('true' as const) : undefined };
}

/** A date as the browser's locale writes it, machine-readable too; "never" for none. */
export function When({ at, never = 'never' }: { at: string | null | undefined; never?: string }) {
  if (!at) return <span class="never">{never}</span>;
  return <time dateTime={at}>{new Date(at).toLocaleString()}</time>;
}

/**
 * A destructive action's button that first asks, beside itself, whether it is meant.
 * `question` says what will happen; `onConfirm` returns when the action is done.
 */
export function Confirm({
  id,
  label,
  question,
  confirmLabel,
  onConfirm,
}: {
  id: string;
  label: string;
  question: string;
  confirmLabel: string;
  onConfirm: () => Promise<void>;
}) {
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  const confirmRef = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    if (asking) confirmRef.current?.focus();
  }, [asking]);
  if (!asking)
    return (
      <button type="button" id={id} onClick={() => setAsking(true)}>
        {label}
      </button>
    );
  return (
    <span class="confirm" role="group" aria-labelledby={`${id}-question`}>
      <span id={`${id}-question`}>{question}</span>
      <button
        type="button"
        ref={confirmRef}
        class="danger"
        disabled={busy}
        onClick={() => {
          setBusy(true);
          void onConfirm().finally(() => {
            setBusy(false);
            setAsking(false);
          });
        }}
      >
        {confirmLabel}
      </button>
      <button type="button" disabled={busy} onClick={() => setAsking(false)}>
        Cancel
      </button>
    </span>
  );
}
