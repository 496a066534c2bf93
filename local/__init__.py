"""The service run locally the way `sam local start-api` would, with AWS emulated on 127.0.0.1.

Everything comes from `template.yaml`: `python -m local` starts it (see `local.stack`).
"""
