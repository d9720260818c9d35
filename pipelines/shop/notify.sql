-- changelake demo shop: thin notification events (issue 16, event notification).
-- Idempotent. Every order status change also emits a transactional logical decoding message
-- with prefix 'changelake.notify' holding ids only, e.g.
--   {"event": "OrderPlaced", "orderId": 789, "ts": 1764740000000}
-- in the same transaction as the change: it is decoded (and streamed by Debezium to
-- <prefix>.message) only if that transaction commits. No table, nothing to clean up.

CREATE OR REPLACE FUNCTION shop.notify_order_event() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' OR NEW.status IS DISTINCT FROM OLD.status THEN
    PERFORM pg_logical_emit_message(
      true,
      'changelake.notify',
      json_build_object(
        'event', 'Order' || initcap(NEW.status::text),
        'orderId', NEW.order_id,
        'ts', (extract(epoch FROM clock_timestamp()) * 1000)::bigint
      )::text
    );
  END IF;
  RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS orders_notify ON shop.orders;
CREATE TRIGGER orders_notify AFTER INSERT OR UPDATE OF status ON shop.orders
  FOR EACH ROW EXECUTE FUNCTION shop.notify_order_event();
