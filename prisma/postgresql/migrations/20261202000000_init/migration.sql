-- CreateSchema
CREATE SCHEMA IF NOT EXISTS "public";

-- CreateTable
CREATE TABLE "graph" (
    "id" SERIAL NOT NULL,
    "name" TEXT NOT NULL,
    "desc" TEXT,
    "checked" BOOLEAN NOT NULL DEFAULT false,
    "checkedAt" TIMESTAMP(3),
    "sealed" BOOLEAN NOT NULL DEFAULT false,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "graph_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "vertex" (
    "id" SERIAL NOT NULL,
    "name" TEXT NOT NULL,
    "script" TEXT NOT NULL DEFAULT '',
    "input" TEXT NOT NULL DEFAULT '{}',
    "timeoutSeconds" INTEGER NOT NULL DEFAULT 3600,
    "g_id" INTEGER NOT NULL,

    CONSTRAINT "vertex_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "edge" (
    "id" SERIAL NOT NULL,
    "tail" INTEGER NOT NULL,
    "head" INTEGER NOT NULL,
    "g_id" INTEGER NOT NULL,

    CONSTRAINT "edge_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "pipeline" (
    "id" SERIAL NOT NULL,
    "g_id" INTEGER NOT NULL,
    "name" TEXT NOT NULL,
    "desc" TEXT,
    "state" INTEGER NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "finishedAt" TIMESTAMP(3),

    CONSTRAINT "pipeline_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "track" (
    "id" SERIAL NOT NULL,
    "p_id" INTEGER NOT NULL,
    "v_id" INTEGER NOT NULL,
    "input" TEXT,
    "script" TEXT,
    "output" TEXT NOT NULL DEFAULT '',
    "state" INTEGER NOT NULL,
    "exitCode" INTEGER,
    "reason" TEXT,
    "startedAt" TIMESTAMP(3),
    "finishedAt" TIMESTAMP(3),
    "attempt" INTEGER NOT NULL DEFAULT 1,
    "executorId" TEXT,

    CONSTRAINT "track_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "event" (
    "id" SERIAL NOT NULL,
    "p_id" INTEGER NOT NULL,
    "seq" INTEGER NOT NULL,
    "t_id" INTEGER,
    "type" TEXT NOT NULL,
    "pipelineState" INTEGER,
    "trackState" INTEGER,
    "attempt" INTEGER,
    "exitCode" INTEGER,
    "reason" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "event_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "output_chunk" (
    "id" SERIAL NOT NULL,
    "t_id" INTEGER NOT NULL,
    "attempt" INTEGER NOT NULL,
    "offset" INTEGER NOT NULL,
    "bytes" INTEGER NOT NULL,
    "text" TEXT NOT NULL,
    "streams" TEXT NOT NULL,

    CONSTRAINT "output_chunk_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "executor" (
    "id" TEXT NOT NULL,
    "host" TEXT NOT NULL,
    "pid" INTEGER NOT NULL,
    "startedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "heartbeatAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "executor_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "api_token" (
    "id" SERIAL NOT NULL,
    "name" TEXT NOT NULL,
    "role" TEXT NOT NULL,
    "hash" TEXT NOT NULL,
    "prefix" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "lastUsedAt" TIMESTAMP(3),
    "revokedAt" TIMESTAMP(3),

    CONSTRAINT "api_token_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "audit_entry" (
    "id" SERIAL NOT NULL,
    "at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "actor" TEXT NOT NULL,
    "tokenId" INTEGER,
    "action" TEXT NOT NULL,
    "targetType" TEXT NOT NULL,
    "targetId" INTEGER,
    "details" TEXT NOT NULL DEFAULT '{}',

    CONSTRAINT "audit_entry_pkey" PRIMARY KEY ("id")
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

-- CreateIndex
CREATE UNIQUE INDEX "event_p_id_seq_key" ON "event"("p_id", "seq");

-- CreateIndex
CREATE UNIQUE INDEX "output_chunk_t_id_attempt_offset_key" ON "output_chunk"("t_id", "attempt", "offset");

-- CreateIndex
CREATE UNIQUE INDEX "api_token_hash_key" ON "api_token"("hash");

-- CreateIndex
CREATE INDEX "audit_entry_action_idx" ON "audit_entry"("action");

-- CreateIndex
CREATE INDEX "audit_entry_actor_idx" ON "audit_entry"("actor");

-- AddForeignKey
ALTER TABLE "vertex" ADD CONSTRAINT "vertex_g_id_fkey" FOREIGN KEY ("g_id") REFERENCES "graph"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "edge" ADD CONSTRAINT "edge_tail_fkey" FOREIGN KEY ("tail") REFERENCES "vertex"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "edge" ADD CONSTRAINT "edge_head_fkey" FOREIGN KEY ("head") REFERENCES "vertex"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "edge" ADD CONSTRAINT "edge_g_id_fkey" FOREIGN KEY ("g_id") REFERENCES "graph"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "pipeline" ADD CONSTRAINT "pipeline_g_id_fkey" FOREIGN KEY ("g_id") REFERENCES "graph"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "track" ADD CONSTRAINT "track_p_id_fkey" FOREIGN KEY ("p_id") REFERENCES "pipeline"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "track" ADD CONSTRAINT "track_v_id_fkey" FOREIGN KEY ("v_id") REFERENCES "vertex"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "event" ADD CONSTRAINT "event_p_id_fkey" FOREIGN KEY ("p_id") REFERENCES "pipeline"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "event" ADD CONSTRAINT "event_t_id_fkey" FOREIGN KEY ("t_id") REFERENCES "track"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "output_chunk" ADD CONSTRAINT "output_chunk_t_id_fkey" FOREIGN KEY ("t_id") REFERENCES "track"("id") ON DELETE CASCADE ON UPDATE CASCADE;

