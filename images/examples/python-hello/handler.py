import json
import decimal
import email
import http.client
import xml.dom.minidom


def handler(event, context):
    name = event.get("name", "world") if isinstance(event, dict) else "world"
    return {"message": "hello " + name}
