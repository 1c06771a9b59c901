-- Schedules (SPEC rule 16): a schedule starts its graph on a cron expression, and schedule_tick
-- records what became of each tick, once (the unique index on (schedule, tick time) is what lets
-- several scheduler processes race for a tick). pipeline.scheduleId names the schedule that
-- started a pipeline, and is cleared when that schedule is deleted.
-- CreateTable
CREATE TABLE "schedule" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "g_id" INTEGER NOT NULL,
    "name" TEXT NOT NULL,
    "cron" TEXT NOT NULL,
    "timeZone" TEXT NOT NULL DEFAULT 'UTC',
    "inputs" TEXT NOT NULL DEFAULT '[]',
    "overlap" TEXT NOT NULL DEFAULT 'SKIP',
    "misfireGraceSeconds" INTEGER NOT NULL DEFAULT 300,
    "paused" BOOLEAN NOT NULL DEFAULT false,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "since" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "lastTickAt" DATETIME,
    CONSTRAINT "schedule_g_id_fkey" FOREIGN KEY ("g_id") REFERENCES "graph" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "schedule_tick" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "s_id" INTEGER NOT NULL,
    "tickAt" DATETIME NOT NULL,
    "outcome" TEXT NOT NULL,
    "count" INTEGER NOT NULL DEFAULT 1,
    "p_id" INTEGER,
    "reason" TEXT,
    "recordedAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "schedule_tick_s_id_fkey" FOREIGN KEY ("s_id") REFERENCES "schedule" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "schedule_tick_p_id_fkey" FOREIGN KEY ("p_id") REFERENCES "pipeline" ("id") ON DELETE SET NULL ON UPDATE CASCADE
);

-- AlterTable
-- A plain ADD COLUMN (SQLite allows a REFERENCES clause on a column whose default is NULL):
-- no copy of the pipeline table, which may be large.
ALTER TABLE "pipeline" ADD COLUMN "scheduleId" INTEGER REFERENCES "schedule" ("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- CreateIndex
CREATE INDEX "pipeline_scheduleId_state_idx" ON "pipeline"("scheduleId", "state");

-- CreateIndex
CREATE UNIQUE INDEX "schedule_g_id_name_key" ON "schedule"("g_id", "name");

-- CreateIndex
CREATE INDEX "schedule_tick_p_id_idx" ON "schedule_tick"("p_id");

-- CreateIndex
CREATE UNIQUE INDEX "schedule_tick_s_id_tickAt_key" ON "schedule_tick"("s_id", "tickAt");

