"""A real SMTP server for Sverka's tests, on 127.0.0.1, from aiosmtpd.

Each message it takes is written to --out as <n>.eml (written whole, then renamed).
It can speak STARTTLS or implicit TLS with a certificate the test made, ask for
authentication, and misbehave on purpose:

  --fault hang-in-data    never answer the end of a message (the client times out)
  --fault close-in-data   drop the connection when the message's data arrives
  --fault refuse-first=N  answer 451 (try again later) to the first N messages

It prints "ready <port>" once it listens, and runs until killed.
"""

import argparse
import asyncio
import os
import ssl

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Handler:
    def __init__(self, out, fault):
        self.out = out
        self.fault = fault or ""
        self.count = 0
        self.refused = 0

    async def handle_DATA(self, server, session, envelope):
        if self.fault == "hang-in-data":
            await asyncio.sleep(3600)
        if self.fault == "close-in-data":
            server.transport.close()
            return "421 closing"
        if self.fault.startswith("refuse-first="):
            limit = int(self.fault.split("=", 1)[1])
            if self.refused < limit:
                self.refused += 1
                return "451 try again later"
        self.count += 1
        name = os.path.join(self.out, "%04d.eml" % self.count)
        with open(name + ".part", "wb") as handle:
            handle.write(envelope.original_content or envelope.content)
        os.rename(name + ".part", name)
        with open(os.path.join(self.out, "%04d.rcpt" % self.count), "w") as handle:
            handle.write("\n".join(envelope.rcpt_tos))
        return "250 OK"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--tls", choices=["none", "starttls", "implicit"], default="none")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--user")
    parser.add_argument("--password")
    parser.add_argument("--fault")
    args = parser.parse_args()

    context = None
    if args.tls != "none":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)

    def authenticate(server, session, envelope, mechanism, auth_data):
        if (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == args.user
            and auth_data.password.decode() == args.password
        ):
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    kwargs = {}
    if args.user:
        kwargs["authenticator"] = authenticate
        # With implicit TLS the session is encrypted from the start; aiosmtpd's check
        # only knows STARTTLS.
        kwargs["auth_require_tls"] = args.tls == "starttls"
    if args.tls == "starttls":
        kwargs["tls_context"] = context
        kwargs["require_starttls"] = True
    controller = Controller(
        Handler(args.out, args.fault),
        hostname="127.0.0.1",
        port=args.port,
        ssl_context=context if args.tls == "implicit" else None,
        server_hostname="127.0.0.1",
        ready_timeout=10,
        **kwargs,
    )
    controller.start()
    print("ready %d" % args.port, flush=True)
    try:
        asyncio.run(asyncio.Event().wait())
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
