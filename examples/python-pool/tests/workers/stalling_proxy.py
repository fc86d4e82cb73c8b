#!/usr/bin/env python3
"""A worker that never starts answering a request that carries the marker
STALL (not even the reply's headers): the pool's timeout must cut it and
replace the worker. See garbling_proxy.py."""

import garbling_proxy

if __name__ == "__main__":
    garbling_proxy.main(stall=True)
