"""One web server process: uvicorn on its own SO_REUSEPORT socket.

Run several of these on the same port (WEB_CONCURRENCY under `make run`) and the kernel spreads
incoming connections across them. uvicorn's own --workers shares one listening socket, so one
process can end up accepting every long-lived keep-alive connection while the others idle.
"""

from __future__ import annotations

import socket
import sys

import uvicorn


def reuse_port_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def main(host: str, port: int) -> None:
    config = uvicorn.Config(
        "sora_social.asgi:application",
        access_log=False,
        lifespan="off",
        proxy_headers=True,
        timeout_graceful_shutdown=10,
    )
    uvicorn.Server(config).run(sockets=[reuse_port_socket(host, port)])


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
