# A function that builds a large table in memory at init (a model, a lookup
# table), for snapshot tests: every byte of it must come back after a restore.
import hashlib
import os

TABLE = os.urandom(16 << 20)
SHA256_AT_INIT = hashlib.sha256(TABLE).hexdigest()


def handler(event, context):
    return {"size": len(TABLE), "sha256_at_init": SHA256_AT_INIT,
            "sha256_now": hashlib.sha256(TABLE).hexdigest()}
