/** API tokens: list, create (the secret is shown once) and revoke; role admin. */
import * as tokens from '../auth/tokens.ts';
import { ROLES } from '../engine/roles.ts';
import { builder } from './builder.ts';
import { ALL_ERRORS } from './errors.ts';

const RoleEnum = builder.enumType('Role', {
  description: 'What a token may do; each role includes the ones before it.',
  values: {
    viewer: { value: 'viewer', description: 'Queries and subscriptions.' },
    operator: { value: 'operator', description: 'Also startPipeline, finishInput, cancelPipeline, retryPipeline.' },
    admin: { value: 'admin', description: 'Also define and change graphs, delete pipelines, manage tokens, read the audit trail.' },
  } as const,
});

builder.prismaObject('ApiToken', {
  name: 'Token',
  description: 'An API token, without its secret (only its hash is stored).',
  fields: (t) => ({
    id: t.exposeInt('id', { description: 'Unique id.' }),
    name: t.exposeString('name', { description: 'Who or what uses it.' }),
    role: t.field({ type: RoleEnum, description: 'What it may do.', resolve: (token) => token.role as (typeof ROLES)[number] }),
    prefix: t.exposeString('prefix', { description: 'The first characters of the secret, to recognise it.' }),
    createdAt: t.expose('createdAt', { type: 'DateTime', description: 'When it was created.' }),
    lastUsedAt: t.expose('lastUsedAt', { type: 'DateTime', nullable: true, description: 'When it was last used (to the minute).' }),
    revokedAt: t.expose('revokedAt', { type: 'DateTime', nullable: true, description: 'When it was revoked; it no longer works.' }),
  }),
});

const CreatedToken = builder.objectRef<tokens.CreatedToken>('CreatedToken').implement({
  description: 'A new token. The secret is shown this once: store it now.',
  fields: (t) => ({
    id: t.exposeInt('id', { description: 'Its id.' }),
    name: t.exposeString('name', { description: 'Who or what uses it.' }),
    role: t.field({ type: RoleEnum, description: 'What it may do.', resolve: (token) => token.role }),
    secret: t.exposeString('secret', { description: 'Send it as "Authorization: Bearer <secret>". It cannot be shown again.' }),
  }),
});

const Viewer = builder.objectRef<{ name: string; role: (typeof ROLES)[number] }>('Viewer').implement({
  description: 'Who the request speaks for: the token\'s name and role (anonymous admin when authentication is off).',
  fields: (t) => ({
    name: t.exposeString('name', { description: 'The token\'s name.' }),
    role: t.field({ type: RoleEnum, description: 'What it may do: UIs show only the actions this role allows.', resolve: (viewer) => viewer.role }),
  }),
});

builder.queryFields((t) => ({
  viewer: t.field({
    type: Viewer,
    description: 'The caller: its token\'s name and role (role viewer), e.g. for a UI to show only the actions it may take.',
    resolve: (_root, _args, { identity }) => {
      // Query's authScopes let no caller without an identity this far.
      if (identity === null) throw new Error('viewer resolved without an identity');
      return { name: identity.name, role: identity.role };
    },
  }),
  tokens: t.prismaField({
    type: ['ApiToken'],
    authScopes: { admin: true },
    description: 'Every API token, revoked ones included (role admin).',
    resolve: (query, _root, _args, ctx) => ctx.db.apiToken.findMany({ ...query, orderBy: { id: 'asc' } }),
  }),
}));

builder.mutationFields((t) => ({
  createToken: t.field({
    type: CreatedToken,
    description: 'Creates an API token (role admin). The secret is in the result only.',
    errors: { types: [...ALL_ERRORS], directResult: true },
    args: {
      name: t.arg.string({ description: 'Who or what will use it, e.g. "alice" or "ci-nightly".' }),
      role: t.arg({ type: RoleEnum, description: 'What it may do.' }),
    },
    resolve: (_root, args, ctx) => tokens.createToken(ctx.db, args),
  }),
  revokeToken: t.prismaField({
    type: 'ApiToken',
    description: 'Revokes a token at once (role admin); it is kept, revoked, for the audit trail.',
    errors: { types: [...ALL_ERRORS], directResult: true },
    args: { id: t.arg.int({ description: 'The token.' }) },
    resolve: async (query, _root, args, ctx) => {
      await tokens.revokeToken(ctx.db, args.id);
      return ctx.db.apiToken.findUniqueOrThrow({ ...query, where: { id: args.id } });
    },
  }),
}));
