-- Webhooks (SPEC rule 20): the URLs an admin registered with the events they want, and
-- webhook_delivery, the outbox written in the same transaction as each event (so none is
-- lost when a process dies) that doubles as the delivery log. A delivery is claimed with a
-- lease (lockedBy, lockedUntil), retried with backoff while PENDING, and ends DELIVERED or
-- FAILED. Deliveries go with their webhook, pipeline or track when those are deleted.
-- CreateTable
CREATE TABLE "webhook" (
    "id" SERIAL NOT NULL,
    "url" TEXT NOT NULL,
    "events" TEXT NOT NULL,
    "secret" TEXT,
    "description" TEXT,
    "enabled" BOOLEAN NOT NULL DEFAULT true,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "webhook_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "webhook_delivery" (
    "id" SERIAL NOT NULL,
    "webhook_id" INTEGER NOT NULL,
    "event_id" INTEGER NOT NULL,
    "event" TEXT NOT NULL,
    "p_id" INTEGER,
    "t_id" INTEGER,
    "payload" TEXT NOT NULL,
    "deliveryId" TEXT NOT NULL,
    "state" INTEGER NOT NULL DEFAULT 1,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "nextAttemptAt" TIMESTAMP(3) NOT NULL,
    "lockedBy" TEXT,
    "lockedUntil" TIMESTAMP(3),
    "statusCode" INTEGER,
    "durationMs" INTEGER,
    "responseBody" TEXT,
    "error" TEXT,
    "lastAttemptAt" TIMESTAMP(3),
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "deliveredAt" TIMESTAMP(3),

    CONSTRAINT "webhook_delivery_pkey" PRIMARY KEY ("id")
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

-- AddForeignKey
ALTER TABLE "webhook_delivery" ADD CONSTRAINT "webhook_delivery_webhook_id_fkey" FOREIGN KEY ("webhook_id") REFERENCES "webhook"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "webhook_delivery" ADD CONSTRAINT "webhook_delivery_p_id_fkey" FOREIGN KEY ("p_id") REFERENCES "pipeline"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "webhook_delivery" ADD CONSTRAINT "webhook_delivery_t_id_fkey" FOREIGN KEY ("t_id") REFERENCES "track"("id") ON DELETE CASCADE ON UPDATE CASCADE;

