-- AlterTable
ALTER TABLE "graph" ADD COLUMN "checkedAt" DATETIME;

-- Graphs checked (or run) before this column existed were checked at some time after
-- they were created: createdAt stands in, so that an edit of one later says "changed
-- since it was last checked" rather than "never checked".
UPDATE "graph" SET "checkedAt" = "createdAt" WHERE "checked" = 1 OR "sealed" = 1;
