/**
 * Expected errors as GraphQL object types. Mutations return a union of their result and
 * the errors they can produce; anything unexpected is masked by Yoga and logged.
 */
import { ConflictError, CycleError, DomainError, ForbiddenError, NotFoundError, UnauthenticatedError, ValidationError } from '../errors.ts';
import { builder } from './builder.ts';

export const ErrorInterface = builder.interfaceRef<DomainError>('Error').implement({
  description: 'An expected problem with a request: what was wrong and what to do.',
  fields: (t) => ({
    message: t.exposeString('message', { description: 'What was wrong and how to fix it, in plain words.' }),
    field: t.exposeString('field', { description: 'The argument path at fault, e.g. "name" or "inputs.0.params.ip".' }),
  }),
});

builder.objectType(ValidationError, {
  name: 'ValidationError',
  description: 'A field has a value that is not acceptable. Nothing was changed.',
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof ValidationError,
});

builder.objectType(NotFoundError, {
  name: 'NotFoundError',
  description: 'An id does not name an existing object. Nothing was changed.',
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof NotFoundError,
  fields: (t) => ({
    entity: t.exposeString('entity', { description: 'The kind of object looked for: graph, vertex, edge, pipeline or track.' }),
    id: t.exposeInt('id', { description: 'The id that was not found.' }),
  }),
});

builder.objectType(ConflictError, {
  name: 'ConflictError',
  description: 'The request conflicts with the current state (a sealed graph, a duplicate name, a finished pipeline...). Nothing was changed.',
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof ConflictError,
});

builder.objectType(CycleError, {
  name: 'CycleError',
  description: 'The graph would contain a cycle. Nothing was changed.',
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof CycleError,
  fields: (t) => ({
    path: t.exposeStringList('path', { description: 'Vertex names around the cycle, the first repeated last.' }),
  }),
});

builder.objectType(UnauthenticatedError, {
  name: 'UnauthenticatedError',
  description: 'No valid API token came with the request (field "authorization"). Nothing was changed.',
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof UnauthenticatedError,
  fields: (t) => ({
    requiredRole: t.exposeString('requiredRole', { description: 'The role a token needs for this (or a higher one).' }),
  }),
});

builder.objectType(ForbiddenError, {
  name: 'ForbiddenError',
  description: 'The token is valid, but its role may not do this. Nothing was changed.',
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof ForbiddenError,
  fields: (t) => ({
    role: t.exposeString('role', { description: 'The role of the token used.' }),
    requiredRole: t.exposeString('requiredRole', { description: 'The role this needs (or a higher one).' }),
  }),
});

/** The errors every mutation may return. */
export const ALL_ERRORS = [ValidationError, NotFoundError, ConflictError, UnauthenticatedError, ForbiddenError] as const;
