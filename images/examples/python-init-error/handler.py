# Fails during init, as a broken deployment would.
raise RuntimeError("configuration missing")


def handler(event, context):
    return "unreachable"
