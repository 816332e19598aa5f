# Does nothing: the warm-path benchmark measures thaw, not the function.
def handler(event, context):
    return None
