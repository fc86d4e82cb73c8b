#!/usr/bin/env python3
"""A worker that garbles one reply, then stops listening while it keeps
running: the pool cannot reconnect to it and must report it lost. See
garbling_proxy.py."""

import garbling_proxy

if __name__ == "__main__":
    garbling_proxy.main(vanish=True)
