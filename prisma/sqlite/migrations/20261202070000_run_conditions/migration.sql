-- Run conditions (SPEC rule 19): a vertex's runIf, SUCCESS (the seed's rule, the default for
-- every existing vertex), FAILURE or ALWAYS. Tracks gain the state SKIPPED (7), which needs no
-- schema change: states are integers.
-- AlterTable
ALTER TABLE "vertex" ADD COLUMN "runIf" TEXT NOT NULL DEFAULT 'SUCCESS';
