"""A registry stand-in that reads every upload the way Python registries do.

Run as `python multipart_sink.py PORT`. Each POST's multipart body is parsed
by pypiserver's own reading (its bundled bottle, which uses the standard
library's cgi.FieldStorage, as devpi's and other WSGI stacks do) and by the
standard library's email parser; the answer is JSON, one object per parser:

    {"bottle": {"action": [...], "name": [...], "content": [file names]},
     "email":  {...}}

A parser that fails on the body answers {"error": "..."} in its place. The
upload gateway relays the answer to the client, so a test sees what the
registry would have read from exactly the bytes trustpub forwarded.
"""

import email.parser
import email.policy
import io
import json
import sys
from wsgiref.simple_server import WSGIRequestHandler, make_server

from pypiserver.bottle_wrapper import bottle


def read_with_bottle(environ, body):
    request = bottle.BaseRequest(dict(environ, **{"wsgi.input": io.BytesIO(body)}))
    return {
        "action": request.forms.getall(":action"),
        "name": request.forms.getall("name"),
        "content": [upload.raw_filename for upload in request.files.getall("content")],
    }


def read_with_email(content_type, body):
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    found = {"action": [], "name": [], "content": []}
    for part in message.iter_parts():
        field = part.get_param("name", header="content-disposition")
        if field == "content":
            found["content"].append(part.get_filename())
        elif field in (":action", "name"):
            key = "action" if field == ":action" else "name"
            found[key].append(part.get_payload(decode=True).decode("utf-8", "replace"))
    return found


def guarded(read, *args):
    try:
        return read(*args)
    except Exception as error:  # a parser that gives up stores nothing
        return {"error": repr(error)}


def app(environ, start_response):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length)
    content_type = environ.get("CONTENT_TYPE", "")
    answer = {
        "bottle": guarded(read_with_bottle, environ, body),
        "email": guarded(read_with_email, content_type, body),
    }
    data = json.dumps(answer).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


if __name__ == "__main__":
    make_server("127.0.0.1", int(sys.argv[1]), app, handler_class=Quiet).serve_forever()
