/** Imports every domain for its side effects and exports the finished schema. */
import { builder } from './builder.ts';
import './errors.ts';
import './states.ts';
import './graph.ts';
import './vertex.ts';
import './pipeline.ts';
import './track.ts';
import './event.ts';
import './output.ts';
import './token.ts';
import './schedule.ts';
import './webhook.ts';
import { auditMutations } from './audit.ts';

export const schema = auditMutations(builder.toSchema({ sortSchema: false }));
