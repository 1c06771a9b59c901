-- Pipeline.idempotencyKey: a second start of a graph with the same key returns the first
-- pipeline (SPEC rule 15). The unique index is what makes racing starts safe, and NULLs (starts
-- without a key) never collide.
-- AlterTable
ALTER TABLE "pipeline" ADD COLUMN     "idempotencyKey" TEXT;

-- CreateIndex
CREATE UNIQUE INDEX "pipeline_g_id_idempotencyKey_key" ON "pipeline"("g_id", "idempotencyKey");
