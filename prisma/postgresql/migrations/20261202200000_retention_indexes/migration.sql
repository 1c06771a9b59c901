-- Retention and deletePipeline (SPEC rule 17). Retention finds ended pipelines by when they
-- ended. Deleting a track makes the database look for the events that reference it (the
-- foreign key cascades): without an index on event.t_id that is a scan of the whole event
-- table for every track deleted.
-- CreateIndex
CREATE INDEX "pipeline_finishedAt_idx" ON "pipeline"("finishedAt");

-- CreateIndex
CREATE INDEX "event_t_id_idx" ON "event"("t_id");
