/**
 * API tokens (admin): every token, revoked ones too (they stay, marked, for the audit
 * trail); create one, whose secret is shown this once; revoke one, after a confirmation.
 */
import { useState } from 'preact/hooks';
import { request } from '../../api';
import { graphql } from '../../generated';
import type { AdminCreateTokenMutation, Role, AdminTokensQuery } from '../../generated/graphql';
import { useViewer } from '../../viewer';
import { AdminPage, Confirm, Field, fieldErrors, fieldProps, messageOf, useLoad, When, type FieldErrors } from './common';

const Tokens = graphql(`
  query AdminTokens {
    tokens {
      id
      name
      role
      prefix
      createdAt
      lastUsedAt
      revokedAt
    }
  }
`);

const CreateToken = graphql(`
  mutation AdminCreateToken($name: String!, $role: Role!) {
    createToken(name: $name, role: $role) {
      __typename
      ... on CreatedToken {
        id
        name
        role
        secret
      }
      ... on Error {
        field
        message
      }
    }
  }
`);

const RevokeToken = graphql(`
  mutation AdminRevokeToken($id: Int!) {
    revokeToken(id: $id) {
      __typename
      ... on Token {
        id
        revokedAt
      }
      ... on Error {
        field
        message
      }
    }
  }
`);

type Token = AdminTokensQuery['tokens'][number];
type Created = Extract<AdminCreateTokenMutation['createToken'], { __typename: 'CreatedToken' }>;

const ROLES: { role: Role; does: string }[] = [
  { role: 'viewer', does: 'reads graphs, runs and output' },
  { role: 'operator', does: 'also starts, cancels and retries runs and supplies input' },
  { role: 'admin', does: 'also changes graphs and manages tokens, webhooks and the audit log' },
];

export default function TokensPage() {
  const tokens = useLoad(() => request(Tokens).then((data) => data.tokens), 'tokens');
  const [created, setCreated] = useState<Created>();
  const [problem, setProblem] = useState<string>();
  return (
    <AdminPage title="API tokens" problem={tokens.problem}>
      {tokens.data && (
        <>
          {created ? (
            <NewSecret created={created} onDone={() => setCreated(undefined)} />
          ) : (
            <CreateForm
              onCreated={(token) => {
                setCreated(token);
                void tokens.reload();
              }}
            />
          )}
          {problem && (
            <p role="alert" class="problem">
              {problem}
            </p>
          )}
          <TokenTable
            tokens={tokens.data}
            onRevoke={async (token) => {
              setProblem(undefined);
              try {
                const { revokeToken } = await request(RevokeToken, { id: token.id });
                if (revokeToken.__typename !== 'Token') setProblem(`${token.name} was not revoked: ${revokeToken.message ?? revokeToken.__typename}`);
              } catch (error) {
                setProblem(`${token.name} was not revoked: ${messageOf(error)}`);
              }
              await tokens.reload();
            }}
          />
        </>
      )}
      {!tokens.data && !tokens.problem && <p>Loading…</p>}
    </AdminPage>
  );
}

function CreateForm({ onCreated }: { onCreated: (token: Created) => void }) {
  const [name, setName] = useState('');
  const [role, setRole] = useState<Role>('viewer');
  const [errors, setErrors] = useState<FieldErrors>({});
  const [busy, setBusy] = useState(false);
  const submit = async () => {
    setBusy(true);
    setErrors({});
    try {
      const { createToken } = await request(CreateToken, { name, role });
      if (createToken.__typename === 'CreatedToken') {
        setName('');
        onCreated(createToken);
      } else setErrors(fieldErrors(createToken, ['name', 'role']));
    } catch (error) {
      setErrors({ '': messageOf(error) });
    } finally {
      setBusy(false);
    }
  };
  return (
    <form
      aria-labelledby="new-token"
      onSubmit={(event) => {
        event.preventDefault();
        void submit();
      }}
    >
      <h2 id="new-token">New token</h2>
      <Field id="token-name" label="Name" hint="Who or what will use it, e.g. alice or ci-nightly." error={errors.name}>
        <input {...fieldProps('token-name', true, errors.name)} required autocomplete="off" value={name} onInput={(e) => setName(e.currentTarget.value)} />
      </Field>
      <Field id="token-role" label="Role" hint={ROLES.find((r) => r.role === role)?.does} error={errors.role}>
        <select {...fieldProps('token-role', true, errors.role)} value={role} onChange={(e) => setRole(e.currentTarget.value as Role)}>
          {ROLES.map((r) => (
            <option key={r.role} value={r.role}>
              {r.role}
            </option>
          ))}
        </select>
      </Field>
      {errors[''] && (
        <p role="alert" class="problem">
          {errors['']}
        </p>
      )}
      <button type="submit" disabled={busy}>
        Create token
      </button>
    </form>
  );
}

/** The secret, this once: the service keeps only its hash, so it cannot be shown again. */
function NewSecret({ created, onDone }: { created: Created; onDone: () => void }) {
  const [copied, setCopied] = useState<string>();
  return (
    <section class="new-secret" aria-labelledby="new-secret">
      <h2 id="new-secret">
        Token {created.name} ({created.role}) created
      </h2>
      <p role="status" id="secret-note">
        <strong>Store the secret now:</strong> it is shown only this once and cannot be shown again. Send it as <code>Authorization: Bearer &lt;secret&gt;</code>.
      </p>
      <label for="secret">Secret</label>
      <div class="secret-row">
        <input id="secret" readOnly value={created.secret} aria-describedby="secret-note" onFocus={(e) => e.currentTarget.select()} />
        <button
          type="button"
          onClick={() => {
            navigator.clipboard.writeText(created.secret).then(
              () => setCopied('Copied to the clipboard.'),
              () => setCopied('The browser did not allow copying: select the secret and copy it yourself.'),
            );
          }}
        >
          Copy
        </button>
      </div>
      {copied && <p role="status">{copied}</p>}
      <button type="button" onClick={onDone}>
        I have stored it
      </button>
    </section>
  );
}

function TokenTable({ tokens, onRevoke }: { tokens: Token[]; onRevoke: (token: Token) => Promise<void> }) {
  // The viewer is known by name only, and names need not be unique: hence "may be".
  const me = useViewer().name;
  if (tokens.length === 0) return <p>No tokens yet.</p>;
  return (
    <table class="admin-table">
      <caption>Every token, revoked ones included</caption>
      <thead>
        <tr>
          <th scope="col">Name</th>
          <th scope="col">Role</th>
          <th scope="col">Starts with</th>
          <th scope="col">Created</th>
          <th scope="col">Last used</th>
          <th scope="col">State</th>
        </tr>
      </thead>
      <tbody>
        {tokens.map((token) => (
          <tr key={token.id} data-testid={`token-${token.id}`} data-state={token.revokedAt ? 'revoked' : 'active'} class={token.revokedAt ? 'revoked' : undefined}>
            <th scope="row">{token.name}</th>
            <td>{token.role}</td>
            <td>
              <code>{token.prefix}…</code>
            </td>
            <td>
              <When at={token.createdAt} />
            </td>
            <td>
              <When at={token.lastUsedAt} />
            </td>
            <td>
              {token.revokedAt ? (
                <>
                  Revoked <When at={token.revokedAt} />
                </>
              ) : (
                <span class="state-active">
                  Active{' '}
                  <Confirm
                    id={`revoke-${token.id}`}
                    label={`Revoke ${token.name}`}
                    question={`Revoke ${token.name}? Requests with it are refused at once; this cannot be undone.${
                      token.name === me ? ' It may be the token you are signed in with: the dashboard would then stop working until you sign in with another.' : ''
                    }`}
                    confirmLabel="Revoke"
                    onConfirm={() => onRevoke(token)}
                  />
                </span>
              )}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
