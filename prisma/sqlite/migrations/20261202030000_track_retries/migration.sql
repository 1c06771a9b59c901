-- Automatic retries (SPEC rule 13): a vertex's retry policy, a track's retry delay
-- (notBefore) and retry count, and the attempts a track left behind (track_attempt).
-- CreateTable
CREATE TABLE "track_attempt" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "t_id" INTEGER NOT NULL,
    "attempt" INTEGER NOT NULL,
    "state" INTEGER NOT NULL,
    "exitCode" INTEGER,
    "reason" TEXT,
    "startedAt" DATETIME,
    "finishedAt" DATETIME,
    CONSTRAINT "track_attempt_t_id_fkey" FOREIGN KEY ("t_id") REFERENCES "track" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- RedefineTables
PRAGMA defer_foreign_keys=ON;
PRAGMA foreign_keys=OFF;
CREATE TABLE "new_vertex" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "name" TEXT NOT NULL,
    "script" TEXT NOT NULL DEFAULT '',
    "input" TEXT NOT NULL DEFAULT '{}',
    "timeoutSeconds" INTEGER NOT NULL DEFAULT 3600,
    "retries" INTEGER NOT NULL DEFAULT 0,
    "retryDelaySeconds" INTEGER NOT NULL DEFAULT 10,
    "retryBackoff" REAL NOT NULL DEFAULT 2,
    "g_id" INTEGER NOT NULL,
    CONSTRAINT "vertex_g_id_fkey" FOREIGN KEY ("g_id") REFERENCES "graph" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);
INSERT INTO "new_vertex" ("g_id", "id", "input", "name", "script", "timeoutSeconds") SELECT "g_id", "id", "input", "name", "script", "timeoutSeconds" FROM "vertex";
DROP TABLE "vertex";
ALTER TABLE "new_vertex" RENAME TO "vertex";
CREATE UNIQUE INDEX "vertex_g_id_name_key" ON "vertex"("g_id", "name");
CREATE TABLE "new_track" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "p_id" INTEGER NOT NULL,
    "v_id" INTEGER NOT NULL,
    "input" TEXT,
    "script" TEXT,
    "output" TEXT NOT NULL DEFAULT '',
    "state" INTEGER NOT NULL,
    "exitCode" INTEGER,
    "reason" TEXT,
    "startedAt" DATETIME,
    "finishedAt" DATETIME,
    "attempt" INTEGER NOT NULL DEFAULT 1,
    "executorId" TEXT,
    "notBefore" DATETIME,
    "retryCount" INTEGER NOT NULL DEFAULT 0,
    CONSTRAINT "track_p_id_fkey" FOREIGN KEY ("p_id") REFERENCES "pipeline" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "track_v_id_fkey" FOREIGN KEY ("v_id") REFERENCES "vertex" ("id") ON DELETE RESTRICT ON UPDATE CASCADE
);
INSERT INTO "new_track" ("attempt", "executorId", "exitCode", "finishedAt", "id", "input", "output", "p_id", "reason", "script", "startedAt", "state", "v_id") SELECT "attempt", "executorId", "exitCode", "finishedAt", "id", "input", "output", "p_id", "reason", "script", "startedAt", "state", "v_id" FROM "track";
DROP TABLE "track";
ALTER TABLE "new_track" RENAME TO "track";
CREATE INDEX "track_state_idx" ON "track"("state");
CREATE INDEX "track_p_id_state_idx" ON "track"("p_id", "state");
CREATE UNIQUE INDEX "track_p_id_v_id_key" ON "track"("p_id", "v_id");
PRAGMA foreign_keys=ON;
PRAGMA defer_foreign_keys=OFF;

-- CreateIndex
CREATE UNIQUE INDEX "track_attempt_t_id_attempt_key" ON "track_attempt"("t_id", "attempt");

