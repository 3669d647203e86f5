#!/usr/bin/env python3
"""A host file with the benchmark's 1,000 hosts (same names and addresses as mkzone.py)."""
import os
import sys
n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
out = sys.argv[2] if len(sys.argv) > 2 else "hosts.toml"
port = sys.argv[3] if len(sys.argv) > 3 else "5304"
with open(out, "w") as f:
    f.write('domain = "it-ishin.com"\nserver = "ns1"\nttl = "1h"\n\n')
    f.write('[[subnet]]\nname = "bench"\nnetwork = "10.0.0.0/8"\n\n')
    f.write('[host.ns1]\nip = "10.255.255.1"\n\n')
    # host0 would be 10.0.0.0, the network address, which the host table rightly refuses:
    # its ~0.1% of the queries get NXDOMAIN from dnsd.
    for i in range(1, n):
        f.write(f'[host.host{i}]\nip = "10.{(i>>16)&255}.{(i>>8)&255}.{i&255}"\n')
    f.write(f'\n[dns]\nlisten = ["127.0.0.1:{port}"]\nallow-recursion = []\n')
    # METRICS=ADDR:PORT: the Prometheus endpoint and the status page too (to show they cost
    # nothing while nobody looks).
    if os.environ.get("METRICS"):
        f.write(f'metrics = "{os.environ["METRICS"]}"\n')
