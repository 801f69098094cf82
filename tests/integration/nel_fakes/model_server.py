"""A stand-in model server for the test image (python3, standard library): NVIDIA's server images cannot
be pulled here. `python3 model_server.py PORT [NAME]` answers GET /health and /v1/models and every POST
under /v1 with one short OpenAI-shaped reply, and logs each POST it answered with the SHA-256 of its
Authorization header (the key never in the log)."""

import contextlib
import hashlib
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, NAME = int(sys.argv[1]), (sys.argv[2] if len(sys.argv) > 2 else "model")


class Handler(BaseHTTPRequestHandler):
    def reply(self, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        with contextlib.suppress(ConnectionError):  # the launcher's health check reads the status only
            self.wfile.write(data)

    def do_GET(self):
        self.reply({"object": "list", "data": [{"id": NAME, "object": "model"}]})

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        message = {"role": "assistant", "content": "The answer is 42."}
        usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
        choice = {"index": 0, "message": message, "text": message["content"], "finish_reason": "stop"}
        self.reply(
            {"id": "x", "object": "chat.completion", "model": NAME, "choices": [choice], "usage": usage}
        )
        auth = hashlib.sha256(self.headers.get("Authorization", "").encode()).hexdigest()
        print(f"answered POST {self.path} auth {auth}", flush=True)


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
