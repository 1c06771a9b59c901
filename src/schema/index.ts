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

export const schema = builder.toSchema({ sortSchema: false });
