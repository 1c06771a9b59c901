-- Event.seq: a pipeline's events numbered 1, 2, 3, ... in commit order (SPEC rule 12).
-- RedefineTables
PRAGMA defer_foreign_keys=ON;
PRAGMA foreign_keys=OFF;
CREATE TABLE "new_event" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "p_id" INTEGER NOT NULL,
    "seq" INTEGER NOT NULL,
    "t_id" INTEGER,
    "type" TEXT NOT NULL,
    "pipelineState" INTEGER,
    "trackState" INTEGER,
    "attempt" INTEGER,
    "exitCode" INTEGER,
    "reason" TEXT,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "event_p_id_fkey" FOREIGN KEY ("p_id") REFERENCES "pipeline" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "event_t_id_fkey" FOREIGN KEY ("t_id") REFERENCES "track" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);
-- Existing events get their positions in id order: on SQLite (one writer) ids were
-- handed out in commit order.
INSERT INTO "new_event" ("attempt", "createdAt", "exitCode", "id", "p_id", "seq", "pipelineState", "reason", "t_id", "trackState", "type") SELECT "attempt", "createdAt", "exitCode", "id", "p_id", ROW_NUMBER() OVER (PARTITION BY "p_id" ORDER BY "id"), "pipelineState", "reason", "t_id", "trackState", "type" FROM "event";
DROP TABLE "event";
ALTER TABLE "new_event" RENAME TO "event";
CREATE INDEX "event_p_id_id_idx" ON "event"("p_id", "id");
CREATE UNIQUE INDEX "event_p_id_seq_key" ON "event"("p_id", "seq");
PRAGMA foreign_keys=ON;
PRAGMA defer_foreign_keys=OFF;
