#!/usr/bin/env node
// The pipectl executable (package.json "bin"): registers tsx's loader, resolved from this
// package so that it works from any directory, then runs the TypeScript entry.
import { register } from 'tsx/esm/api';

register();
const { runMain } = await import('./main.ts');
runMain();
