"""Support for the live-UI browser tests: the emulator and a fake Open-Meteo in threads of the
test process, settings that the forked Daphne child inherits, and page helpers."""

import contextlib
import http.client
import json
import socket
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from django.test import override_settings

from gemini_emulator import EmulatorConfig, EmulatorThread
from tests.e2e.support import BrowserTestCase, speech_wav

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "external-apis"
MODEL = "gemini-3.8-live"
# The server's key for the upstream: it must never reach a page.
UPSTREAM_KEY = "fake-upstream-key-e2e-must-not-leak"

# Records every value the page root's data-state takes, so that brief states (reconnecting)
# can be asserted after the fact. Installed by the test, not by the app.
STATE_RECORDER = """
(() => {
  const root = document.querySelector("[data-pastra]");
  window.__states = [root.dataset.state];
  new MutationObserver(() => {
    const state = root.dataset.state;
    if (window.__states.at(-1) !== state) window.__states.push(state);
  }).observe(root, { attributes: true, attributeFilter: ["data-state"] });
})();
"""


def _env_value(value) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, list):
        return ",".join(value)
    return str(value)


class FakeOpenMeteo:
    """Geocoding and forecast endpoints answering from the recorded fixtures (Atlantis is
    nowhere, as Open-Meteo's own "not found" answer says)."""

    def __init__(self):
        geocode = (FIXTURES / "open-meteo-geocoding-paris.json").read_bytes()
        nowhere = (FIXTURES / "open-meteo-geocoding-notfound.json").read_bytes()
        forecast = (FIXTURES / "open-meteo-forecast.json").read_bytes()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path.startswith("/v1/search"):
                    body = nowhere if "atlantis" in self.path.lower() else geocode
                else:
                    body = forecast
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class DroppingProxy:
    """A TCP proxy in front of the live server whose connections can all be cut at once, as a
    network change on a phone would: the browser sees its WebSocket close abnormally (1006)."""

    def __init__(self, port: int):
        self.target = ("127.0.0.1", port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.sockets: set[socket.socket] = set()
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self._admit(client):
                continue
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.sockets |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _admit(self, client: socket.socket) -> bool:
        """Whether to connect this client through (a subclass may turn it away)."""
        return True

    def _forward(self, sink: socket.socket, data: bytes) -> None:
        sink.sendall(data)

    def _pipe(self, source, sink):
        try:
            while data := source.recv(65536):
                self._forward(sink, data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                self._close(s)

    def _close(self, sock):
        with self.lock:
            self.sockets.discard(sock)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()

    def drop_all(self):
        with self.lock:
            sockets = list(self.sockets)
        for sock in sockets:
            self._close(sock)

    def close(self):
        self.listener.close()
        self.drop_all()


class LiveBrowserTestCase(BrowserTestCase):
    """A live Daphne bridged to an in-process emulator, with a spoken question as the mic."""

    spoken_text = "What is the weather like today?"
    model = MODEL
    emulator_config = EmulatorConfig(tts="synthetic", pace=4.0, playback_wait=True)

    @classmethod
    def setUpClass(cls):
        cls._tmp = tempfile.TemporaryDirectory(prefix="pastra-e2e-")
        cls.fake_audio = speech_wav(Path(cls._tmp.name) / "question.wav", cls.spoken_text)
        cls.emulator = EmulatorThread(cls.emulator_config).start()
        cls.weather = FakeOpenMeteo().start()
        values = {
            "PASTRA_UPSTREAM_URL": cls.emulator.url,
            "GEMINI_API_KEY": UPSTREAM_KEY,
            "PASTRA_UPSTREAM_IS_EMULATOR": True,
            "PASTRA_MODEL": cls.model,
            "PASTRA_ALLOWED_MODELS": [cls.model],
            "PASTRA_TOOLS": ["get_weather"],
            "PASTRA_CODE_EXECUTION": True,
            "PASTRA_GOOGLE_SEARCH": True,
            "PASTRA_WEATHER_GEOCODE_URL": f"{cls.weather.url}/v1/search",
            "PASTRA_WEATHER_FORECAST_URL": f"{cls.weather.url}/v1/forecast",
        }
        # The Daphne child is forked after this: it inherits the overridden settings. The
        # same values as env vars keep it working under a spawn start method.
        cls._settings = override_settings(**values)
        cls._settings.enable()
        cls.env = {key: _env_value(value) for key, value in values.items()}
        try:
            super().setUpClass()
        except Exception:
            cls._stop_services()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls._stop_services()

    @classmethod
    def _stop_services(cls):
        cls._settings.disable()
        cls.weather.stop()
        cls.emulator.stop()
        cls._tmp.cleanup()

    def emulator_stats(self) -> dict:
        """GET /stats on the emulator's port, as any client would."""
        connection = http.client.HTTPConnection("127.0.0.1", self.emulator.port, timeout=5)
        try:
            connection.request("GET", "/stats")
            return json.load(connection.getresponse())
        finally:
            connection.close()

    def wait_for(self, predicate, *, timeout=10.0, interval=0.1, message="condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(interval)
        raise AssertionError(f"timed out waiting for {message}")
