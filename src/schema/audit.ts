/**
 * The audit trail: who started, cancelled, retried, deleted, supplied input, changed a graph,
 * a schedule or a token, and when. Every mutation that succeeds is recorded; admins read it
 * with auditLog. Retention's deletions are recorded by retention itself (store/retention.ts).
 */
import type { GraphQLFieldResolver, GraphQLSchema } from 'graphql';
import type { Context } from '../context.ts';
import { DomainError } from '../errors.ts';
import { builder } from './builder.ts';

/** What each mutation acts on. */
const TARGETS: Record<string, string> = {
  createGraph: 'graph',
  importGraph: 'graph',
  updateGraph: 'graph',
  deleteGraph: 'graph',
  cloneGraph: 'graph',
  checkGraph: 'graph',
  addVertex: 'vertex',
  updateVertex: 'vertex',
  deleteVertex: 'vertex',
  addEdge: 'edge',
  deleteEdge: 'edge',
  startPipeline: 'pipeline',
  cancelPipeline: 'pipeline',
  retryPipeline: 'pipeline',
  deletePipeline: 'pipeline',
  finishInput: 'track',
  createSchedule: 'schedule',
  updateSchedule: 'schedule',
  deleteSchedule: 'schedule',
  createToken: 'token',
  revokeToken: 'token',
  createWebhook: 'webhook',
  updateWebhook: 'webhook',
  deleteWebhook: 'webhook',
  redeliverWebhookDelivery: 'webhookDelivery',
};

/** Longest details kept (a whole definition file is not worth keeping twice). */
const MAX_DETAILS = 8 * 1024;

/**
 * The arguments as recorded: parameter values are left out (they may be secret; their
 * names are kept), a webhook's secret too (that one was set is kept), long texts are cut.
 */
export function auditDetails(args: Record<string, unknown>): string {
  const clean = (value: unknown, key?: string): unknown => {
    if (key === 'params' && value && typeof value === 'object' && !Array.isArray(value)) return { names: Object.keys(value) };
    if (key === 'secret' && typeof value === 'string') return '***';
    if (Array.isArray(value)) return value.map((v) => clean(v));
    if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, clean(v, k)]));
    return value;
  };
  const text = JSON.stringify(clean(args));
  return text.length <= MAX_DETAILS ? text : JSON.stringify({ truncated: true, start: text.slice(0, MAX_DETAILS) });
}

/**
 * Whether a mutation returned one of its typed errors. The errors plugin hands them on
 * wrapped in a Proxy (instanceof does not see through it), which keeps `constructor`.
 */
function isDomainError(value: unknown): boolean {
  if (value instanceof DomainError) return true;
  const constructor = (value as { constructor?: { prototype?: unknown } }).constructor;
  return constructor?.prototype instanceof DomainError;
}

/** Wraps every mutation so that a success is recorded with who did it. */
export function auditMutations(schema: GraphQLSchema): GraphQLSchema {
  for (const field of Object.values(schema.getMutationType()?.getFields() ?? {})) {
    const resolve = field.resolve as GraphQLFieldResolver<unknown, Context>;
    field.resolve = async (parent, args, ctx, info) => {
      const result: unknown = await resolve(parent, args, ctx, info);
      if (result == null || isDomainError(result)) return result;
      const id = (result as { id?: unknown }).id;
      await ctx.db.auditEntry.create({
        data: {
          actor: ctx.identity?.name ?? 'anonymous',
          tokenId: ctx.identity?.tokenId ?? null,
          action: info.fieldName,
          targetType: TARGETS[info.fieldName] ?? 'unknown',
          targetId: typeof id === 'number' ? id : null,
          details: auditDetails(args),
        },
      });
      return result;
    };
  }
  return schema;
}

builder.prismaObject('AuditEntry', {
  description: 'One recorded change: who did what to which object, and when.',
  fields: (t) => ({
    id: t.exposeInt('id', { description: 'Monotonic id.' }),
    at: t.expose('at', { type: 'DateTime', description: 'When.' }),
    actor: t.exposeString('actor', { description: 'The name of the token used ("anonymous" with authentication off).' }),
    tokenId: t.exposeInt('tokenId', { nullable: true, description: 'The token used.' }),
    action: t.exposeString('action', {
      description:
        'The mutation, e.g. startPipeline, updateGraph, revokeToken; or retention: ended pipelines deleted after RETENTION_DAYS (actor "retention", details name them and the worker that deleted them).',
    }),
    targetType: t.exposeString('targetType', { description: 'graph, vertex, edge, pipeline, track, schedule, token, webhook or webhookDelivery.' }),
    targetId: t.exposeInt('targetId', { nullable: true, description: 'The id of what it acted on.' }),
    details: t.field({
      type: 'JSON',
      description: 'The arguments (parameter values left out: they may be secret).',
      resolve: (entry) => JSON.parse(entry.details) as unknown,
    }),
  }),
});

builder.queryFields((t) => ({
  auditLog: t.prismaField({
    type: ['AuditEntry'],
    authScopes: { admin: true },
    description: 'The audit trail, newest first (role admin). Page with `after` set to the last id you received.',
    args: {
      actor: t.arg.string({ required: false, description: 'Only entries by this token name.' }),
      action: t.arg.string({ required: false, description: 'Only this mutation, e.g. startPipeline.' }),
      first: t.arg.int({ required: false, description: 'At most this many (default 100, at most 1000).' }),
      after: t.arg.int({ required: false, description: 'Only entries with an id lower than this (the cursor).' }),
    },
    resolve: (query, _root, args, ctx) =>
      ctx.db.auditEntry.findMany({
        ...query,
        where: {
          ...(args.actor != null && { actor: args.actor }),
          ...(args.action != null && { action: args.action }),
          ...(args.after != null && { id: { lt: args.after } }),
        },
        orderBy: { id: 'desc' },
        take: Math.min(Math.max(args.first ?? 100, 0), 1000),
      }),
  }),
}));
