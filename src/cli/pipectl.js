#!/usr/bin/env node
// The pipectl executable (package.json "bin"): loads tsx's loader from this package, so
// it works from any directory, then runs the TypeScript entry.
import { register } from 'tsx/esm/api';

register();
const { runMain } = await import('./main.ts');
runMain();
