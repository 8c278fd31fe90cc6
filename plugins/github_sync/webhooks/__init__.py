"""GitHub webhooks: the relay service (verify, store, trigger) and how a stored delivery becomes rows."""
