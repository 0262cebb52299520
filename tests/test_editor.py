"""The browser editor (`tensorpanda editor`): its HTTP API on a real server with the real
DCGAN-faces generator, bad input and foreign origins refused with clear messages, and the page
driven in a real headless Chromium (click a part, pick an appearance, move the slider).

The browser test skips, saying why, where Chromium, its driver or Selenium is missing, unless
TENSORPANDA_REQUIRE_BROWSER=1 (set by `make test` when run as root, as in CI): then it fails.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
import sys
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest

import tensorpanda as tp

pytestmark = [pytest.mark.backend_independent, pytest.mark.generator]
LAYER = "main.5"
SMALL = {"n_reference": 64, "n_directions": 3, "ganspace_samples": 200, "gif_frames": 5}


@pytest.fixture(scope="module")
def factors_file(tmp_path_factory):
    pytest.importorskip("gan_face_generate")
    from tensorpanda.adapters import load

    gan = load("dcgan-faces")
    stream = gan.features(gan.sample_latents(300, seed=0), LAYER, batch_size=100,
                          progress=False)
    fit = tp.tucker2(stream, (None, 8), solver="hals", random_state=0)
    fit.info.update(adapter="dcgan-faces", layer=LAYER)
    path = tmp_path_factory.mktemp("editor") / "faces.safetensors"
    fit.save(path)
    return path


@pytest.fixture(scope="module")
def editor(factors_file):
    from tensorpanda.adapters import load
    from tensorpanda.app.editor import Editor, EditorConfig

    return Editor(load("dcgan-faces"), LAYER, tp.load(factors_file),
                  config=EditorConfig(**SMALL), name=factors_file.name, seed=3)


@pytest.fixture(scope="module")
def server(editor):
    from tensorpanda.app.editor import make_server

    server = make_server(editor, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def get(server, path, headers=None):
    """(status, headers, body) of a GET to the server; errors are answers too."""
    request = urllib.request.Request(server.url.rstrip("/") + path, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def get_json(server, path, headers=None):
    status, _, body = get(server, path, headers)
    return status, json.loads(body)


def decode(data_url: str) -> np.ndarray:
    """A PNG data URL as a float (H, W, 3) array in [0, 1]."""
    from PIL import Image

    header, _, payload = data_url.partition(",")
    assert header == "data:image/png;base64"
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(payload))).convert("RGB"),
                      dtype=np.float64) / 255


def edit_query(seed=3, method="panda", strength=0.0, **extra) -> str:
    if method == "panda":
        extra = {"part": 0, "appearance": 0, "sign": 1, **extra}
    else:
        extra = {"direction": 0, **extra}
    pairs = {"seed": seed, "method": method, "strength": strength, **extra}
    return "&".join(f"{k}={v}" for k, v in pairs.items())


def inside_share(before: np.ndarray, after: np.ndarray, mask: np.ndarray) -> float:
    """The share of the squared pixel change that falls inside ``mask`` (ROIR < 1 <=> > 0.5)."""
    change = ((after - before) ** 2).sum(axis=-1)
    return float(change[mask].sum() / change.sum())


# -- the editor's maths and the API ---------------------------------------------------------------
def test_each_part_lists_appearances_by_decreasing_score(server, editor):
    status, info = get_json(server, "/api/info")
    assert status == 200 and info["parts"] == 8 and info["appearances"] == 256
    assert info["layer"] == LAYER and info["image_size"] == [64, 64] and info["seed"] == 3
    for ranked in info["ranking"]:
        scores = [entry["score"] for entry in ranked]
        assert scores == sorted(scores, reverse=True) and len(scores) == 10
        assert {entry["sign"] for entry in ranked} <= {-1, 1}
    # the ranking is region_scores' on the part's region: the top entry has the largest |score|
    region = np.asarray(tp.part_map(editor.factors, 2)) >= 0.5
    reference = editor.sample(editor.config.n_reference, editor.config.reference_seed)
    Z = np.concatenate(list(editor.gan.features(reference, LAYER, progress=False)))
    scores = tp.region_scores(editor.factors, Z, region)
    best = info["ranking"][2][0]
    assert best["appearance"] == int(np.argmax(np.abs(scores)))
    assert best["sign"] == int(np.sign(scores[best["appearance"]]))


def test_a_click_picks_the_part_peaking_under_it(server, editor):
    checked = 0
    for k, peak in enumerate(editor.part_maps):
        row, column = np.unravel_index(np.argmax(peak), peak.shape)
        H, W = peak.shape
        if sorted(editor.part_maps[:, row, column])[-2] == 1.0:  # two parts peak there
            continue
        x, y = (column + 0.5) / W, (row + 0.5) / H
        assert get_json(server, f"/api/part?x={x}&y={y}") == (200, {"part": k})
        checked += 1
    assert checked >= 6


def test_strength_zero_gives_the_generators_own_image(server, editor):
    plain = editor.gan.generate(editor.sample(1, 3), progress=False)[0]
    expected = np.round(np.clip(plain.numpy(), 0, 1).transpose(1, 2, 0) * 255)
    for method in ("panda", "sefa", "ganspace"):
        status, body = get_json(server, "/api/edit?" + edit_query(method=method))
        assert status == 200, body
        assert np.array_equal(np.round(decode(body["image"]) * 255), expected), method


def test_a_panda_edit_changes_the_image_mostly_inside_the_part(server, editor):
    part = 3
    top = editor.ranking[part][0]
    query = dict(part=part, appearance=top["appearance"], sign=top["sign"])
    before = decode(get_json(server, "/api/edit?" + edit_query(**query))[1]["image"])
    after = decode(get_json(server, "/api/edit?" + edit_query(strength=2, **query))[1]["image"])
    mask = np.asarray(tp.part_mask(editor.factors, part, size=(64, 64)))
    assert np.abs(after - before).max() > 0.2
    # a change spread evenly would put mask.mean() (under a third) of it inside
    assert mask.mean() < 1 / 3 and inside_share(before, after, mask) > 0.6


def test_latent_directions_edit_the_whole_sample(server):
    before = decode(get_json(server, "/api/edit?" + edit_query(method="sefa"))[1]["image"])
    status, body = get_json(server, "/api/edit?" + edit_query(method="sefa", strength=8))
    assert status == 200 and body["label"] == "sefa-seed3-u0-alpha8"
    assert np.abs(decode(body["image"]) - before).max() > 0.2


def test_the_sweep_is_a_gif_from_minus_to_plus_alpha_and_back(server):
    from PIL import Image

    status, headers, body = get(server, "/api/sweep.gif?" + edit_query(strength=1.5))
    assert status == 200 and headers["Content-Type"] == "image/gif"
    assert "attachment" in headers["Content-Disposition"]
    gif = Image.open(io.BytesIO(body))
    assert gif.n_frames == 2 * SMALL["gif_frames"] - 2
    status, message = get_json(server, "/api/sweep.gif?" + edit_query(strength=0))
    assert status == 400 and "strength is 0" in message["error"]


def test_the_page_and_its_assets_come_from_the_server_itself(server):
    status, headers, page = get(server, "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    for asset in ("/editor.js", "/editor.css"):
        assert asset.encode() in page and get(server, asset)[0] == 200
    assert b"http://" not in page and b"https://" not in page  # nothing from the network


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (edit_query(part=99), "part must be an integer in 0..7, got '99'"),
        (edit_query(part="x"), "part must be an integer"),
        (edit_query(appearance=256), "appearance must be an integer in 0..255"),
        (edit_query(sign=0), "sign must be 1 or -1"),
        (edit_query(strength="nan"), "strength must be a finite number, got 'nan'"),
        (edit_query(strength="inf"), "strength must be a finite number"),
        (edit_query(strength="-1e999"), "strength must be a finite number"),
        (edit_query(strength="4"), "strength must lie in [-3, 3]"),
        (edit_query(strength=""), "strength must be a finite number"),
        (edit_query(seed="abc"), "seed must be an integer in 0..9223372036854775807"),
        (edit_query(seed=-1), "seed must be an integer in 0.."),
        (edit_query(seed=2**64), "seed must be an integer in 0.."),
        (edit_query(method="sefa", direction=3), "direction must be an integer in 0..2"),
        (edit_query(method="sefa", strength=11), "strength must lie in [-10, 10]"),
        ("seed=3&method=magic&strength=1", "method must be one of panda, sefa, ganspace"),
        ("seed=3&method=panda&strength=1", "missing parameter 'part'"),
        (edit_query(colour="red"), "unknown parameter 'colour'"),
        (edit_query(method="sefa", part=1), "unknown parameter 'part' for method=sefa"),
        (edit_query() + "&seed=4", "parameter 'seed' is given 2 times"),
        ("seed", "unreadable query string"),
    ],
)
def test_bad_parameters_get_a_400_naming_the_problem(server, query, message):
    status, body = get_json(server, "/api/edit?" + query)
    assert status == 400 and message in body["error"], body
    assert get_json(server, "/api/part?x=0.5&y=0.5")[0] == 200  # the server lives on


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/api/part?x=1.5&y=0.5", 400, "x must lie in [0, 1]"),
        ("/api/part?x=0.5", 400, "missing parameter 'y'"),
        ("/api/info?debug=1", 400, "unknown parameter 'debug'"),
        ("/api/nothing", 404, "no such page: /api/nothing"),
        ("/../../etc/passwd", 404, "no such page"),
    ],
)
def test_other_bad_requests_get_a_clear_json_answer(server, path, status, message):
    code, body = get_json(server, path)
    assert code == status and message in body["error"]


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"Origin": "http://evil.example"}, "requests from 'http://evil.example' are refused"),
        ({"Origin": "null"}, "requests from 'null' are refused"),
        ({"Host": "evil.example"}, "the Host header 'evil.example' is not this server's"),
        ({"Sec-Fetch-Site": "cross-site"}, "a cross-site request"),
    ],
)
def test_other_origins_are_refused_with_a_403(server, headers, message):
    for path in ("/", "/api/info", "/api/edit?" + edit_query(strength=1)):
        status, body = get_json(server, path, headers)
        assert status == 403 and message in body["error"] and "forbidden" in body["error"]


def test_own_origin_and_other_methods(server):
    own = {"Origin": server.url.rstrip("/"), "Sec-Fetch-Site": "same-origin"}
    assert get_json(server, "/api/part?x=0.5&y=0.5", own)[0] == 200
    request = urllib.request.Request(server.url + "api/info", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 405 and "only GET" in json.loads(caught.value.read())["error"]


def test_the_server_listens_on_the_loopback_only(server):
    assert server.server_address[0] == "127.0.0.1"
    assert server.url == f"http://127.0.0.1:{server.port}/"


def test_until_the_editor_is_ready_the_page_loads_and_the_api_says_so():
    from tensorpanda.app.editor import make_server

    server = make_server(None, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert get(server, "/")[0] == 200
        status, body = get_json(server, "/api/info")
        assert status == 503 and "still starting" in body["error"]
    finally:
        server.shutdown()
        server.server_close()


# -- the command ---------------------------------------------------------------------------------
def test_the_command_serves_the_editor_of_a_factors_file(factors_file):
    """`tensorpanda editor FACTORS --port 0` prints its address and answers there."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tensorpanda.app.cli", "editor", str(factors_file), "--port", "0",
         "--seed", "5"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in process.stdout:
            if "open http://" in line:
                url = line.split("open ")[1].split()[0]
                break
        else:
            pytest.fail(f"no address printed: {process.stderr.read()}")
        with urllib.request.urlopen(url + "api/info", timeout=120) as response:
            info = json.loads(response.read())
        assert info["seed"] == 5 and info["name"] == "faces.safetensors"
        assert info["adapter"] == "dcgan-faces" and info["layer"] == LAYER
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--port", "70000"], "port must be an integer in 0..65535"),
        (["--layer", "main.8"], "layer main.8 of dcgan-faces has shape"),
        (["--seed", "-2"], "seed must be an integer in 0.."),
    ],
)
def test_bad_command_lines_exit_2_with_one_line(capsys, factors_file, extra, message):
    from tensorpanda.app.cli import main

    assert main(["editor", str(factors_file), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_a_missing_factors_file_is_named(capsys, tmp_path):
    from tensorpanda.app.cli import main

    assert main(["editor", str(tmp_path / "none.safetensors")]) == 2
    assert "none.safetensors" in capsys.readouterr().err


# -- the page in a real browser ------------------------------------------------------------------
def _browser():
    """A headless Chromium driven by Selenium, or the reason there is none."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        return None, "selenium is not installed (pip install -e '.[test]')"
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if binary is None or driver is None:
        return None, ("no headless browser: install Chromium and its driver "
                      "(apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1200,900", "--proxy-server=direct://"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the page's console
    return webdriver.Chrome(options=options, service=Service(driver)), None


@pytest.fixture(scope="module")  # first in the tests' arguments: a skip costs no set-up
def browser(tmp_path_factory):
    driver, reason = _browser()
    if driver is None:
        if os.environ.get("TENSORPANDA_REQUIRE_BROWSER") == "1":
            pytest.fail(f"TENSORPANDA_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    driver.downloads = tmp_path_factory.mktemp("downloads")
    driver.execute_cdp_cmd("Page.setDownloadBehavior",
                           {"behavior": "allow", "downloadPath": str(driver.downloads)})
    yield driver
    driver.quit()


def _downloaded(driver, suffix: str):
    """The file with ``suffix`` the page saved into the download folder, once complete."""
    from selenium.webdriver.support.ui import WebDriverWait

    def done(_):
        files = [p for p in driver.downloads.iterdir() if p.suffix == suffix]
        return files[0] if files else False

    return WebDriverWait(driver, 60).until(done)


def _wait_for_image(driver, query_part: str):
    """Wait until the edited image shown is the answer to a query containing ``query_part``."""
    from selenium.webdriver.support.ui import WebDriverWait

    def shown(d):
        image = d.find_element("id", "edited")
        done = d.execute_script("return !document.body.dataset.busy")
        query = image.get_attribute("data-query") or ""
        return done and query_part in query and image.get_attribute("src")

    return WebDriverWait(driver, 60).until(shown)


def test_in_a_browser_a_click_and_the_slider_edit_the_part_under_the_cursor(browser, server,
                                                                            editor):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server.url)
    WebDriverWait(browser, 60).until(
        lambda d: d.execute_script("return document.body.dataset.ready === '1'"))
    original = decode(browser.find_element("id", "original").get_attribute("src"))

    # click where part 3 peaks: the page asks the server, which answers with that part
    part = 3
    row, column = np.unravel_index(np.argmax(editor.part_maps[part]), (8, 8))
    frame = browser.find_element("id", "frame")
    size = frame.size
    dx = (column + 0.5) / 8 * size["width"] - size["width"] / 2
    dy = (row + 0.5) / 8 * size["height"] - size["height"] / 2
    ActionChains(browser).move_to_element_with_offset(frame, int(dx), int(dy)).click().perform()
    WebDriverWait(browser, 30).until(
        lambda d: d.find_element("id", "part").get_attribute("value") == str(part))

    # pick the best-ranked appearance from the list, then push the slider to its end
    buttons = browser.find_elements("css selector", "#appearances button")
    assert len(buttons) == 10
    buttons[0].click()
    slider = browser.find_element("id", "strength")
    slider.send_keys(Keys.END)
    edited = decode(_wait_for_image(browser, f"strength=3&part={part}"))

    top = editor.ranking[part][0]
    shown = browser.find_element("id", "edited").get_attribute("data-query")
    assert f"appearance={top['appearance']}&sign={top['sign']}" in shown
    assert np.abs(edited - original).max() > 0.2  # the image changed...
    mask = np.asarray(tp.part_mask(editor.factors, part, size=(64, 64)))
    assert mask.mean() < 1 / 3  # ...mostly where the part is (evenly: under a third inside)
    assert inside_share(original, edited, mask) > 0.6
    status = browser.find_element("id", "status").text
    assert status.startswith("updated in") and "error" not in status

    # the buttons save the image shown and a labelled GIF of the sweep from -α to α
    from PIL import Image

    browser.find_element("id", "save-image").click()
    saved = _downloaded(browser, ".png")
    minus = "-" if top["sign"] < 0 else ""
    assert saved.name == f"panda-seed3-part{part}-a{minus}{top['appearance']}-alpha3.png"
    assert np.array_equal(np.asarray(Image.open(saved).convert("RGB")) / 255, edited)
    browser.find_element("id", "save-gif").click()
    assert Image.open(_downloaded(browser, ".gif")).n_frames == 2 * SMALL["gif_frames"] - 2

    # switching to SeFa edits the whole latent instead: the image differs from PandA's
    browser.find_element("css selector", "input[value=sefa]").click()
    sefa = decode(_wait_for_image(browser, "method=sefa"))
    assert np.abs(sefa - edited).max() > 0.1
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors  # no failed request, no script error, nothing the CSP blocked


def test_in_a_browser_a_bad_seed_shows_the_servers_message(browser, server):
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server.url)
    WebDriverWait(browser, 60).until(
        lambda d: d.execute_script("return document.body.dataset.ready === '1'"))
    seed = browser.find_element("id", "seed")
    seed.clear()
    seed.send_keys("-7\n")
    browser.execute_script("arguments[0].dispatchEvent(new Event('change'))", seed)
    WebDriverWait(browser, 30).until(
        lambda d: "seed must be an integer" in d.find_element("id", "status").text)
    assert "error" in browser.find_element("id", "status").get_attribute("class")
