/**
 * The pipectl executable: built to dist/pipectl.js (package.json "bin"), which runs without
 * tsx, so a command starts in a fraction of a second.
 */
import { runMain } from './main.ts';

runMain();
