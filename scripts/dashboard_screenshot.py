"""Screenshot a study's dashboard page, for the README:

    python scripts/dashboard_screenshot.py --storage sqlite:///tuner.db --study resnet-small \
        --out docs/dashboard-study.png

Starts a real ``tuner serve`` on the storage (loopback, no worker), loads the study page in
Debian's headless Chromium and saves the page as a PNG.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time

import httpx
from selenium import webdriver
from selenium.webdriver.chrome.service import Service


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", required=True)
    parser.add_argument("--study", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "tuner.cli", "serve", "--storage",
                               args.storage, "--insecure-local", "--port", str(port)])
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                httpx.get(f"{url}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-background-networking", "--window-size=1100,1500"):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        try:
            driver.get(f"{url}/ui/studies/{args.study}")
            height = driver.execute_script("return document.body.scrollHeight")
            driver.set_window_size(1100, min(int(height) + 40, 3000))
            driver.save_screenshot(args.out)
        finally:
            driver.quit()
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
