"""The HTML trace viewer: what the page holds, that it needs nothing from the network, and, in
a real browser (headless Chromium driven by selenium), that stepping through it with the
keyboard and the buttons shows the right step, change, lane and explanation. The browser test
saves its screenshots under out/screenshots/ to be looked at."""
from __future__ import annotations

import json
import re
import shutil
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import ROOT
from ptmc.cli import main
from ptmc.render import html as render_html
from ptmc.testing import assert_violated

NO_UAF = ROOT / "properties" / "no_uaf.py"
SCREENSHOTS = ROOT / "out" / "screenshots"


@pytest.fixture(scope="module")
def semi_rcu(tmp_path_factory):
    """The K1 counterexample (semi-RCU free under a walker) and its page, written by the CLI."""
    out = tmp_path_factory.mktemp("out")
    r = CliRunner().invoke(main, ["check", str(NO_UAF), "--variant", "semi_rcu_fallback", "--out", str(out)])
    assert r.exit_code == 1, r.output
    page = out / "no_uaf-reclaim-semi_rcu_fallback.html"
    assert f"wrote {page}" in r.stdout
    result = assert_violated(NO_UAF, variants=["semi_rcu_fallback"], check="never use-after-free", steps=16)
    return result, page


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_page_is_self_contained(semi_rcu):
    _, page = semi_rcu
    text = page.read_text()
    parser = _Tags()
    parser.feed(text)
    for tag, attrs in parser.tags:
        assert tag not in ("link", "img", "iframe", "object", "embed"), tag
        assert not (tag == "script" and "src" in attrs), attrs
        if tag == "a":
            assert attrs["href"].startswith("https://elixir.bootlin.com/linux/latest/"), attrs
    assert "@import" not in text and "url(" not in text and "@font-face" not in text
    assert text.count("<script") == 2  # the data and the viewer, both inline


def test_page_carries_every_step_with_its_whole_state(semi_rcu):
    result, page = semi_rcu
    data = json.loads(re.search(r'<script type="application/json" id="trace-data">(.*?)</script>',
                                page.read_text(), re.S).group(1))
    assert data["initial"] == result.initial
    assert len(data["steps"]) == len(result.trace) == 16
    for n, (shown, st) in enumerate(zip(data["steps"], result.trace), 1):
        assert (shown["n"], shown["thread"], shown["kernel_function"]) == (n, st.thread, st.kernel_function)
        assert shown["state"] == st.state and set(st.state) == set(result.initial)
        before = data["initial"] if n == 1 else data["steps"][n - 2]["state"]
        assert {k for k in st.state if st.state[k] != before[k] and "._" not in k} == set(shown["changes"])
    last = data["steps"][-1]
    assert last["state"]["pt0.state"] == "free" and last["thread"] == "reader"
    assert last["source"].startswith("model/reclaim.py:")
    assert data["ending"] == {"kind": "violation",
                              "text": "never use-after-free violated: reader reads pt0.e0, but pt0 is free"}


def test_source_links():
    fn = "mm/pgtable-generic.c:__pte_offset_map_lock"
    assert render_html.source_links(render_html.DEFAULT_SOURCE_URL, fn) == (
        "https://elixir.bootlin.com/linux/latest/source/mm/pgtable-generic.c",
        "https://elixir.bootlin.com/linux/latest/C/ident/__pte_offset_map_lock")
    kernel_org = "https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git/tree/"
    assert render_html.source_links(kernel_org, fn) == (kernel_org + "mm/pgtable-generic.c",) * 2
    grok = "https://grok.example/xref/linux/{file}#{function}"
    assert render_html.source_links(grok, fn) == (
        "https://grok.example/xref/linux/mm/pgtable-generic.c#__pte_offset_map_lock",) * 2


def test_witness_trace_gets_its_own_page_and_source_url_is_used(tmp_path):
    base = "https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git/tree"
    example = ROOT / "docs" / "examples" / "retract_no_uaf.py"  # the authoring guide's: 20 states
    r = CliRunner().invoke(main, ["check", str(example), "--witness", "reads_a_retracted_table",
                                  "--out", str(tmp_path), "--source-url", base])
    assert r.exit_code == 0, r.output
    page = tmp_path / "retract_no_uaf-retract-witness-reads_a_retracted_table.html"
    assert r.stdout.splitlines()[-1] == f"wrote {page}"
    text = page.read_text()
    assert "witness reads_a_retracted_table reached in 4 steps" in text
    assert f'href="{base}/mm/khugepaged.c"' in text and "elixir" not in text


# --------------------------------------------------------------------------------------------
# In a real browser
# --------------------------------------------------------------------------------------------

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--window-size=1280,720"]


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed: run ./setup.sh")
    from selenium.webdriver.chrome.service import Service
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip("Debian's chromium and chromium-driver are not installed and setup.sh could not install them")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="ptmc-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    b = webdriver.Chrome(service=Service(driver), options=options)
    try:
        # The projector: exactly 1280x720 CSS pixels of page.
        b.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                          {"width": 1280, "height": 720, "deviceScaleFactor": 1, "mobile": False})
        yield b
    finally:
        b.quit()
        shutil.rmtree(profile, ignore_errors=True)


def test_stepping_through_the_counterexample_in_chromium(browser, semi_rcu):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    result, page = semi_rcu
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.get(page.as_uri())
    assert browser.execute_script("return [innerWidth, innerHeight]") == [1280, 720]
    body = browser.find_element(By.TAG_NAME, "body")
    text = lambda css: browser.find_element(By.CSS_SELECTOR, css).text  # noqa: E731

    def shown_step():
        return int(text("#stepno"))

    def changed_vars():
        return {e.get_attribute("data-var") for e in browser.find_elements(By.CSS_SELECTOR, "#state .changed")}

    assert shown_step() == 0 and "initial state" in text("#where")
    browser.save_screenshot(str(SCREENSHOTS / "no_uaf-semi_rcu-0-initial.png"))
    for _ in range(9):
        body.send_keys(Keys.ARROW_RIGHT)
    st = result.trace[8]  # step 9: zap clears the pmd
    assert shown_step() == 9 and st.step == "clear_pmd"
    assert changed_vars() == {k for k in st.changes if "._" not in k} >= {"pmd", "zap.table"}
    pmd = browser.find_element(By.CSS_SELECTOR, '#state .changed[data-var="pmd"]')
    assert pmd.text.endswith("none") and pmd.get_attribute("title") == "was pt0"
    assert text("#where").startswith("zap runs try_get_and_clear_pmd() in mm/pt_reclaim.c")
    link = browser.find_element(By.CSS_SELECTOR, "#where a")
    assert link.get_attribute("href").endswith("/C/ident/try_get_and_clear_pmd")
    _assert_in_lane(browser, 9, "zap")
    browser.save_screenshot(str(SCREENSHOTS / "no_uaf-semi_rcu-9-clear_pmd.png"))

    browser.find_element(By.ID, "prev").click()
    assert shown_step() == 8
    _assert_in_lane(browser, 8, "reader")
    assert "reader" in text(".lane-head.active")
    browser.find_element(By.ID, "next").click()
    browser.find_element(By.ID, "next").click()
    assert shown_step() == 10

    body.send_keys(Keys.END)
    assert shown_step() == 16
    _assert_in_lane(browser, 16, "reader")
    assert changed_vars() == {"reader.pc"}
    ending = browser.find_element(By.ID, "ending")
    assert ending.is_displayed()
    assert ending.text == "==> never use-after-free violated: reader reads pt0.e0, but pt0 is free"
    explained = browser.find_element(By.CSS_SELECTOR, "#diagram .ending")
    assert "what the property says" in explained.text and explained.is_displayed()
    assert browser.find_element(By.ID, "next").get_attribute("disabled")
    browser.save_screenshot(str(SCREENSHOTS / "no_uaf-semi_rcu-16-end.png"))

    body.send_keys(Keys.HOME)
    assert shown_step() == 0 and not ending.is_displayed()
    browser.find_element(By.CSS_SELECTOR, '.card[data-n="5"]').click()
    assert shown_step() == 5
    assert browser.execute_script("return location.hash") == "#step-5"
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []  # no script error, no failed load


def _assert_in_lane(browser, n: int, thread: str) -> None:
    """Step ``n`` is selected, and drawn inside the column headed by its thread."""
    from selenium.webdriver.common.by import By
    card = browser.find_element(By.CSS_SELECTOR, ".card.selected")
    assert card.get_attribute("data-n") == str(n) and card.get_attribute("data-thread") == thread
    head = browser.find_element(By.CSS_SELECTOR, f'.lane-head[data-thread="{thread}"]')
    c, h = card.rect, head.rect
    assert h["x"] <= c["x"] and c["x"] + c["width"] <= h["x"] + h["width"], (c, h)
    assert 0 <= c["y"] and c["y"] + c["height"] <= 720  # scrolled into view


def test_a_step_context_is_shown_when_the_trace_carries_one(browser, semi_rcu, tmp_path):
    """Per-step kernel context (issue 12, point 1) has its place on the page already."""
    from dataclasses import replace

    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    result, _ = semi_rcu
    steps = [replace(st, context=["L={pt0.ptl}", "rcu: zap"] if n == 2 else [])
             for n, st in enumerate(result.trace, 1)]
    page = tmp_path / "context.html"
    page.write_text(render_html.render(replace(result, trace=steps)))
    browser.get(page.as_uri())
    body = browser.find_element(By.TAG_NAME, "body")
    context = browser.find_element(By.ID, "context")
    body.send_keys(Keys.ARROW_RIGHT)
    assert context.text == ""
    body.send_keys(Keys.ARROW_RIGHT)
    assert context.text.splitlines() == ["L={pt0.ptl}", "rcu: zap"]
