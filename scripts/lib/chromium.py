"""Headless Chromium driven through chromedriver's WebDriver HTTP API, with the standard
library only. Shared by scripts/test-interop and bench/call-setup.

    with Chromedriver() as driver:
        browser = driver.browser()
        browser.open("http://127.0.0.1:7480/?uid=bob&autoanswer=1")
        browser.wait_for("window.duetPage && duetPage.video !== null", timeout=10)
        browser.run("return duetPage.timeline")

Chromium is Debian's (`chromium`, `chromium-driver`). Every browser gets a fresh profile
in a temporary directory, removed when it quits.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

# A fake camera and microphone that need no permission prompt, no sandbox (CI runs as
# root), nothing fetched from the network, and loopback candidates allowed (the tests'
# peers listen on 127.0.0.1 only). Autoplay without a gesture: the page plays the remote
# stream with sound, and nobody clicks in a headless browser.
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--autoplay-policy=no-user-gesture-required",
]

CHROMIUM_BINARIES = ["/usr/bin/chromium", "/usr/lib/chromium/chromium"]


class WebDriverError(Exception):
    pass


def free_tcp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _request(method, url, body=None, timeout=30):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as res:
            return json.loads(res.read() or b"null")
    except urllib.error.HTTPError as e:
        try:
            value = json.loads(e.read()).get("value", {})
            message = f"{value.get('error')}: {value.get('message', '')}".strip()
        except (ValueError, AttributeError):
            message = str(e)
        raise WebDriverError(f"{method} {url}: {message.splitlines()[0] if message else e}")


class Chromedriver:
    """One chromedriver process on a free loopback port; it starts the browsers."""

    def __init__(self, executable="chromedriver", start_timeout=15):
        self.port = free_tcp_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile(prefix="chromedriver-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(
            [executable, f"--port={self.port}", "--allowed-ips=127.0.0.1"],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.browsers = []
        deadline = time.monotonic() + start_timeout
        while True:
            try:
                if _request("GET", f"{self.url}/status", timeout=2)["value"]["ready"]:
                    return
            except (OSError, WebDriverError, KeyError, ValueError):
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise WebDriverError(f"chromedriver did not start (log: {self.log.name})")
            time.sleep(0.05)

    def browser(self, extra_flags=(), timeout=60):
        """A new headless Chromium with its own profile."""
        b = Browser(self, list(extra_flags), timeout)
        self.browsers.append(b)
        return b

    def stop(self):
        for b in self.browsers:
            b.quit()
        self.browsers = []
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        # chromedriver runs in a process group of its own: a browser it left behind dies too.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.log.close()
        try:
            os.unlink(self.log.name)
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class Browser:
    """One WebDriver session: a Chromium window with one page."""

    def __init__(self, driver, extra_flags, timeout):
        self.driver = driver
        self.profile = tempfile.mkdtemp(prefix="duet-chromium-")
        options = {"args": CHROMIUM_FLAGS + [f"--user-data-dir={self.profile}"] + extra_flags}
        binary = next((b for b in CHROMIUM_BINARIES if os.path.exists(b)), None)
        if binary:
            options["binary"] = binary
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": options,
            "pageLoadStrategy": "normal",
        }}}
        try:
            value = _request("POST", f"{driver.url}/session", caps, timeout=timeout)["value"]
        except BaseException:
            shutil.rmtree(self.profile, ignore_errors=True)
            raise
        self.session = f"{driver.url}/session/{value['sessionId']}"

    def open(self, url, timeout=30):
        _request("POST", f"{self.session}/url", {"url": url}, timeout=timeout)

    def run(self, script, *args, timeout=30):
        """Runs `script` as a function body in the page; its `return` value comes back."""
        return _request("POST", f"{self.session}/execute/sync",
                        {"script": script, "args": list(args)}, timeout=timeout)["value"]

    def run_async(self, script, *args, timeout=30):
        """Runs `script` with a callback as its last argument (arguments[arguments.length-1]);
        what it passes to the callback comes back. Promises returned by `script` work too."""
        _request("POST", f"{self.session}/timeouts", {"script": int(timeout * 1000)})
        return _request("POST", f"{self.session}/execute/async",
                        {"script": script, "args": list(args)}, timeout=timeout + 5)["value"]

    def wait_for(self, expression, timeout=10, what=None, poll=0.05):
        """Polls a JavaScript expression until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.run(f"return ({expression});")
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout} s waiting for {what or expression}")
            time.sleep(poll)

    def quit(self):
        if self.session:
            try:
                _request("DELETE", self.session, timeout=15)
            except (OSError, WebDriverError):
                pass
            self.session = None
        shutil.rmtree(self.profile, ignore_errors=True)
