-- Automatic retries (SPEC rule 13): a vertex's retry policy, a track's retry delay
-- (notBefore) and retry count, and the attempts a track left behind (track_attempt).
-- AlterTable
ALTER TABLE "vertex" ADD COLUMN     "retries" INTEGER NOT NULL DEFAULT 0,
ADD COLUMN     "retryBackoff" DOUBLE PRECISION NOT NULL DEFAULT 2,
ADD COLUMN     "retryDelaySeconds" INTEGER NOT NULL DEFAULT 10;

-- AlterTable
ALTER TABLE "track" ADD COLUMN     "notBefore" TIMESTAMP(3),
ADD COLUMN     "retryCount" INTEGER NOT NULL DEFAULT 0;

-- CreateTable
CREATE TABLE "track_attempt" (
    "id" SERIAL NOT NULL,
    "t_id" INTEGER NOT NULL,
    "attempt" INTEGER NOT NULL,
    "state" INTEGER NOT NULL,
    "exitCode" INTEGER,
    "reason" TEXT,
    "startedAt" TIMESTAMP(3),
    "finishedAt" TIMESTAMP(3),

    CONSTRAINT "track_attempt_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "track_attempt_t_id_attempt_key" ON "track_attempt"("t_id", "attempt");

-- AddForeignKey
ALTER TABLE "track_attempt" ADD CONSTRAINT "track_attempt_t_id_fkey" FOREIGN KEY ("t_id") REFERENCES "track"("id") ON DELETE CASCADE ON UPDATE CASCADE;

