"""The inventory master domain: models, rules, ports and their AWS adapters.

Packaged as a Lambda layer (`layers/domain`), so every function imports it as `inventory`.
"""
