"""The editor in the browser: ``tensorpanda editor FACTORS``.

A small HTTP server from the standard library (``http.server``) on 127.0.0.1 and one static
page (``app/editor_page/``: HTML, CSS and a script, nothing fetched from the network). The
user picks a sample by its seed, clicks on the image to pick the part under the cursor,
picks an appearance from the list ranked for that part, and moves a strength slider; the
page asks the server for the edited image on every move (one request in flight at a time, so
a fast slider never queues stale images). SeFa and GANSpace directions edit the same sample
through the latent, for comparison. The image, or a GIF of the sweep, can be saved.

Every request is checked before any work: only GET, only from the server's own origin
(``Host``, ``Origin`` and ``Sec-Fetch-Site`` headers; a page from another site gets 403),
only known parameters with values in range (else 400 with a JSON message). The server has
no state a request can change: an edit is a pure function of its parameters.

[`Editor`][tensorpanda.app.editor.Editor] holds the generator and the factors and renders
edits; [`make_server`][tensorpanda.app.editor.make_server] wraps it in an HTTP server.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import math
import re
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import tensorly as tl
import torch

import tensorpanda as tp

from . import figures
from .locality import is_style_based, shifted

logger = logging.getLogger(__name__)

PAGE = Path(__file__).with_name("editor_page")
# path -> (file in PAGE, content type): everything the page needs, served from the package
STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/editor.js": ("editor.js", "text/javascript; charset=utf-8"),
    "/editor.css": ("editor.css", "text/css; charset=utf-8"),
}
METHODS = ("panda", "sefa", "ganspace")
# the parameters of an edit, per method (any other name is refused)
PARAMETERS = {
    "panda": ("seed", "method", "strength", "part", "appearance", "sign"),
    "sefa": ("seed", "method", "strength", "direction"),
    "ganspace": ("seed", "method", "strength", "direction"),
}
SEED_LIMIT = 2**63  # torch.Generator.manual_seed takes 64-bit seeds
_INTEGER = re.compile(r"-?[0-9]{1,20}")


class RequestError(ValueError):
    """A request the server refuses: its HTTP status and a message for the user."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


def bad_request(message: str) -> RequestError:
    """A 400 answer with ``message``."""
    return RequestError(HTTPStatus.BAD_REQUEST, message)


@dataclass
class EditorConfig:
    """How much the editor samples at start, and the strengths its sliders reach.

    PandA's strengths are in units of the layer's typical feature norm σ
    (``tp.feature_scale``); the latent methods' in units of the latent's standard deviation
    (z + α u, u a unit direction, z drawn from N(0, I)).
    """

    n_reference: int = 128  # samples whose features rank the appearances of each part
    reference_seed: int = 1_000_003  # of the reference samples (not a seed users pick)
    n_ranked: int = 10  # appearances listed per part
    region_threshold: float = 0.5  # a part's region: p̂ ≥ this (as the demo's ranking)
    n_directions: int = 10  # SeFa and GANSpace directions offered
    ganspace_samples: int = 1000  # samples of the early layer GANSpace runs PCA on
    panda_range: float = 3.0  # slider: α in [-panda_range, panda_range] σ
    latent_range: float = 10.0  # slider: α in [-latent_range, latent_range]
    gif_frames: int = 9  # strengths in a saved sweep, from -α to α
    cache_size: int = 64  # latents kept per seed


@dataclass(frozen=True)
class EditRequest:
    """One edit, validated: the sample, the method and its parameters, the strength."""

    seed: int
    method: str
    strength: float
    part: int | None = None
    appearance: int | None = None
    sign: int = 1
    direction: int | None = None

    def label(self) -> str:
        """A short name for files and titles, e.g. ``panda-seed3-part2-a-17-alpha1.5``."""
        if self.method == "panda":
            what = f"part{self.part}-a{'-' if self.sign < 0 else ''}{self.appearance}"
        else:
            what = f"u{self.direction}"
        return f"{self.method}-seed{self.seed}-{what}-alpha{self.strength:g}"


class Editor:
    """A generator, its PandA factors at one layer, and the latent baselines, ready to edit.

    At construction the editor samples ``config.n_reference`` feature maps to rank, for each
    part, the appearances most present in it (``tp.region_scores`` on the part's region,
    by absolute score, with the sign that adds what lives there), and finds the SeFa and
    GANSpace latent directions. Edits are then one forward pass of one sample.

    Parameters
    ----------
    gan : Adapter
        The generator (see `tensorpanda.adapters.load`).
    layer : str
        The layer the factors were fitted on (name or alias).
    factors : Factorization
        PandA factors of that layer (recording the fitted data's norm, as every fit does).
    sample : callable, optional
        ``sample(n, seed) -> Latents``; by default ``gan.sample_latents`` (the command line
        passes one that keeps the adapter's sampling options, e.g. a truncation).
    config : EditorConfig, optional
    name : str, optional
        Shown on the page, e.g. the factors file's name.
    seed : int, default 0
        The sample the page opens with.

    Examples
    --------
    >>> import tensorpanda as tp
    >>> from tensorpanda.adapters import load
    >>> from tensorpanda.app.editor import Editor, EditorConfig
    >>> gan = load("dcgan-faces")
    >>> fit = tp.tucker2(gan.features(gan.sample_latents(200), "main.5", progress=False),
    ...                  (None, 4), random_state=0)
    >>> editor = Editor(gan, "main.5", fit, config=EditorConfig(n_reference=32,
    ...                 n_directions=2, ganspace_samples=64))
    >>> part = editor.part_at(0.5, 0.4)  # the part under the centre-left of the image
    >>> choice = editor.ranking[part][0]
    >>> request = editor.parse({"seed": "3", "method": "panda", "part": str(part),
    ...                         "appearance": str(choice["appearance"]),
    ...                         "sign": str(choice["sign"]), "strength": "1.5"})
    >>> editor.render(request).shape
    (3, 64, 64)
    >>> editor.parse({"seed": "3", "method": "panda", "part": "9", "appearance": "0",
    ...               "sign": "1", "strength": "1"})
    Traceback (most recent call last):
    ...
    tensorpanda.app.editor.RequestError: part must be an integer in 0..3, got '9'
    """

    def __init__(self, gan, layer: str, factors, sample=None, config: EditorConfig | None = None,
                 name: str = "", seed: int = 0) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < SEED_LIMIT:
            raise ValueError(f"seed must be an integer in 0..{SEED_LIMIT - 1}, got {seed!r}")
        self.gan = gan
        self.layer = gan.resolve_layer(layer)
        self.factors = factors.to_numpy()
        self.sample = sample or gan.sample_latents
        self.config = config or EditorConfig()
        self.name, self.seed = name, seed
        self.scale = tp.feature_scale(self.factors)  # checks the factors can tell σ
        self._lock = threading.Lock()  # one forward pass at a time: hooks are per module
        self._latents: OrderedDict[int, object] = OrderedDict()
        self._units: dict[tuple[int, int, int], torch.Tensor] = {}
        start = time.perf_counter()
        latents = self.sample(self.config.n_reference, self.config.reference_seed)
        Z = torch.cat(list(gan.features(latents, self.layer, progress=False))).cpu().numpy()
        self.image_size = tuple(gan.generate(latents[:1], progress=False).shape[2:])
        self.part_maps = np.stack([np.asarray(tp.part_map(self.factors, k), dtype=np.float64)
                                   for k in range(self.factors.rank[1])])
        self.ranking = [self._rank(Z, k) for k in range(self.factors.rank[1])]
        self.directions = self._latent_directions()
        logger.info("editor ready in %.1f s", time.perf_counter() - start)

    # -- set-up ----------------------------------------------------------------------------------
    def _rank(self, Z: np.ndarray, part: int) -> list[dict]:
        """The appearances most present in ``part``'s region: index, sign and score."""
        region = self.part_maps[part] >= self.config.region_threshold
        if region.all() or not region.any():  # a flat part: its region is not a region
            return []
        scores = tp.region_scores(self.factors, Z, region)
        order = np.argsort(-np.abs(scores))[: self.config.n_ranked]
        return [{"appearance": int(j), "sign": 1 if scores[j] >= 0 else -1,
                 "score": round(float(abs(scores[j])), 4)} for j in order]

    def _latent_directions(self) -> dict[str, torch.Tensor]:
        """SeFa's and GANSpace's leading unit directions, (k, latent_dim) each."""
        k, gan = self.config.n_directions, self.gan
        if is_style_based(gan):
            found = {"sefa": gan.sefa_directions(None, k),
                     "ganspace": gan.ganspace_directions(
                         k, n_samples=self.config.ganspace_samples,
                         seed=self.config.reference_seed)}
        else:
            weight = gan.latent_projection().detach().cpu().numpy()
            latents = self.sample(self.config.ganspace_samples, self.config.reference_seed)
            first = next(iter(gan.layers))  # GANSpace's early layer, as app/locality.py's
            Y = torch.cat([b.reshape(len(b), -1).cpu()
                           for b in gan.features(latents, first, progress=False)])
            z = latents.z.reshape(len(latents), -1).cpu().numpy()
            found = {"sefa": tp.sefa(weight, min(k, weight.shape[1])),
                     "ganspace": tp.ganspace(z, Y.numpy(), min(k, len(Y)), random_state=0)}
        self.direction_scores = {m: np.asarray(d.scores, dtype=float) for m, d in found.items()}
        return {m: torch.as_tensor(np.asarray(d.U), dtype=torch.float32)
                for m, d in found.items()}

    # -- what the page asks ----------------------------------------------------------------------
    def info(self) -> dict:
        """What the page needs to draw its controls: parts, rankings, methods and ranges."""
        span = {"panda": self.config.panda_range, "sefa": self.config.latent_range,
                "ganspace": self.config.latent_range}
        units = {"panda": f"σ = {self.scale:.3g}, the typical feature norm at {self.layer}",
                 "sefa": "standard deviations of the latent z",
                 "ganspace": "standard deviations of the latent z"}
        names = {"panda": "PandA", "sefa": "SeFa", "ganspace": "GANSpace"}
        methods = {}
        for m in METHODS:
            methods[m] = {"label": names[m], "min": -span[m], "max": span[m], "unit": units[m]}
            if m != "panda":
                methods[m]["directions"] = [round(float(s), 4)
                                            for s in self.direction_scores[m]]
        return {
            "name": self.name, "adapter": getattr(self.gan, "name", ""), "layer": self.layer,
            "image_size": list(self.image_size), "grid": list(self.factors.spatial_shape),
            "parts": self.factors.rank[1], "appearances": self.factors.rank[0],
            "part_maps": np.round(self.part_maps, 3).tolist(), "ranking": self.ranking,
            "methods": methods, "seed_limit": SEED_LIMIT - 1,
            "gif_frames": self.config.gif_frames, "seed": self.seed,
        }

    def part_at(self, x: float, y: float) -> int:
        """The part whose normalised map p̂_k is largest at ``(x, y)``, fractions of the
        image's width and height (the maps upsampled bilinearly to the image)."""
        H, W = self.image_size
        column, row = min(int(x * W), W - 1), min(int(y * H), H - 1)
        maps = np.asarray(tp.upsample(self.part_maps, (H, W)))
        return int(np.argmax(maps[:, row, column]))

    def parse(self, query: dict[str, str]) -> EditRequest:
        """An edit from the page's parameters (text), each checked; else `RequestError`."""
        method = query.get("method", "")
        if method not in METHODS:
            raise bad_request(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        allowed = PARAMETERS[method]
        for name in query:
            if name not in allowed:
                raise bad_request(f"unknown parameter {name!r} for method={method}; "
                                  f"expected: {', '.join(allowed)}")
        for name in allowed:
            if name not in query:
                raise bad_request(f"missing parameter {name!r}; method={method} needs "
                                  f"{', '.join(allowed)}")
        span = self.config.panda_range if method == "panda" else self.config.latent_range
        fields = {"seed": _integer(query, "seed", 0, SEED_LIMIT - 1), "method": method,
                  "strength": _number(query, "strength", -span, span)}
        if method == "panda":
            fields["part"] = _integer(query, "part", 0, self.factors.rank[1] - 1)
            fields["appearance"] = _integer(query, "appearance", 0, self.factors.rank[0] - 1)
            fields["sign"] = _integer(query, "sign", -1, 1)
            if fields["sign"] == 0:
                raise bad_request("sign must be 1 or -1, got '0'")
        else:
            fields["direction"] = _integer(query, "direction", 0,
                                           len(self.directions[method]) - 1)
        return EditRequest(**fields)

    # -- edits ----------------------------------------------------------------------------------
    def latents(self, seed: int):
        """The sample drawn with ``seed`` (kept for the next requests)."""
        if seed not in self._latents:
            self._latents[seed] = self.sample(1, seed)
            while len(self._latents) > self.config.cache_size:
                self._latents.popitem(last=False)
        self._latents.move_to_end(seed)
        return self._latents[seed]

    def unit_edit(self, part: int, appearance: int, sign: int) -> torch.Tensor:
        """PandA's edit of strength 1: sign · σ a_j/‖a_j‖ p̂_kᵀ, shape (C, H, W)."""
        key = (part, appearance, sign)
        if key not in self._units:
            delta = tp.edit_direction(self.factors, appearance, part, alpha=float(sign),
                                      units="feature_norm")
            self._units[key] = torch.as_tensor(np.asarray(delta), dtype=torch.float32)
        return self._units[key]

    def render(self, request: EditRequest, strength: float | None = None) -> np.ndarray:
        """The edited image (3, H, W) in [0, 1], at ``strength`` (default the request's)."""
        alpha = request.strength if strength is None else strength
        with self._lock:
            latents = self.latents(request.seed)
            if request.method == "panda":
                edit = alpha * self.unit_edit(request.part, request.appearance, request.sign)
                images = self.gan.generate(latents, self.layer, edit=edit, progress=False)
            else:
                u = self.directions[request.method][request.direction]
                if is_style_based(self.gan):
                    latents = self.gan.shift_ws(latents, u, alpha)
                else:
                    latents = shifted(latents, u, alpha)
                images = self.gan.generate(latents, progress=False)
        return images[0].detach().cpu().numpy()

    def sweep_gif(self, request: EditRequest) -> bytes:
        """A GIF from −α to α (the request's strength) and back, labelled, as bytes."""
        if request.strength == 0:
            raise bad_request("the strength is 0: set a strength to sweep from −α to α")
        alphas = np.linspace(-request.strength, request.strength, self.config.gif_frames)
        frames = torch.stack([torch.as_tensor(self.render(request, float(a)))[None]
                              for a in alphas])
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "sweep.gif"
            figures.edit_gif(frames, path, upscale=4, alphas=[float(a) for a in alphas],
                             title=describe(request))
            return path.read_bytes()


def describe(request: EditRequest) -> str:
    """The edit in words, for a figure's title."""
    if request.method == "panda":
        sign = "−" if request.sign < 0 else ""
        return f"PandA {sign}a_{request.appearance} in part {request.part}, seed {request.seed}"
    name = "SeFa" if request.method == "sefa" else "GANSpace"
    return f"{name} u_{request.direction}, seed {request.seed}"


def _integer(query: dict[str, str], name: str, low: int, high: int) -> int:
    """``query[name]`` as an integer in ``low..high``, or a 400."""
    text = query[name]
    if not _INTEGER.fullmatch(text) or not low <= int(text) <= high:
        raise bad_request(f"{name} must be an integer in {low}..{high}, got {text[:40]!r}")
    return int(text)


def _number(query: dict[str, str], name: str, low: float, high: float) -> float:
    """``query[name]`` as a finite number in ``[low, high]``, or a 400."""
    text = query[name]
    try:
        value = float(text) if len(text) <= 40 else math.nan
    except ValueError:
        value = None
    if value is None or not math.isfinite(value):
        raise bad_request(f"{name} must be a finite number, got {text[:40]!r}")
    if not low <= value <= high:
        raise bad_request(f"{name} must lie in [{low:g}, {high:g}], got {text!r}")
    return value


def png_data_url(image: np.ndarray) -> str:
    """A (3, H, W) image in [0, 1] as a ``data:image/png;base64,...`` URL."""
    from PIL import Image

    pixels = (np.clip(image, 0, 1).transpose(1, 2, 0) * 255).round().astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


# -- HTTP ----------------------------------------------------------------------------------------
class EditorServer(ThreadingHTTPServer):
    """The editor's HTTP server, bound to 127.0.0.1; `url` is its address."""

    daemon_threads = True

    def __init__(self, editor: Editor | None, port: int = 0) -> None:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"port must be an integer in 0..65535 (0: any free port), "
                             f"got {port!r}")
        self.editor = editor
        super().__init__(("127.0.0.1", port), Handler)
        self.port = self.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        self.hosts = {f"127.0.0.1:{self.port}", f"localhost:{self.port}"}
        self.origins = {f"http://{host}" for host in self.hosts}


def make_server(editor: Editor | None, port: int = 0) -> EditorServer:
    """An HTTP server for ``editor`` on 127.0.0.1 (``port=0``: any free port); run it with
    ``serve_forever()`` (in a thread, or until Ctrl-C). The editor may be set later
    (``server.editor = ...``): until then the API answers 503.

    Examples
    --------
    >>> from tensorpanda.app.editor import make_server
    >>> make_server(None, port=70000)
    Traceback (most recent call last):
    ...
    ValueError: port must be an integer in 0..65535 (0: any free port), got 70000
    """
    return EditorServer(editor, port)


class Handler(BaseHTTPRequestHandler):
    """Answers the page's GET requests; anything else, or from elsewhere, is refused."""

    server: EditorServer
    server_version = "tensorpanda-editor"
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
        # TensorLy's backend is per thread: each request thread works on numpy, the
        # backend of the factors read on the host, whatever TENSORLY_BACKEND says
        with tl.backend_context("numpy"):
            self._answer()

    def _answer(self) -> None:
        try:
            self._check_origin()
            url = urlsplit(self.path)
            if url.path in STATIC:
                name, kind = STATIC[url.path]
                self._send(HTTPStatus.OK, (PAGE / name).read_bytes(), kind)
                return
            route = ROUTES.get(url.path)
            if route is None:
                raise RequestError(HTTPStatus.NOT_FOUND, f"no such page: {url.path}")
            if self.server.editor is None:
                raise RequestError(HTTPStatus.SERVICE_UNAVAILABLE,
                                   "the editor is still starting: try again in a few seconds")
            route(self, _query(url.query))
        except RequestError as err:
            self._json(err.status, {"error": str(err)})
        except (BrokenPipeError, ConnectionResetError):  # the page went away: nobody to tell
            self.close_connection = True
        except Exception as err:  # never a traceback to the page, never a dead server
            logger.exception("the editor failed on %s", self.path)
            self._json(HTTPStatus.INTERNAL_SERVER_ERROR,
                       {"error": f"the server failed: {type(err).__name__}: {err}"})

    def _refuse(self) -> None:
        self.close_connection = True  # its body, unread, must not be taken for a request
        self._send(HTTPStatus.METHOD_NOT_ALLOWED,
                   json.dumps({"error": "only GET requests are served"}).encode(),
                   "application/json", {"Allow": "GET"})

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse  # noqa: N815

    def _check_origin(self) -> None:
        """403 unless the request comes from this server's own page (or no page at all)."""
        host = self.headers.get("Host")
        if host not in self.server.hosts:
            raise RequestError(HTTPStatus.FORBIDDEN, f"forbidden: the Host header {host!r} is "
                               f"not this server's; open {self.server.url}")
        origin = self.headers.get("Origin")
        if origin is not None and origin not in self.server.origins:
            raise RequestError(HTTPStatus.FORBIDDEN, f"forbidden: requests from {origin!r} "
                               f"are refused; only {self.server.url} may use this editor")
        site = self.headers.get("Sec-Fetch-Site")
        if site is not None and site not in ("same-origin", "none"):
            raise RequestError(HTTPStatus.FORBIDDEN, f"forbidden: a {site} request; only "
                               f"{self.server.url} may use this editor")

    def _send(self, status: HTTPStatus, body: bytes, kind: str, extra: dict | None = None) -> None:
        self.send_response(status)
        headers = {
            "Content-Type": kind, "Content-Length": str(len(body)), "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
            "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; "
                                       "frame-ancestors 'none'",
            **(extra or {}),
        }
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: HTTPStatus, payload: dict) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the base's name)
        logger.debug("%s %s", self.address_string(), format % args)


def _query(text: str) -> dict[str, str]:
    """The query string as name -> value, each name once; else a 400."""
    if len(text) > 2000:
        raise bad_request("the query string is too long")
    try:
        pairs = parse_qs(text, keep_blank_values=True, strict_parsing=bool(text),
                         max_num_fields=20)
    except ValueError as err:
        raise bad_request(f"unreadable query string: {err}") from None
    for name, values in pairs.items():
        if len(values) > 1:
            raise bad_request(f"parameter {name!r} is given {len(values)} times; give it once")
    return {name: values[0] for name, values in pairs.items()}


def _expect(query: dict[str, str], names: tuple[str, ...]) -> None:
    """A 400 unless ``query`` has exactly the parameters ``names``."""
    for name in query:
        if name not in names:
            raise bad_request(f"unknown parameter {name!r}; expected: {', '.join(names)}")
    for name in names:
        if name not in query:
            raise bad_request(f"missing parameter {name!r}")


def _info(handler: Handler, query: dict[str, str]) -> None:
    _expect(query, ())
    handler._json(HTTPStatus.OK, handler.server.editor.info())


def _part(handler: Handler, query: dict[str, str]) -> None:
    """The part under a click: ``x`` and ``y`` are fractions of the image's size."""
    _expect(query, ("x", "y"))
    x, y = _number(query, "x", 0.0, 1.0), _number(query, "y", 0.0, 1.0)
    handler._json(HTTPStatus.OK, {"part": handler.server.editor.part_at(x, y)})


def _edit(handler: Handler, query: dict[str, str]) -> None:
    editor = handler.server.editor
    request = editor.parse(query)
    start = time.perf_counter()
    image = png_data_url(editor.render(request))
    handler._json(HTTPStatus.OK, {"image": image, "seconds": time.perf_counter() - start,
                                  "label": request.label()})


def _sweep(handler: Handler, query: dict[str, str]) -> None:
    request = handler.server.editor.parse(query)
    body = handler.server.editor.sweep_gif(request)
    handler._send(HTTPStatus.OK, body, "image/gif", {
        "Content-Disposition": f'attachment; filename="{request.label()}.gif"'})


ROUTES = {"/api/info": _info, "/api/part": _part, "/api/edit": _edit, "/api/sweep.gif": _sweep}


def serve(server: EditorServer, build=None, open_browser: bool = False) -> int:
    """Serve until Ctrl-C: at once (the API answers 503 until the editor is set), then the
    editor ``build()`` makes (unless ``server.editor`` is set); the address is printed when
    it is ready. An error while building stops the server and is raised."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        if build is not None:
            print(f"tensorpanda editor: starting at {server.url}: ranking the appearances of "
                  "each part...", flush=True)
            server.editor = build()
        print(f"tensorpanda editor: open {server.url} (Ctrl-C stops it)", flush=True)
        if open_browser:
            import webbrowser

            webbrowser.open(server.url)
        while thread.is_alive():
            thread.join(0.5)
    except KeyboardInterrupt:
        print("tensorpanda editor: stopped", flush=True)
    finally:
        server.shutdown()
        server.server_close()
    return 0
