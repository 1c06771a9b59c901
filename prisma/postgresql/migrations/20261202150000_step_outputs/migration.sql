-- Step outputs (SPEC rule 18): what a track's succeeded attempt wrote to $DAGPIPE_OUTPUT, on the
-- track and on the attempts it left behind (a step re-run from keeps its earlier outputs).
-- AlterTable
ALTER TABLE "track" ADD COLUMN     "outputs" TEXT;

-- AlterTable
ALTER TABLE "track_attempt" ADD COLUMN     "outputs" TEXT;

