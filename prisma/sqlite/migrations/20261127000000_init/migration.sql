-- CreateTable
CREATE TABLE "graph" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "name" TEXT NOT NULL,
    "desc" TEXT,
    "checked" BOOLEAN NOT NULL DEFAULT false,
    "sealed" BOOLEAN NOT NULL DEFAULT false,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- CreateTable
CREATE TABLE "vertex" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "name" TEXT NOT NULL,
    "script" TEXT NOT NULL DEFAULT '',
    "input" TEXT NOT NULL DEFAULT '{}',
    "timeoutSeconds" INTEGER NOT NULL DEFAULT 3600,
    "g_id" INTEGER NOT NULL,
    CONSTRAINT "vertex_g_id_fkey" FOREIGN KEY ("g_id") REFERENCES "graph" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "edge" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "tail" INTEGER NOT NULL,
    "head" INTEGER NOT NULL,
    "g_id" INTEGER NOT NULL,
    CONSTRAINT "edge_tail_fkey" FOREIGN KEY ("tail") REFERENCES "vertex" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "edge_head_fkey" FOREIGN KEY ("head") REFERENCES "vertex" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "edge_g_id_fkey" FOREIGN KEY ("g_id") REFERENCES "graph" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "pipeline" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "g_id" INTEGER NOT NULL,
    "name" TEXT NOT NULL,
    "desc" TEXT,
    "state" INTEGER NOT NULL,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "finishedAt" DATETIME,
    CONSTRAINT "pipeline_g_id_fkey" FOREIGN KEY ("g_id") REFERENCES "graph" ("id") ON DELETE RESTRICT ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "track" (
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
    CONSTRAINT "track_p_id_fkey" FOREIGN KEY ("p_id") REFERENCES "pipeline" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "track_v_id_fkey" FOREIGN KEY ("v_id") REFERENCES "vertex" ("id") ON DELETE RESTRICT ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "event" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "p_id" INTEGER NOT NULL,
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

-- CreateTable
CREATE TABLE "executor" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "host" TEXT NOT NULL,
    "pid" INTEGER NOT NULL,
    "startedAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "heartbeatAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- CreateIndex
CREATE UNIQUE INDEX "graph_name_key" ON "graph"("name");

-- CreateIndex
CREATE UNIQUE INDEX "vertex_g_id_name_key" ON "vertex"("g_id", "name");

-- CreateIndex
CREATE INDEX "edge_head_idx" ON "edge"("head");

-- CreateIndex
CREATE INDEX "edge_g_id_idx" ON "edge"("g_id");

-- CreateIndex
CREATE UNIQUE INDEX "edge_tail_head_key" ON "edge"("tail", "head");

-- CreateIndex
CREATE INDEX "pipeline_state_idx" ON "pipeline"("state");

-- CreateIndex
CREATE INDEX "pipeline_g_id_idx" ON "pipeline"("g_id");

-- CreateIndex
CREATE INDEX "track_state_idx" ON "track"("state");

-- CreateIndex
CREATE INDEX "track_p_id_state_idx" ON "track"("p_id", "state");

-- CreateIndex
CREATE UNIQUE INDEX "track_p_id_v_id_key" ON "track"("p_id", "v_id");

-- CreateIndex
CREATE INDEX "event_p_id_id_idx" ON "event"("p_id", "id");

