-- CreateTable
CREATE TABLE "output_chunk" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "t_id" INTEGER NOT NULL,
    "attempt" INTEGER NOT NULL,
    "offset" INTEGER NOT NULL,
    "bytes" INTEGER NOT NULL,
    "text" TEXT NOT NULL,
    "streams" TEXT NOT NULL,
    CONSTRAINT "output_chunk_t_id_fkey" FOREIGN KEY ("t_id") REFERENCES "track" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateIndex
CREATE UNIQUE INDEX "output_chunk_t_id_attempt_offset_key" ON "output_chunk"("t_id", "attempt", "offset");

