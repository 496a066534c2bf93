"""Messages in and out of the service's queues, as models: parsed before anything acts on them."""
