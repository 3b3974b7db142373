#!/usr/bin/env python3
"""Starts tailord and runs browser_demo.mjs (headless Chromium through playwright-core) against
its demo shop: search, more like this, two refinement turns, a screenshot.
usage: test_browser.py TAILORD_EXE TESTDATA_DIR NODE SCREENSHOT_PATH
(NODE_PATH must let node find playwright-core.)"""
import os
import shutil
import subprocess
import sys

from tailord_harness import HERE, Server, workdir


def main():
    exe, testdata, node, screenshot = sys.argv[1:5]
    work = workdir()
    server = Server(exe, testdata, work)
    if not server.wait_ready():
        print("not ok 1 - tailord starts\n1..1")
        server.stop()
        return 1
    run = subprocess.run([node, os.path.join(HERE, "browser_demo.mjs"),
                          f"http://127.0.0.1:{server.port}", screenshot], timeout=120)
    server.stop()
    shutil.rmtree(work, ignore_errors=True)
    return run.returncode


if __name__ == "__main__":
    sys.exit(main())
