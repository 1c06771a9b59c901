-- Webhooks (SPEC rule 20): the URLs an admin registered with the events they want, and
-- webhook_delivery, the outbox written in the same transaction as each event (so none is
-- lost when a process dies) that doubles as the delivery log. A delivery is claimed with a
-- lease (lockedBy, lockedUntil), retried with backoff while PENDING, and ends DELIVERED or
-- FAILED. Deliveries go with their webhook, pipeline or track when those are deleted.
-- CreateTable
CREATE TABLE "webhook" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "url" TEXT NOT NULL,
    "events" TEXT NOT NULL,
    "secret" TEXT,
    "description" TEXT,
    "enabled" BOOLEAN NOT NULL DEFAULT true,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- CreateTable
CREATE TABLE "webhook_delivery" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "webhook_id" INTEGER NOT NULL,
    "event_id" INTEGER NOT NULL,
    "event" TEXT NOT NULL,
    "p_id" INTEGER,
    "t_id" INTEGER,
    "payload" TEXT NOT NULL,
    "deliveryId" TEXT NOT NULL,
    "state" INTEGER NOT NULL DEFAULT 1,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "nextAttemptAt" DATETIME NOT NULL,
    "lockedBy" TEXT,
    "lockedUntil" DATETIME,
    "statusCode" INTEGER,
    "durationMs" INTEGER,
    "responseBody" TEXT,
    "error" TEXT,
    "lastAttemptAt" DATETIME,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "deliveredAt" DATETIME,
    CONSTRAINT "webhook_delivery_webhook_id_fkey" FOREIGN KEY ("webhook_id") REFERENCES "webhook" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "webhook_delivery_p_id_fkey" FOREIGN KEY ("p_id") REFERENCES "pipeline" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "webhook_delivery_t_id_fkey" FOREIGN KEY ("t_id") REFERENCES "track" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateIndex
CREATE UNIQUE INDEX "webhook_delivery_deliveryId_key" ON "webhook_delivery"("deliveryId");

-- CreateIndex
CREATE INDEX "webhook_delivery_state_nextAttemptAt_idx" ON "webhook_delivery"("state", "nextAttemptAt");

-- CreateIndex
CREATE INDEX "webhook_delivery_webhook_id_id_idx" ON "webhook_delivery"("webhook_id", "id");

-- CreateIndex
CREATE INDEX "webhook_delivery_p_id_idx" ON "webhook_delivery"("p_id");

-- CreateIndex
CREATE INDEX "webhook_delivery_t_id_idx" ON "webhook_delivery"("t_id");

