"""``python -m tools.pvesim``: start the Proxmox VE API simulator."""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from .server import Server, Simulator
from .state import Options, State
from . import tls


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tools.pvesim",
                                     description="Simulator of the Proxmox VE 9 REST API (HTTPS, /api2/json).")
    parser.add_argument("--listen", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8006, help="TCP port (default 8006)")
    parser.add_argument("--nodes", type=int, default=3, help="cluster nodes (default 3)")
    parser.add_argument("--guests-per-node", type=int, default=10, help="qemu+lxc guests per node (default 10)")
    parser.add_argument("--guests", type=int,
                        help="total guests, spread evenly over the nodes (instead of --guests-per-node)")
    parser.add_argument("--storages", type=int, default=2, help="storages (present on every node, default 2)")
    parser.add_argument("--seed", type=int, default=1, help="seed for the generated cluster (default 1)")
    parser.add_argument("--state-file", help="JSON state, written after every change and read at start")
    parser.add_argument("--ca-cert-out", help="write the CA certificate (PEM) here")
    parser.add_argument("--admin-token-out", help="write 'root@pam!admin=<secret>' here (mode 0600)")
    parser.add_argument("--root-password", help="root@pam password (default: generated, kept in the state)")
    parser.add_argument("--root-password-out",
                        help="write the root@pam password here (mode 0600; default: 'root-password' next to "
                             "--admin-token-out)")
    parser.add_argument("--san", action="append", default=[], help="extra DNS name or IP for the certificate")
    parser.add_argument("--task-duration", type=float, default=0.5,
                        help="seconds a task stays 'running' (default 0.5)")
    parser.add_argument("--cluster-name", default="pvesim", help="cluster name (default pvesim)")
    parser.add_argument("--list-nodes-without-audit", action="store_true",
                        help="/cluster/resources lists nodes without stats to callers lacking Sys.Audit "
                             "(pve-manager's behaviour) instead of leaving them out")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    return parser.parse_args(argv)


def _write_private(path: str, text: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.nodes < 1 or args.guests_per_node < 0 or (args.guests is not None and args.guests < 0):
        raise SystemExit("pvesim: --nodes must be at least 1 and guest counts not negative")
    opts = Options(nodes=args.nodes, guests_per_node=args.guests_per_node, guests=args.guests, storages=args.storages,
                   seed=args.seed,
                   state_file=args.state_file, sans=args.san, task_duration=args.task_duration,
                   root_password=args.root_password, cluster_name=args.cluster_name,
                   list_nodes_without_audit=args.list_nodes_without_audit)
    state = State(opts)
    sim = Simulator(state)
    context = tls.server_context(state.data["server"], state.data["ca"])
    server = Server((args.listen, args.port), sim, context, verbose=args.verbose)
    boot = state.data["bootstrap"]
    if args.ca_cert_out:
        folder = os.path.dirname(os.path.abspath(args.ca_cert_out))
        os.makedirs(folder, exist_ok=True)
        with open(args.ca_cert_out, "w", encoding="ascii") as handle:
            handle.write(state.data["ca"]["cert"])
    if args.admin_token_out:
        _write_private(args.admin_token_out, f"root@pam!admin={boot['admin_token']}\n")
    password_out = args.root_password_out
    if not password_out and args.admin_token_out:
        password_out = os.path.join(os.path.dirname(os.path.abspath(args.admin_token_out)), "root-password")
    if password_out:
        _write_private(password_out, boot["root_password"] + "\n")

    def stop(_signum, _frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    host, port = server.server_address[:2]
    print(f"pvesim: https://{host}:{port}/api2/json  nodes={len(state.nodes)} "
          f"guests={len(state.data['cluster']['guests'])} fingerprint={sim.fingerprint}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        state.stop()
        state.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
