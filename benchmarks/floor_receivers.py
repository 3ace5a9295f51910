"""The simplest receivers of an upload (benchmarks/upload-floor, and run.py's physical limits): each
answers PUTs on a loopback port, reading the body in 1 MiB `recv_into`s into buffers faulted in
once, and doing one mode's share of Depot's upload work:

  floor-serial     read, SHA-256 (hashlib: OpenSSL with the CPU's SHA instructions), write, one
                   chunk after another; then fdatasync, rename, folder fsync, 201
  floor-overlap    the same, hashing on a second thread (the GIL is released while hashing,
                   reading and writing)
  floor-no-hash    read, write, fdatasync, rename, folder fsync: what the checksum costs
  floor-discard    read only, nothing hashed or written: the transfer from the client alone
"""
import hashlib
import os
import queue
import socket
import threading

MODES = ["floor-serial", "floor-overlap", "floor-no-hash", "floor-discard"]

CHUNK = 1 << 20


def serve(port, mode, folder):
    """Answers PUTs on `port` forever (a daemon thread), each body stored in `folder`."""
    listener = socket.create_server(("127.0.0.1", port))

    def handle(conn):
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                head += conn.recv(4096)
            head, rest = head.split(b"\r\n\r\n", 1)
            length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
            tmp = os.path.join(folder, f"upload-{port}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            digest = hashlib.sha256()
            work = queue.Queue(maxsize=8) if mode == "floor-overlap" else None
            hasher = None
            if work is not None:
                def hash_all():
                    while (chunk := work.get()) is not None:
                        digest.update(chunk)
                hasher = threading.Thread(target=hash_all)
                hasher.start()

            def take(chunk):
                if work is not None:
                    work.put(chunk)
                elif mode == "floor-serial":
                    digest.update(chunk)
                if mode != "floor-discard":
                    os.write(fd, chunk)

            received = len(rest)
            if rest:
                take(rest)
            # A ring of buffers, faulted in once: more than the hasher's queue holds, so a buffer
            # is never reused while queued.
            ring = [memoryview(bytearray(CHUNK)) for _ in range(10 if work is not None else 1)]
            next_buffer = 0
            while received < length:
                view = ring[next_buffer][:min(CHUNK, length - received)]
                next_buffer = (next_buffer + 1) % len(ring)
                n = conn.recv_into(view)
                if n == 0:
                    break
                received += n
                take(view[:n])
            if work is not None:
                work.put(None)
                hasher.join()
            os.fdatasync(fd)
            os.close(fd)
            os.rename(tmp, os.path.join(folder, f"upload-{port}.bin"))
            dfd = os.open(folder, os.O_RDONLY)
            os.fsync(dfd)
            os.close(dfd)
            body = digest.hexdigest().encode() if mode in ("floor-serial", "floor-overlap") else b"stored"
            conn.sendall(b"HTTP/1.1 201 Created\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))

    def loop():
        while True:
            conn, _ = listener.accept()
            handle(conn)

    threading.Thread(target=loop, daemon=True).start()
