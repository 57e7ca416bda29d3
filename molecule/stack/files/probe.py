"""Connect to HOST PORT over TCP and print what happened.

connected / refused (the address answered: there is a route) / timeout /
an errno name such as ENETUNREACH (no route at all).
"""
import errno
import socket
import sys

sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
sock.settimeout(float(sys.argv[3]) if len(sys.argv) > 3 else 4.0)
try:
    sock.connect((sys.argv[1], int(sys.argv[2])))
    print("connected")
except ConnectionRefusedError:
    print("refused")
except socket.timeout:
    print("timeout")
except OSError as exc:
    print(errno.errorcode.get(exc.errno, str(exc)))
finally:
    sock.close()
