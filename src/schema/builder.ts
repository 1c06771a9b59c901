/** The Pothos builder and its plugins; schema types live in one file per domain. */
import SchemaBuilder from '@pothos/core';
import ErrorsPlugin from '@pothos/plugin-errors';
import PrismaPlugin from '@pothos/plugin-prisma';
import { DateTimeResolver, JSONResolver } from 'graphql-scalars';
import type { Context } from '../context.ts';
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
}>({
  // ErrorsPlugin first, so errors are caught before Prisma's field wrappers run.
  plugins: [ErrorsPlugin, PrismaPlugin],
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

builder.queryType({ description: 'Read graphs, pipelines and tracks.' });
builder.mutationType({ description: 'Define graphs and operate pipelines. Bad input returns a typed error naming the field.' });
builder.subscriptionType({ description: 'Live changes of pipelines, tracks and their output.' });
