# A function behind the HTTP trigger (API Gateway payload format 2.0): it
# answers with what it was given, so tests and ./scripts/up can see the mapping.
import base64
import json


def handler(event, context):
    path = event.get("rawPath", "/")
    if path == "/plain":
        return {"plain": True}  # no statusCode: the gateway answers 200 with this JSON
    if path == "/fail":
        raise RuntimeError("asked to fail")
    body = event.get("body", "")
    raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()
    if path == "/bytes":
        return {
            "statusCode": 200,
            "headers": {"Content-Type": "application/octet-stream"},
            "body": base64.b64encode(raw[::-1]).decode(),
            "isBase64Encoded": True,
        }
    return {
        "statusCode": 201,
        "headers": {"Content-Type": "application/json", "X-From": "function"},
        "cookies": ["session=abc; Path=/", "theme=dark"],
        "body": json.dumps({
            "method": event["requestContext"]["http"]["method"],
            "rawPath": path,
            "rawQueryString": event.get("rawQueryString"),
            "query": event.get("queryStringParameters"),
            "cookies": event.get("cookies"),
            "custom": event["headers"].get("x-custom"),
            "hasAuthorization": "authorization" in event["headers"],
            "isBase64Encoded": event.get("isBase64Encoded"),
            "bodyLength": len(raw),
            "version": event.get("version"),
        }),
    }
