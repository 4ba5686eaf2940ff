"""An https webhook for the notification test: answers 200 to POSTs and writes each body and
its X-Oxbow-Signature header into OUT_DIR as received-N.json and received-N.sig.

Usage: python3 tests/webhook_tls.py CERT KEY OUT_DIR   (prints the port it listens on)
"""
import http.server
import os
import ssl
import sys

cert, key, out = sys.argv[1:4]
count = 0


class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        global count
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        open(os.path.join(out, f"received-{count}.sig"), "w").write(self.headers.get("x-oxbow-signature", ""))
        open(os.path.join(out, f"received-{count}.json"), "wb").write(body)
        count += 1
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
server.socket = context.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
