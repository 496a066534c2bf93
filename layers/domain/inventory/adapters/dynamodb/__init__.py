"""The DynamoDB adapter: one module per item it owns, on shared parts.

    keys          every key string and attribute-name prefix, built and parsed (the key table)
    codec         Python values to attribute values and back
    expressions   update and condition expressions, every name through ExpressionAttributeNames
    table         the table client: requests, batches and their retries, pages, error translation;
                  and TableItems, the base of the item modules' classes
    locations, imports, counters, ledger_pages, allocation_lines, allocations, events, cycle_counts,
    outbox, stock_locations:       the items,
                  one module each
    repository    DynamoDbRepository: all of them composed, every storage port on one table

Each item module's class works alone or composed, so that a function loads the modules of the items
it uses (this package imports none of them: `inventory.adapters.dynamodb.repository` has them all).

docs/data-design.md has every key, access pattern and its cost. No multi-item transaction is used
anywhere: each guarded change is one single-item conditional write, which also records in the same
item the event it causes (see `outbox`).
"""
