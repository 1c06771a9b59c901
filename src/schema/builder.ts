/** The Pothos builder and its plugins; schema types live in one file per domain. */
import SchemaBuilder from '@pothos/core';
import ErrorsPlugin from '@pothos/plugin-errors';
import PrismaPlugin from '@pothos/plugin-prisma';
import ScopeAuthPlugin, { AuthScopeFailureType, type AuthFailure } from '@pothos/plugin-scope-auth';
import { DateTimeResolver, JSONResolver } from 'graphql-scalars';
import type { Context } from '../context.ts';
import { allows, ROLES, type Role } from '../engine/roles.ts';
import { ForbiddenError, UnauthenticatedError, orHigher, tokenHint } from '../errors.ts';
import type PrismaTypes from '../generated/pothos-types.ts';
import { getDatamodel } from '../generated/pothos-types.ts';

export const builder = new SchemaBuilder<{
  Context: Context;
  PrismaTypes: PrismaTypes;
  Scalars: {
    DateTime: { Input: Date; Output: Date };
    JSON: { Input: unknown; Output: unknown };
  };
  DefaultFieldNullability: false;
  DefaultInputFieldRequiredness: true;
  AuthScopes: Record<Role, boolean>;
}>({
  // ErrorsPlugin first, so errors (the auth errors included) are caught and returned as
  // typed results before Prisma's field wrappers run.
  plugins: [ErrorsPlugin, ScopeAuthPlugin, PrismaPlugin],
  scopeAuth: {
    authorizeOnSubscribe: true,
    authScopes: (ctx) => ({
      viewer: ctx.identity !== null && allows(ctx.identity.role, 'viewer'),
      operator: ctx.identity !== null && allows(ctx.identity.role, 'operator'),
      admin: ctx.identity !== null && allows(ctx.identity.role, 'admin'),
    }),
    // Typed errors: a mutation returns them in its result union; elsewhere they reach the
    // client as errors with their code (see maskError in app.ts).
    unauthorizedError: (_parent, ctx, info, result) => {
      const needed = lowestRoleIn(result.failure);
      if (ctx.identity === null) {
        // Name the role this field needs: a viewer token made on our advice would only
        // lead to a ForbiddenError for an operator's or an admin's action.
        const problem =
          ctx.authProblem ?? 'This service needs an API token: send "Authorization: Bearer <token>" (graphql-ws: connectionParams {"authorization": "Bearer <token>"}).';
        return new UnauthenticatedError(needed, `${problem} ${info.fieldName} needs a token of the ${needed} role${orHigher(needed)}: ${tokenHint(needed)}`);
      }
      return new ForbiddenError(ctx.identity.role, needed, info.fieldName);
    },
  },
  defaultFieldNullability: false,
  defaultInputFieldRequiredness: true,
  errors: {
    defaultTypes: [],
    defaultUnionOptions: {
      description: 'The result of the mutation, or one of the typed errors (implementing Error) that it can return.',
    },
  },
  prisma: {
    client: (ctx) => ctx.db,
    dmmf: getDatamodel(),
    exposeDescriptions: true,
    filterConnectionTotalCount: true,
    onUnusedQuery: null,
  },
});

builder.addScalarType('DateTime', DateTimeResolver, {});
builder.addScalarType('JSON', JSONResolver, {});

// Every field needs a role: queries and subscriptions a viewer, mutations an admin unless a
// field says otherwise (the operator actions).
builder.queryType({ description: 'Read graphs, pipelines and tracks (role viewer).', authScopes: { viewer: true } });
builder.mutationType({
  description: 'Define graphs (role admin) and operate pipelines (role operator). Bad input returns a typed error naming the field.',
  authScopes: { admin: true },
});
builder.subscriptionType({ description: 'Live changes of pipelines, tracks and their output (role viewer).', authScopes: { viewer: true } });

/** The least role that would have passed a failed check (the roles are ordered). */
function lowestRoleIn(failure: AuthFailure): Role {
  const scopes: string[] = [];
  const walk = (f: AuthFailure) => {
    if (f.kind === AuthScopeFailureType.AuthScope) scopes.push(f.scope);
    if (f.kind === AuthScopeFailureType.AnyAuthScopes || f.kind === AuthScopeFailureType.AllAuthScopes) f.failures.forEach(walk);
  };
  walk(failure);
  return ROLES.find((role) => scopes.includes(role)) ?? 'admin';
}

/** Field options for the operator actions: operator or admin, instead of the mutations' admin. */
export const OPERATOR_ONLY = { authScopes: { operator: true }, skipTypeScopes: true } as const;
