"""Event notification without the N+1 trap (issue 16): thin events in, full rows out.

The shop emits thin notifications (ids only) as transactional logical decoding messages;
Debezium streams them to ``<prefix>.message``. ``thin`` parses them (malformed ones are set
aside with raw bytes, coordinates and reason), ``source`` reads them from Kafka, and
``strategies`` turns them into full ``shop.orders`` rows three ways: ``n_plus_one`` (one API
call per event: the trap), ``batched`` (one call per batch of ids, bounded concurrency, client
token bucket, retry with backoff on 429) and ``lake`` (no callback: changelake's own history as
of the event's commit instant, the only one that returns the state the event referred to).
``truth`` gives that state independently (the order's version written by the event's own
transaction) and counts disagreements.
"""
