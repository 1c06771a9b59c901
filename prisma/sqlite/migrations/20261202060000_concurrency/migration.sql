-- Concurrency limits (SPEC rule 14): a graph's maxConcurrentPipelines (null: no limit), the
-- time a QUEUED pipeline joined its graph's queue (queued pipelines start in that order), and
-- an index for counting a graph's pipelines by state, which every start and end of a limited
-- graph's pipeline does (it replaces the index on g_id alone, which it covers).
-- AlterTable
ALTER TABLE "graph" ADD COLUMN "maxConcurrentPipelines" INTEGER;

-- AlterTable
ALTER TABLE "pipeline" ADD COLUMN "queuedAt" DATETIME;

-- DropIndex
DROP INDEX "pipeline_g_id_idx";

-- CreateIndex
CREATE INDEX "pipeline_g_id_state_idx" ON "pipeline"("g_id", "state");
