-- Phone numbers stay `pending` until their carrier number order completes (issue 16, item 5).
--
-- Telnyx answers POST /v2/number_orders with an order that is `pending`; the number is not the
-- church's until `number_order.complete` (or a poll of GET /v2/number_orders/{id}) says the
-- order succeeded. `carrier_order_id` is that order (the webhook and the poll find the number
-- through it); `order_checked_at` paces the worker's polls. A number is released by the id the
-- carrier lists it under, looked up by E.164 at release time, so `carrier_number_id` is no
-- longer written (values stored before this migration may be order-line ids).
--
-- Lifecycle: pending → active → releasing → (row deleted); pending → (row deleted) when the
-- order fails.

ALTER TABLE phone_numbers DROP CONSTRAINT phone_numbers_status_check;
ALTER TABLE phone_numbers ADD CONSTRAINT phone_numbers_status_check
    CHECK (status IN ('pending', 'active', 'releasing'));
ALTER TABLE phone_numbers ADD COLUMN carrier_order_id text UNIQUE
    CHECK (length(carrier_order_id) BETWEEN 1 AND 128);
ALTER TABLE phone_numbers ADD COLUMN order_checked_at timestamptz;

-- the worker's poll  WHERE status = 'pending' AND carrier_order_id IS NOT NULL ORDER BY assigned_at
CREATE INDEX phone_numbers_pending_idx ON phone_numbers (assigned_at)
    WHERE status = 'pending' AND carrier_order_id IS NOT NULL;
